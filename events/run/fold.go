package run

import (
	"maps"
	"time"

	"github.com/gantry-ci/gantry/events"
)

// Fold applies events in order to a state and returns it. It never fails.
func Fold(s State, evs ...events.Event) State {
	owned := false // the caller's s is copied on the first change only
	for _, e := range evs {
		s, owned = evolve(s, e, owned)
	}
	return s
}

// Evolve applies one event. Unknown events, events for another run, events
// for an attempt that is not the current one, and results that do not carry
// the lease of the dispatched attempt (forged, or published before the
// dispatch) change nothing but the bookkeeping of the last sequence seen.
// The state given is never changed.
func Evolve(s State, e events.Event) State {
	s, _ = evolve(s, e, false)
	return s
}

// EvolveOwned is Evolve for a fold that owns its states: s came from
// EvolveOwned (or is the zero State) and no one else holds it, so it is
// changed in place instead of copied for every event (a rebuild folds
// every run this way).
func EvolveOwned(s State, e events.Event) State {
	s, _ = evolve(s, e, s.Run != "")
	return s
}

// evolve is Evolve; owned says s may be changed in place, and the result
// says whether the returned state is the caller's own.
func evolve(s State, e events.Event, owned bool) (State, bool) {
	if e.Seq > s.LastSeq {
		s.LastSeq = e.Seq
	}
	if req, ok := e.Payload.(events.RunRequested); ok {
		if s.Run != "" {
			return s, owned // a run is requested once
		}
		s.Events++
		return requested(req, e), true
	}
	if s.Run == "" || e.Subject != s.Run {
		return s, owned
	}
	s.Events++
	at := e.Time
	if !owned {
		s, owned = clone(s), true
	}
	if evolveGates(&s, e) {
		return s, owned
	}
	switch p := e.Payload.(type) {
	case events.RunStarted:
		if s.Phase == Requested {
			s.Phase, s.StartedAt = Running, at
		}
	case events.RunSucceeded:
		if !s.Phase.Done() {
			s.Phase, s.EndedAt = Succeeded, at
		}
	case events.RunFailed:
		if !s.Phase.Done() {
			s.Phase, s.EndedAt, s.Reason = Failed, at, p.Reason
		}
	case events.RunStopping:
		switch {
		case s.Phase == Requested || s.Phase == Running:
			s.Phase, s.Reason, s.Abandon, s.StoppedBy = Stopping, p.Reason, p.Abandon, p.Actor
		case s.Phase == Stopping && p.Abandon && !s.Abandon: // a stop escalated to abandon
			s.Abandon, s.Reason, s.StoppedBy = true, p.Reason, p.Actor
		}
	case events.RunSuperseded:
		// Only a run that waits between stages can be overtaken; a stop
		// asked for meanwhile gives way, as the run ends either way.
		if s.Phase == Running || s.Phase == Stopping {
			s.Phase, s.EndedAt, s.Reason, s.SupersededBy = Superseded, at, p.Reason, p.By
		}
	case events.RunStopped:
		if s.Phase == Stopping {
			s.Phase, s.EndedAt, s.Reason = Stopped, at, p.Reason
		}
	case events.ActionAbandoned:
		if a := current(&s, p.ActionRef); a != nil && a.open() && s.Phase == Stopping && s.Abandon &&
			events.LeaseHolds(p.Lease, a.LeaseHash) {
			a.Phase, a.EndedAt, a.Reason = Abandoned, at, p.Reason
		}
	case events.StageStarted:
		if st := s.Stage(p.Stage); st != nil && p.Attempt > st.Attempt {
			st.Phase, st.Attempt, st.StartedAt, st.EndedAt, st.Reason = Running, p.Attempt, at, time.Time{}, ""
		}
	case events.StageSucceeded:
		if st := s.Stage(p.Stage); st != nil && p.Attempt == st.Attempt && st.Phase == Running {
			st.Phase, st.EndedAt = Succeeded, at
		}
	case events.StageFailed:
		if st := s.Stage(p.Stage); st != nil && p.Attempt == st.Attempt && st.Phase == Running {
			st.Phase, st.EndedAt, st.Reason = Failed, at, p.Reason
			st.RollbackRequested = p.Rollback
		}
	case events.StageRetrying:
		retry(&s, p, at)
	case events.ActionDispatched:
		t := p.Task
		if a := s.Action(t.Stage, t.Action); a != nil && t.Attempt > a.Attempt {
			*a = Action{Name: a.Name, Type: a.Type, RunOrder: a.RunOrder,
				Phase: Dispatched, Attempt: t.Attempt, DispatchedAt: at, LeaseHash: t.LeaseHash}
		}
	case events.ActionStarted:
		if a := current(&s, p.ActionRef); a != nil && a.Phase == Dispatched {
			a.Phase, a.Worker, a.StartedAt = Running, p.Worker, at
		}
	case events.ActionHeartbeat:
		if a := current(&s, p.ActionRef); a != nil && a.Phase == Running && p.Beat > a.Beats {
			a.Beats = p.Beat
		}
	case events.ActionSucceeded:
		if a := current(&s, p.ActionRef); a != nil && a.open() && events.LeaseHolds(p.Lease, a.LeaseHash) {
			a.Phase, a.EndedAt = Succeeded, at
			if a.StartedAt.IsZero() {
				a.StartedAt = at
			}
			if p.Worker != "" {
				a.Worker = p.Worker
			}
			a.Outputs = append([]events.ArtifactRef(nil), p.Outputs...)
			a.Variables = maps.Clone(p.Variables)
			for _, o := range p.Outputs {
				if s.Artifacts == nil {
					s.Artifacts = map[string]events.ArtifactRef{}
				}
				s.Artifacts[o.Name] = o
			}
		}
	case events.ActionFailed:
		if a := current(&s, p.ActionRef); a != nil && a.open() && events.LeaseHolds(p.Lease, a.LeaseHash) {
			a.Phase, a.EndedAt, a.Reason = Failed, at, p.Reason
			if a.StartedAt.IsZero() {
				a.StartedAt = at
			}
			if p.Worker != "" {
				a.Worker = p.Worker
			}
		}
	case events.TestReported:
		if a := current(&s, p.ActionRef); a != nil {
			r := p
			r.Failures = append([]events.TestCase(nil), p.Failures...)
			a.Report = &r
		}
	case events.LogArchived:
		if a := current(&s, p.ActionRef); a != nil {
			l := p
			a.Log = &l
		}
	case events.ArtifactStored:
		// The artifact becomes the run's when the action that stored it
		// succeeds; stored-but-failed artifacts are not inputs to anything.
	}
	return s, owned
}

// retry applies a stage.retrying: the stage's next attempt begins and its
// actions that are to run again go back to not started, keeping their
// attempt number and lease hash (the next dispatch is attempt+1, with a new
// task ID and lease; a late result of the old attempt finds it not open and
// changes nothing). By hand it reopens a Failed or Stopped run; the
// automatic retry of onFailure happens while the run still runs.
func retry(s *State, p events.StageRetrying, at time.Time) {
	st := s.Stage(p.Stage)
	if st == nil || p.Attempt != st.Attempt+1 || !Retryable(*s, *st, p.Auto) {
		return
	}
	if !p.Auto {
		s.Phase, s.EndedAt, s.Reason, s.Abandon, s.StoppedBy = Running, time.Time{}, "", false, ""
		s.Reopened++
	} else {
		st.Retries++
	}
	st.Phase, st.Attempt, st.StartedAt, st.EndedAt, st.Reason, st.RetriedBy = Running, p.Attempt, at, time.Time{}, "", p.Actor
	st.RollbackRequested = false
	for i, a := range st.Actions {
		if p.Mode == events.RetryAll || a.Phase != Succeeded {
			st.Actions[i] = Action{Name: a.Name, Type: a.Type, RunOrder: a.RunOrder, Attempt: a.Attempt, LeaseHash: a.LeaseHash}
		}
	}
}

// Retryable reports whether stage st of run s may be retried: by hand
// (auto false) when the run ended Failed or Stopped and the stage failed or
// was cut short by the stop; automatically when the run still runs and the
// stage failed.
func Retryable(s State, st Stage, auto bool) bool {
	if auto {
		return s.Phase == Running && st.Phase == Failed
	}
	switch s.Phase {
	case Failed:
		return st.Phase == Failed
	case Stopped:
		return st.Phase == Failed || st.Phase == Running
	}
	return false
}

// open reports whether an attempt is in progress, the only state a result
// can end.
func (a *Action) open() bool { return a.Phase == Dispatched || a.Phase == Running }

func current(s *State, r events.ActionRef) *Action {
	a := s.Action(r.Stage, r.Action)
	if a == nil || a.Attempt != r.Attempt {
		return nil
	}
	return a
}

func requested(req events.RunRequested, e events.Event) State {
	s := State{
		Run:          req.Run,
		Pipeline:     req.Pipeline,
		Revision:     req.Revision,
		Definition:   req.Definition,
		Trigger:      req.Trigger,
		Variables:    maps.Clone(req.Variables),
		Phase:        Requested,
		RequestedAt:  e.Time,
		RequestedSeq: e.Seq,
		LastSeq:      e.Seq,
		Events:       1,
	}
	if rb := req.Rollback; rb != nil {
		// A rollback run starts with the target run's artifacts: the
		// stage it re-runs reads exactly what that run's did.
		r := *rb
		r.Artifacts = append([]events.ArtifactRef(nil), rb.Artifacts...)
		s.Kind, s.Rollback = events.KindRollback, &r
		for _, a := range rb.Artifacts {
			if s.Artifacts == nil {
				s.Artifacts = map[string]events.ArtifactRef{}
			}
			s.Artifacts[a.Name] = a
		}
	}
	for _, sd := range req.Definition.Stages {
		st := Stage{Name: sd.Name, Actions: make([]Action, 0, len(sd.Actions))}
		for _, ad := range sd.Actions {
			st.Actions = append(st.Actions, Action{Name: ad.Name, Type: ad.Type, RunOrder: ad.RunOrder})
		}
		s.Stages = append(s.Stages, st)
	}
	return s
}

// clone copies the parts of a state that Evolve mutates in place, so a state
// a caller holds is never changed behind its back.
func clone(s State) State {
	stages := make([]Stage, len(s.Stages))
	for i, st := range s.Stages {
		st.Actions = append([]Action(nil), st.Actions...)
		st.Checks = append([]Check(nil), st.Checks...)
		stages[i] = st
	}
	s.Stages = stages
	s.Artifacts = maps.Clone(s.Artifacts)
	return s
}
