package deployplan

import "fmt"

// HostStatus is where one host's deployment is; the values are CodeDeploy's
// instance statuses.
type HostStatus string

const (
	// Pending: not started. A host missing from the status map, or with an
	// empty status, is Pending.
	Pending HostStatus = "Pending"
	// InProgress: started and not ended; the host is offline.
	InProgress HostStatus = "InProgress"
	// Succeeded: the revision is installed and validated.
	Succeeded HostStatus = "Succeeded"
	// Failed: a lifecycle hook failed or timed out; the host stays unhealthy.
	Failed HostStatus = "Failed"
	// Skipped: never started, because the deployment failed first.
	Skipped HostStatus = "Skipped"
)

// Ended reports whether s is a final status.
func (s HostStatus) Ended() bool { return s == Succeeded || s == Failed || s == Skipped }

// normal maps a status to one of the five; any other value (CodeDeploy's
// Unknown, say) counts as InProgress, so Next neither starts that host nor
// ends the deployment without it.
func normal(s HostStatus) HostStatus {
	switch s {
	case "", Pending:
		return Pending
	case Succeeded, Failed, Skipped:
		return s
	}
	return InProgress
}

// Decision is what Next decides. While the deployment runs, Done is nil and
// Start names the hosts to start now (none: wait for hosts in progress).
// When the deployment is over, Done says how; a failed deployment lists in
// Skip the hosts it never started, to be recorded as Skipped.
type Decision struct {
	Start []string `json:"start,omitempty"`
	Skip  []string `json:"skip,omitempty"`
	Done  *Done    `json:"done,omitempty"`
}

// Done is the outcome of a deployment.
type Done struct {
	Succeeded bool   `json:"succeeded"`
	Reason    string `json:"reason"`
}

// Next decides what a deployment does now, given each host's status. It is
// pure and idempotent: the same plan and statuses give the same decision, so
// a redelivered event decides nothing new once its starts are recorded.
//
// Hosts are started batch by batch: the hosts of the first batch that has
// not ended, once every earlier batch has ended, and only as many as keep
// failed + in-progress hosts within BatchSize (after failures a batch may
// start in parts). Statuses of hosts not in the plan are ignored. Hosts still
// in progress when the deployment fails are left to end; they no longer
// change the outcome.
func Next(p Plan, status map[string]HostStatus) Decision {
	var (
		n, pending, inProgress, succeeded, failed, skipped int
		pendingHosts                                       []string
	)
	seen := map[string]bool{}
	for _, b := range p.Batches {
		for _, h := range b {
			if seen[h] {
				continue
			}
			seen[h] = true
			n++
			switch normal(status[h]) {
			case Pending:
				pending++
				pendingHosts = append(pendingHosts, h)
			case InProgress:
				inProgress++
			case Succeeded:
				succeeded++
			case Failed:
				failed++
			case Skipped:
				skipped++
			}
		}
	}
	if n == 0 {
		return Decision{Done: &Done{Reason: "the plan has no hosts"}}
	}
	need := p.MinSucceeded()
	if canSucceed := n - failed - skipped; canSucceed < need {
		return Decision{Skip: pendingHosts, Done: &Done{Reason: fmt.Sprintf(
			"%s: at least %d must succeed, at most %d still can", ended(n, failed, skipped), need, canSucceed)}}
	}
	if pending > 0 && failed >= p.BatchSize {
		return Decision{Skip: pendingHosts, Done: &Done{Reason: fmt.Sprintf(
			"%s with %d still to deploy: deploying another would leave fewer than %d of %d hosts healthy",
			ended(n, failed, skipped), pending, p.MinHealthy, n)}}
	}
	if pending == 0 && inProgress == 0 {
		return Decision{Done: &Done{Succeeded: true, Reason: fmt.Sprintf(
			"%d of %d hosts succeeded (at least %d required)", succeeded, n, need)}}
	}
	room := p.BatchSize - failed - inProgress
	if room <= 0 || pending == 0 {
		return Decision{}
	}
	var start []string
	started := map[string]bool{}
	for _, b := range p.Batches {
		open := false
		for _, h := range b {
			switch normal(status[h]) {
			case Pending:
				open = true
				if room > 0 && !started[h] {
					started[h] = true
					start = append(start, h)
					room--
				}
			case InProgress:
				open = true
			}
		}
		if open {
			break
		}
	}
	return Decision{Start: start}
}

// ended describes the failed and skipped hosts: "2 of 9 hosts failed".
func ended(n, failed, skipped int) string {
	s := fmt.Sprintf("%d of %d hosts failed", failed, n)
	if skipped > 0 {
		s += fmt.Sprintf(" and %d were skipped", skipped)
	}
	return s
}
