package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/goccy/go-yaml"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deployplan"
)

// Automatic rollback events, named as in CodeDeploy.
const (
	RollbackOnFailure       = "DEPLOYMENT_FAILURE"
	RollbackOnAlarm         = "DEPLOYMENT_STOP_ON_ALARM"
	RollbackOnStopOnRequest = "DEPLOYMENT_STOP_ON_REQUEST"
)

// Sentinel errors.
var (
	// ErrInvalidGroup: a deployment group document is malformed; the
	// message names every problem.
	ErrInvalidGroup = errors.New("invalid deployment group")
	// ErrNoGroup: no deployment group of that name was applied.
	ErrNoGroup = errors.New("deployment group not found")
	// ErrNoAgents: no live agent matches the group.
	ErrNoAgents = errors.New("no agents in the deployment group")
	// ErrEnded: the deployment has already ended.
	ErrEnded = errors.New("deployment already ended")
	// ErrGroupBusy: the group has a deployment in progress (a *BusyError
	// names it).
	ErrGroupBusy = errors.New("deployment group busy")
)

// Group is a deployment group document (`gantry deploy group apply -f`):
//
//	name: web
//	application: webshop
//	selector: {role: web}          # agent labels a host must have
//	deploymentConfig: OneAtATime   # AllAtOnce, HalfAtATime, OneAtATime
//	healthCheck:
//	  url: http://127.0.0.1:{{.Labels.port}}/healthz
//	  expectedStatus: 200
//	  intervalSeconds: 1
//	  healthyThreshold: 2
//	  timeoutSeconds: 60
//	alarms: [error-rate]           # alarms that stop a deployment; empty: any alarm
//	autoRollback:
//	  enabled: true
//	  events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]
type Group struct {
	Name             string              `json:"name" yaml:"name"`
	Application      string              `json:"application" yaml:"application"`
	Selector         map[string]string   `json:"selector,omitempty" yaml:"selector"`
	DeploymentConfig string              `json:"deploymentConfig,omitempty" yaml:"deploymentConfig"`
	HealthCheck      *events.HealthCheck `json:"healthCheck,omitempty" yaml:"healthCheck"`
	Alarms           []string            `json:"alarms,omitempty" yaml:"alarms"`
	AutoRollback     AutoRollback        `json:"autoRollback" yaml:"autoRollback"`
}

// AutoRollback says when the rollback service redeploys the last known
// good revision.
type AutoRollback struct {
	Enabled bool     `json:"enabled" yaml:"enabled"`
	Events  []string `json:"events,omitempty" yaml:"events"`
}

// RollsBackOn reports whether the group rolls back automatically on ev.
func (g Group) RollsBackOn(ev string) bool {
	return g.AutoRollback.Enabled && slices.Contains(g.AutoRollback.Events, ev)
}

// StopsOnAlarm reports whether an alarm of that name stops the group's
// deployments.
func (g Group) StopsOnAlarm(name string) bool {
	return len(g.Alarms) == 0 || slices.Contains(g.Alarms, name)
}

// Config returns the group's deployment configuration (default OneAtATime).
func (g Group) Config() (deployplan.Config, error) {
	if g.DeploymentConfig == "" {
		return deployplan.OneAtATime, nil
	}
	return deployplan.ConfigByName(g.DeploymentConfig)
}

// ParseGroup reads a group document strictly: unknown fields are errors,
// every problem is reported.
func ParseGroup(name string, data []byte) (Group, error) {
	var g Group
	if err := yaml.UnmarshalWithOptions(data, &g, yaml.Strict(), yaml.DisallowUnknownField()); err != nil {
		return Group{}, fmt.Errorf("%w: %s: %s", ErrInvalidGroup, name, yaml.FormatError(err, false, true))
	}
	if err := g.Validate(); err != nil {
		return Group{}, fmt.Errorf("%s: %w", name, err)
	}
	return g, nil
}

// Validate reports every problem of a group at once.
func (g Group) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidGroup, fmt.Sprintf(format, a...)))
	}
	if !events.ValidName(g.Name) {
		bad("name: %q must be 1-64 letters, digits, '-' or '_'", g.Name)
	}
	if !events.ValidName(g.Application) {
		bad("application: %q must be 1-64 letters, digits, '-' or '_'", g.Application)
	}
	if _, err := g.Config(); err != nil {
		bad("deploymentConfig: %v", err)
	}
	if hc := g.HealthCheck; hc != nil {
		if hc.URL == "" {
			bad("healthCheck.url: required")
		}
		if hc.ExpectedStatus != 0 && (hc.ExpectedStatus < 100 || hc.ExpectedStatus > 599) {
			bad("healthCheck.expectedStatus: %d is not an HTTP status", hc.ExpectedStatus)
		}
		if hc.IntervalSeconds < 0 || hc.HealthyThreshold < 0 || hc.TimeoutSeconds < 0 {
			bad("healthCheck: intervalSeconds, healthyThreshold and timeoutSeconds must not be negative")
		}
	}
	for i, e := range g.AutoRollback.Events {
		if e != RollbackOnFailure && e != RollbackOnAlarm && e != RollbackOnStopOnRequest {
			bad("autoRollback.events[%d]: %q must be %s, %s or %s", i, e, RollbackOnFailure, RollbackOnAlarm, RollbackOnStopOnRequest)
		}
	}
	return errors.Join(errs...)
}

// ApplyGroup stores a group in the deploygroups bucket.
func ApplyGroup(ctx context.Context, js jetstream.JetStream, g Group) (uint64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	kv, err := js.KeyValue(ctx, events.BucketDeployGroups)
	if err != nil {
		return 0, fmt.Errorf("deploygroups bucket: %w", err)
	}
	b, err := json.Marshal(g)
	if err != nil {
		return 0, err
	}
	return kv.Put(ctx, g.Name, b)
}

// GetGroup reads a group from the deploygroups bucket.
func GetGroup(ctx context.Context, js jetstream.JetStream, name string) (Group, error) {
	kv, err := js.KeyValue(ctx, events.BucketDeployGroups)
	if err != nil {
		return Group{}, fmt.Errorf("deploygroups bucket: %w", err)
	}
	e, err := kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Group{}, fmt.Errorf("%w: %s (apply one with `gantry deploy group apply -f FILE`)", ErrNoGroup, name)
	}
	if err != nil {
		return Group{}, err
	}
	var g Group
	d := json.NewDecoder(bytes.NewReader(e.Value()))
	if err := d.Decode(&g); err != nil {
		return Group{}, fmt.Errorf("group %s: %w", name, err)
	}
	return g, nil
}
