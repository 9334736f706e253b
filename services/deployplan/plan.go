package deployplan

import (
	"errors"
	"fmt"
)

// Plan is how a deployment to a host list goes: the minimum number of
// healthy hosts and the batches, in host order. Next decides from it.
type Plan struct {
	// MinHealthy is the minimum number of healthy hosts. The deployment
	// succeeds when at least max(MinHealthy, 1) hosts succeed.
	MinHealthy int `json:"minHealthy"`
	// BatchSize is the largest number of hosts offline at once, failed ones
	// included: hosts - MinHealthy, and at least 1.
	BatchSize int `json:"batchSize"`
	// Batches are the hosts in order, cut into batches of BatchSize (the
	// last may be smaller). Batch k+1 starts when every host of batch k has
	// ended.
	Batches [][]string `json:"batches"`
}

// New plans a deployment with cfg to hosts, in the order given. It returns
// ErrInvalidConfig (with ErrTooFewHosts when a HOST_COUNT minimum leaves no
// host to deploy to), ErrNoHosts or ErrInvalidHosts, every problem at once.
func New(cfg Config, hosts []string) (Plan, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	n := len(hosts)
	if n == 0 {
		errs = append(errs, ErrNoHosts)
	}
	first := make(map[string]int, n)
	for i, h := range hosts {
		if h == "" {
			errs = append(errs, fmt.Errorf("%w: hosts[%d]: must not be empty", ErrInvalidHosts, i))
			continue
		}
		if j, dup := first[h]; dup {
			errs = append(errs, fmt.Errorf("%w: hosts[%d]: %q is listed twice (first at hosts[%d])", ErrInvalidHosts, i, h, j))
			continue
		}
		first[h] = i
	}
	if len(errs) > 0 {
		return Plan{}, errors.Join(errs...)
	}
	minHealthy := cfg.MinHealthy(n)
	if cfg.Type == HostCount && minHealthy >= n {
		return Plan{}, fmt.Errorf("%w %s: value: HOST_COUNT must be less than the number of hosts, %d, got %d: %w",
			ErrInvalidConfig, cfg.label(), n, cfg.Value, ErrTooFewHosts)
	}
	batch := max(n-minHealthy, 1)
	p := Plan{MinHealthy: minHealthy, BatchSize: batch}
	for i := 0; i < n; i += batch {
		p.Batches = append(p.Batches, append([]string(nil), hosts[i:min(i+batch, n)]...))
	}
	return p, nil
}

// Hosts returns every host of the plan, in order.
func (p Plan) Hosts() []string {
	var out []string
	for _, b := range p.Batches {
		out = append(out, b...)
	}
	return out
}

// MinSucceeded is the number of hosts that must succeed for the deployment
// to succeed: MinHealthy, and at least one.
func (p Plan) MinSucceeded() int { return max(p.MinHealthy, 1) }
