package run

import (
	"time"

	"github.com/gantry-ci/gantry/events"
)

// Approval is what the log says of a manual approval action: what it asks,
// until when, and who answered.
type Approval struct {
	Instructions string   `json:"instructions,omitempty"`
	URL          string   `json:"url,omitempty"`
	Approvers    []string `json:"approvers,omitempty"`
	Expires      string   `json:"expires,omitempty"`
	// Decision is "approved" or "rejected" once someone answered.
	Decision string `json:"decision,omitempty"`
	Actor    string `json:"actor,omitempty"`
	Comment  string `json:"comment,omitempty"`
}

// Waiting reports whether an action is an approval that waits for an answer.
func (a *Action) Waiting() bool {
	return a.Type == events.KindApproval && a.Approval != nil && a.Approval.Decision == "" && !a.Phase.Done()
}

// Check is one rule of a stage condition for one attempt of the stage: its
// command's task while a Command rule runs, then its evaluation.
type Check struct {
	When    string `json:"when"`
	Rule    string `json:"rule"`
	Type    string `json:"type,omitempty"`
	Attempt int    `json:"attempt"`
	// Evaluated is set by condition.evaluated; Passed and Reason say how.
	Evaluated bool   `json:"evaluated,omitempty"`
	Passed    bool   `json:"passed,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Task is the phase of a Command rule's task (Dispatched, Running,
	// Succeeded, Failed); TaskReason a failed task's reason.
	Task         Phase     `json:"task,omitempty"`
	TaskReason   string    `json:"taskReason,omitempty"`
	LeaseHash    string    `json:"leaseHash,omitempty"`
	DispatchedAt time.Time `json:"dispatchedAt,omitzero"`
}

// Check returns the stage's check of a rule for an attempt, or nil.
func (st *Stage) Check(attempt int, when, rule string) *Check {
	for i := range st.Checks {
		c := &st.Checks[i]
		if c.Attempt == attempt && c.When == when && c.Rule == rule {
			return c
		}
	}
	return nil
}

func (st *Stage) check(attempt int, when, rule string) *Check {
	if c := st.Check(attempt, when, rule); c != nil {
		return c
	}
	st.Checks = append(st.Checks, Check{When: when, Rule: rule, Attempt: attempt})
	return &st.Checks[len(st.Checks)-1]
}

// conditionTask finds the check whose Command task an action name and
// attempt name (events.ConditionTaskName, stage attempt), or nil.
func conditionTask(s *State, stage, action string, attempt int) *Check {
	st := s.Stage(stage)
	if st == nil {
		return nil
	}
	for i := range st.Checks {
		c := &st.Checks[i]
		if c.Attempt == attempt && events.ConditionTaskName(c.When, c.Rule) == action {
			return c
		}
	}
	return nil
}

// evolveGates folds the events of approvals and conditions, and the task
// events of a condition's command; it reports whether it handled e.
func evolveGates(s *State, e events.Event) bool {
	at := e.Time
	switch p := e.Payload.(type) {
	case events.ActionWaiting:
		if a := current(s, p.ActionRef); a != nil && a.Type == events.KindApproval && a.Phase == Dispatched {
			a.Phase, a.StartedAt = Running, at
			a.Approval = &Approval{Instructions: p.Instructions, URL: p.URL,
				Approvers: append([]string(nil), p.Approvers...), Expires: p.Expires}
		}
	case events.ActionApproved:
		if a := current(s, p.ActionRef); a != nil && a.Waiting() && events.LeaseHolds(p.Lease, a.LeaseHash) {
			ap := *a.Approval
			ap.Decision, ap.Actor, ap.Comment = "approved", p.Actor, p.Comment
			a.Approval, a.Phase, a.EndedAt, a.Worker = &ap, Succeeded, at, p.Actor
		}
	case events.ActionRejected:
		if a := current(s, p.ActionRef); a != nil && a.Waiting() && events.LeaseHolds(p.Lease, a.LeaseHash) {
			ap := *a.Approval
			ap.Decision, ap.Actor, ap.Comment = "rejected", p.Actor, p.Comment
			reason := "rejected by " + p.Actor
			if p.Comment != "" {
				reason += ": " + p.Comment
			}
			a.Approval, a.Phase, a.EndedAt, a.Worker, a.Reason = &ap, Failed, at, p.Actor, events.TruncateReason(reason)
		}
	case events.ConditionEvaluated:
		st := s.Stage(p.Stage)
		if st == nil || p.Attempt < st.Attempt || (p.When == events.BeforeEntry && p.Attempt == st.Attempt && st.Phase != NotStarted) {
			return true // for an attempt long gone, or a stage already entered
		}
		if c := st.check(p.Attempt, p.When, p.Rule); !c.Evaluated {
			c.Type, c.Evaluated, c.Passed, c.Reason = p.Type, true, p.Passed, p.Reason
		}
	case events.StageSkipped:
		if st := s.Stage(p.Stage); st != nil && p.Attempt > st.Attempt && st.Phase != Running {
			st.Phase, st.Attempt, st.StartedAt, st.EndedAt, st.Reason = Skipped, p.Attempt, at, at, p.Reason
		}
	case events.ActionDispatched:
		t := p.Task
		if s.Action(t.Stage, t.Action) != nil {
			return false
		}
		st := s.Stage(t.Stage)
		if st == nil {
			return true
		}
		for _, when := range []string{events.BeforeEntry, events.OnSuccess} {
			for _, r := range conditionRules(s, t.Stage, when) {
				if events.ConditionTaskName(when, r.Name) != t.Action {
					continue
				}
				if c := st.check(t.Attempt, when, r.Name); c.Task == NotStarted && !c.Evaluated {
					c.Type, c.Task, c.LeaseHash, c.DispatchedAt = r.Type, Dispatched, t.LeaseHash, at
				}
				return true
			}
		}
		return true
	case events.ActionStarted:
		if s.Action(p.Stage, p.Action) != nil {
			return false
		}
		if c := conditionTask(s, p.Stage, p.Action, p.Attempt); c != nil && c.Task == Dispatched {
			c.Task = Running
		}
	case events.ActionSucceeded:
		if s.Action(p.Stage, p.Action) != nil {
			return false
		}
		if c := conditionTask(s, p.Stage, p.Action, p.Attempt); c != nil && !c.Task.Done() && c.Task != NotStarted &&
			events.LeaseHolds(p.Lease, c.LeaseHash) {
			c.Task = Succeeded
		}
	case events.ActionAbandoned:
		if s.Action(p.Stage, p.Action) != nil {
			return false
		}
		if c := conditionTask(s, p.Stage, p.Action, p.Attempt); c != nil && !c.Task.Done() && c.Task != NotStarted &&
			s.Phase == Stopping && s.Abandon && events.LeaseHolds(p.Lease, c.LeaseHash) {
			c.Task, c.TaskReason = Abandoned, p.Reason
		}
	case events.ActionFailed:
		if s.Action(p.Stage, p.Action) != nil {
			return false
		}
		if c := conditionTask(s, p.Stage, p.Action, p.Attempt); c != nil && !c.Task.Done() && c.Task != NotStarted &&
			events.LeaseHolds(p.Lease, c.LeaseHash) {
			c.Task, c.TaskReason = Failed, p.Reason
		}
	default:
		return false
	}
	return true
}

func conditionRules(s *State, stage, when string) []events.Rule {
	for _, sd := range s.Definition.Stages {
		if sd.Name != stage {
			continue
		}
		c := sd.BeforeEntry
		if when == events.OnSuccess {
			c = sd.OnSuccess
		}
		if c == nil {
			return nil
		}
		return c.Rules
	}
	return nil
}
