package decider

import (
	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// enter decides about stage i, which has not started: the events that
// start it, or none while it must wait. Every rule that can hold a run
// before a stage (the stages it depends on, a disabled transition, the
// stage lock of an execution mode, beforeEntry conditions) is one check
// here, each in its own file, in that order.
func enter(s run.State, i int, in Inputs) []events.Event {
	st := s.Stages[i]
	if !dependenciesMet(s, i) {
		return nil
	}
	if evs, wait := laneCheck(s, i, in); wait {
		return evs
	}
	if evs, start := beforeEntry(s, i, in); !start {
		return evs
	}
	return one(events.StageID(s.Run, st.Name, st.Attempt+1, "started"), s.Run, in.Now,
		events.StageStarted{Run: s.Run, Stage: st.Name, Attempt: st.Attempt + 1})
}
