package deployplan

import (
	"errors"
	"fmt"
	"strings"
)

// Type says how a Config's Value sets the minimum number of healthy hosts.
type Type string

const (
	// HostCount: Value is the minimum number of healthy hosts. It must be
	// less than the number of hosts.
	HostCount Type = "HOST_COUNT"
	// FleetPercent: Value (0 to 100) is the minimum share of healthy hosts,
	// in percent of the hosts, rounded up to whole hosts.
	FleetPercent Type = "FLEET_PERCENT"
	// MostConcurrency with Value 1 deploys to one host at a time and keeps
	// all the others healthy (minimum n-1). It is how CodeDeploy reports
	// CodeDeployDefault.OneAtATime; Value must be 1.
	MostConcurrency Type = "MOST_CONCURRENCY"
)

// CodeDeployPrefix is the prefix of CodeDeploy's names for the predefined
// configurations; ConfigByName accepts names with and without it.
const CodeDeployPrefix = "CodeDeployDefault."

// Config is a deployment configuration: the minimum number of healthy hosts,
// from which the batch size follows.
type Config struct {
	// Name identifies the configuration in events and messages, e.g.
	// CodeDeployDefault.HalfAtATime; may be empty for an inline one.
	Name  string `json:"name,omitempty"`
	Type  Type   `json:"type"`
	Value int    `json:"value"`
}

// The predefined configurations, named as in CodeDeploy.
var (
	// AllAtOnce deploys to every host at once; the deployment succeeds if at
	// least one host succeeds (minimum healthy 0).
	AllAtOnce = Config{Name: CodeDeployPrefix + "AllAtOnce", Type: FleetPercent, Value: 0}
	// HalfAtATime deploys to at most half the hosts (rounded down) at a
	// time; the deployment succeeds if at least half (rounded up) succeed.
	HalfAtATime = Config{Name: CodeDeployPrefix + "HalfAtATime", Type: FleetPercent, Value: 50}
	// OneAtATime deploys to one host at a time; with more than one host the
	// deployment fails on the first failed host except the last.
	OneAtATime = Config{Name: CodeDeployPrefix + "OneAtATime", Type: MostConcurrency, Value: 1}
)

// Predefined lists the predefined configurations.
var Predefined = []Config{AllAtOnce, HalfAtATime, OneAtATime}

// ConfigByName returns the predefined configuration with the given name,
// with or without the CodeDeployDefault. prefix ("HalfAtATime" or
// "CodeDeployDefault.HalfAtATime"). Names are case-sensitive, as in
// CodeDeploy. It returns ErrUnknownConfig for any other name.
func ConfigByName(name string) (Config, error) {
	short := strings.TrimPrefix(name, CodeDeployPrefix)
	for _, c := range Predefined {
		if strings.TrimPrefix(c.Name, CodeDeployPrefix) == short {
			return c, nil
		}
	}
	names := make([]string, len(Predefined))
	for i, c := range Predefined {
		names[i] = strings.TrimPrefix(c.Name, CodeDeployPrefix)
	}
	return Config{}, fmt.Errorf("%w %q: the predefined ones are %s (optionally prefixed %s)",
		ErrUnknownConfig, name, strings.Join(names, ", "), CodeDeployPrefix)
}

// Validate checks what can be checked without the host list and reports
// every problem at once; each wraps ErrInvalidConfig and names the field
// and value. Plan checks the rest (HOST_COUNT against the number of hosts).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w %s: %s: %s", ErrInvalidConfig, c.label(), field, fmt.Sprintf(format, args...)))
	}
	switch c.Type {
	case HostCount:
		if c.Value < 0 {
			bad("value", "HOST_COUNT must be at least 0, got %d", c.Value)
		}
	case FleetPercent:
		if c.Value < 0 || c.Value > 100 {
			bad("value", "FLEET_PERCENT must be between 0 and 100, got %d", c.Value)
		}
	case MostConcurrency:
		if c.Value != 1 {
			bad("value", "MOST_CONCURRENCY must be 1, got %d", c.Value)
		}
	default:
		bad("type", "must be HOST_COUNT, FLEET_PERCENT or MOST_CONCURRENCY, got %q", string(c.Type))
	}
	return errors.Join(errs...)
}

// label names the configuration in messages.
func (c Config) label() string {
	if c.Name == "" {
		return "(unnamed)"
	}
	return fmt.Sprintf("%q", c.Name)
}

// String formats the configuration as "name (TYPE value)".
func (c Config) String() string {
	if c.Name == "" {
		return fmt.Sprintf("%s %d", c.Type, c.Value)
	}
	return fmt.Sprintf("%s (%s %d)", c.Name, c.Type, c.Value)
}

// MinHealthy returns the minimum number of healthy hosts of a deployment to
// n hosts. It does not validate c.
func (c Config) MinHealthy(n int) int {
	switch c.Type {
	case HostCount:
		return c.Value
	case FleetPercent:
		return (n*c.Value + 99) / 100 // rounded up
	case MostConcurrency:
		return max(n-c.Value, 0)
	}
	return n
}
