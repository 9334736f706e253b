package deployplan

import "errors"

// Sentinel errors, wrapped with detail; test with errors.Is.
var (
	// ErrInvalidConfig: a Config has an unknown type or a value out of
	// range. The message names the configuration, the field and the value.
	ErrInvalidConfig = errors.New("invalid deployment configuration")
	// ErrUnknownConfig: ConfigByName does not know the name.
	ErrUnknownConfig = errors.New("unknown deployment configuration")
	// ErrNoHosts: Plan was given no hosts.
	ErrNoHosts = errors.New("no hosts to deploy to")
	// ErrInvalidHosts: a host name is empty or listed twice.
	ErrInvalidHosts = errors.New("invalid host list")
	// ErrTooFewHosts: the minimum number of healthy hosts leaves no host to
	// deploy to (HOST_COUNT m with m >= the number of hosts); CodeDeploy
	// refuses such a deployment with HEALTH_CONSTRAINTS_INVALID. It is
	// returned together with ErrInvalidConfig.
	ErrTooFewHosts = errors.New("minimum healthy hosts leaves no host to deploy to")
)
