// Package deploydecider is the pure core of a deployment: Fold turns a
// deployment's events (the GANTRY_DEPLOYS log of one deployment) into a
// State, and Decide says which events come next: hosts to dispatch, hosts
// whose agent died, the deployment's end. It does no I/O and reads no clock:
// time and the set of hosts whose agent heartbeat expired arrive in Inputs.
// The batch rules are services/deployplan's.
package deploydecider

import (
	"fmt"
	"sort"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deployplan"
)

// Source is the CloudEvents source of the events Decide produces.
const Source = "/gantry/deploy"

// Phase of a deployment; the zero value means "not created".
type Phase string

const (
	InProgress Phase = "InProgress"
	Succeeded  Phase = "Succeeded"
	Failed     Phase = "Failed"
	Stopped    Phase = "Stopped"
)

// Ended reports whether p is final.
func (p Phase) Ended() bool { return p == Succeeded || p == Failed || p == Stopped }

// Step is one lifecycle event on a host, as the agent reported it.
type Step struct {
	Event    string  `json:"event"`
	Status   string  `json:"status"`
	ExitCode int     `json:"exitCode"`
	Duration float64 `json:"durationSeconds"`
	LogTail  string  `json:"logTail,omitempty"`
}

// Host is one host's part of a deployment.
type Host struct {
	Name   string                `json:"name"`
	Status deployplan.HostStatus `json:"status"`
	Reason string                `json:"reason,omitempty"`
	Steps  []Step                `json:"steps,omitempty"`
}

// State is a folded deployment.
type State struct {
	Created  events.DeploymentCreated `json:"created"`
	Phase    Phase                    `json:"phase"`
	Reason   string                   `json:"reason,omitempty"`
	Rollback bool                     `json:"rollback,omitempty"`
	Hosts    []*Host                  `json:"hosts"`
	// Started and Ended are the times of the created and final events.
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	LastSeq uint64    `json:"lastSeq"`
	// CreatedSeq is the stream sequence of the created event: the order of
	// deployments in their group, which says whether one is newer than
	// another (the rollback policy never rolls back over a newer one).
	CreatedSeq uint64 `json:"createdSeq,omitempty"`
	// EndSeq is the stream sequence of the final event: which deployment
	// ended last, which LastSeq cannot tell, since agents' late events
	// follow the end.
	EndSeq uint64 `json:"endSeq,omitempty"`
	// RollbackInfo is the rollback service's answer after the end, if the
	// deployment asked for a rollback.
	RollbackInfo *RollbackInfo `json:"rollbackInfo,omitempty"`
}

// RollbackInfo says how an ended deployment was rolled back, or why not.
type RollbackInfo struct {
	Deployment string `json:"deployment,omitempty"`
	Revision   string `json:"revision,omitempty"`
	Message    string `json:"message"`
}

// ID is the deployment ID.
func (s State) ID() string { return s.Created.Deployment }

// Group is the deployment group.
func (s State) Group() string { return s.Created.Group }

// Host returns a host's part, or nil.
func (s State) Host(name string) *Host {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Statuses maps each host to its status, for deployplan.Next.
func (s State) Statuses() map[string]deployplan.HostStatus {
	m := make(map[string]deployplan.HostStatus, len(s.Hosts))
	for _, h := range s.Hosts {
		m[h.Name] = h.Status
	}
	return m
}

// Fold applies events to a state in order.
func Fold(s State, evs ...events.Event) State {
	for _, e := range evs {
		s = Evolve(s, e)
	}
	return s
}

// Evolve applies one event. It never fails: events of another deployment,
// events before created, repeats and host results after a host ended are
// ignored (only LastSeq moves).
func Evolve(s State, e events.Event) State {
	if e.Seq > s.LastSeq {
		s.LastSeq = e.Seq
	}
	if c, ok := e.Payload.(events.DeploymentCreated); ok {
		if s.Phase != "" {
			return s
		}
		s = clone(s)
		s.Created = c
		s.Phase = InProgress
		s.Started = e.Time
		s.CreatedSeq = e.Seq
		for _, h := range c.Hosts {
			s.Hosts = append(s.Hosts, &Host{Name: h, Status: deployplan.Pending})
		}
		return s
	}
	if s.Phase == "" || e.Subject != s.ID() {
		return s
	}
	s = clone(s)
	switch p := e.Payload.(type) {
	case events.DeployHostDispatched:
		if h := s.Host(p.Host); h != nil && h.Status == deployplan.Pending && !s.Phase.Ended() {
			h.Status = deployplan.InProgress
		}
	case events.DeployHostLifecycle:
		if h := s.Host(p.Host); h != nil {
			h.Steps = append(h.Steps, Step{Event: p.Event, Status: p.Status, ExitCode: p.ExitCode, Duration: p.Duration, LogTail: p.LogTail})
		}
	case events.DeployHostSucceeded:
		if h := s.Host(p.Host); h != nil && h.Status == deployplan.InProgress {
			h.Status = deployplan.Succeeded
		}
	case events.DeployHostFailed:
		if h := s.Host(p.Host); h != nil && (h.Status == deployplan.InProgress || h.Status == deployplan.Pending) && !(h.Status == deployplan.Pending && s.Phase.Ended()) {
			h.Status = deployplan.Failed
			h.Reason = p.Reason
		}
	case events.DeploymentSucceeded:
		if !s.Phase.Ended() {
			s.Phase, s.Reason, s.Ended, s.EndSeq = Succeeded, "", e.Time, e.Seq
		}
	case events.DeploymentFailed:
		if !s.Phase.Ended() {
			s.Phase, s.Reason, s.Ended, s.EndSeq = Failed, p.Reason, e.Time, e.Seq
			skipPending(&s)
		}
	case events.DeploymentRollback:
		if s.Phase.Ended() && s.RollbackInfo == nil {
			s.RollbackInfo = &RollbackInfo{Deployment: p.RollbackDeployment, Revision: p.Revision, Message: p.Message}
		}
	case events.DeploymentStopped:
		if !s.Phase.Ended() {
			s.Phase, s.Reason, s.Rollback, s.Ended, s.EndSeq = Stopped, p.Reason, p.Rollback, e.Time, e.Seq
			skipPending(&s)
		}
	}
	return s
}

func skipPending(s *State) {
	for _, h := range s.Hosts {
		if h.Status == deployplan.Pending {
			h.Status = deployplan.Skipped
		}
	}
}

// clone copies the host records so that an earlier State is never changed.
func clone(s State) State {
	hs := make([]*Host, len(s.Hosts))
	for i, h := range s.Hosts {
		c := *h
		c.Steps = append([]Step(nil), h.Steps...)
		hs[i] = &c
	}
	s.Hosts = hs
	s.Created.Hosts = append([]string(nil), s.Created.Hosts...)
	return s
}

// Inputs are the facts from outside the log that Decide needs.
type Inputs struct {
	// Now stamps the events.
	Now time.Time
	// Dead names hosts whose agent's heartbeat expired; those in progress
	// are failed.
	Dead map[string]bool
}

// Config converts the logged configuration to deployplan's.
func Config(c events.DeploymentConfig) deployplan.Config {
	return deployplan.Config{Name: c.Name, Type: deployplan.Type(c.Type), Value: c.Value}
}

// Decide returns the events that come next, in order; none when the
// deployment waits for its hosts or has ended. It is pure and idempotent:
// an event it returns is a fact with a deterministic ID, and folding it
// makes Decide move on.
func Decide(s State, in Inputs) []events.Event {
	if s.Phase != InProgress {
		return nil
	}
	c := s.Created
	var out []events.Event
	add := func(id string, p events.Payload) {
		e, err := events.New(id, Source, c.Deployment, in.Now, p)
		if err == nil {
			out = append(out, e)
		}
	}
	// Hosts whose agent died fail first.
	var dead []string
	for _, h := range s.Hosts {
		if h.Status == deployplan.InProgress && in.Dead[h.Name] {
			dead = append(dead, h.Name)
		}
	}
	sort.Strings(dead)
	for _, h := range dead {
		add(events.DeployHostID(c.Deployment, h, "failed"), events.DeployHostFailed{
			Deployment: c.Deployment, Group: c.Group, Host: h,
			Reason: "the agent stopped heartbeating while the host was in progress"})
	}
	if len(dead) > 0 {
		return out
	}
	plan, err := deployplan.New(Config(c.Config), c.Hosts)
	if err != nil {
		add(events.DeployID(c.Deployment, "failed"), events.DeploymentFailed{Deployment: c.Deployment, Group: c.Group,
			Reason: events.TruncateReason(fmt.Sprintf("cannot plan the deployment: %v", err))})
		return out
	}
	d := deployplan.Next(plan, s.Statuses())
	if d.Done != nil {
		if d.Done.Succeeded {
			add(events.DeployID(c.Deployment, "succeeded"), events.DeploymentSucceeded{Deployment: c.Deployment, Group: c.Group})
		} else {
			add(events.DeployID(c.Deployment, "failed"), events.DeploymentFailed{Deployment: c.Deployment, Group: c.Group, Reason: d.Done.Reason})
		}
		return out
	}
	for _, h := range d.Start {
		add(events.DeployHostID(c.Deployment, h, "dispatched"), events.DeployHostDispatched{Deployment: c.Deployment, Group: c.Group, Host: h})
	}
	return out
}
