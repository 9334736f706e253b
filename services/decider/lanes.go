package decider

import (
	"fmt"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/lanes"
)

// laneCheck is enter's rule for what runs of a pipeline share (package
// lanes): a disabled transition and the stage lock of the execution modes
// SUPERSEDED and QUEUED. The run may start stage i once the lane let it
// in; a run the lane found overtaken ends Superseded instead. Without a
// lane in the inputs (in.Lane nil: a caller that decides one run alone,
// such as a unit test) nothing is shared and the stage may start.
func laneCheck(s run.State, i int, in Inputs) (evs []events.Event, wait bool) {
	if in.Lane == nil {
		return nil, false
	}
	st := s.Stages[i]
	if by := in.Lane.SupersededBy(s.Run); by != "" {
		return one(events.RunID(s.Run, "superseded"), s.Run, in.Now, events.RunSuperseded{
			Run: s.Run, Stage: st.Name, By: by,
			Reason: fmt.Sprintf("superseded by run %s, started later, while both waited to enter stage %s", by, st.Name)}), true
	}
	if in.Lane.Holds(st.Name, s.Run) {
		return nil, false
	}
	if lanes.Mode(s.Definition) == events.ModeParallel && !in.Lane.IsDisabled(st.Name) {
		return nil, false
	}
	return nil, true // the conductor records the wait in the lane
}
