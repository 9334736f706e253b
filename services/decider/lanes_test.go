package decider_test

import (
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/lanes"
)

// laneOf folds lane events into a lane state.
func laneOf(ps ...events.Payload) *lanes.State {
	var l lanes.State
	for i, p := range ps {
		e, err := events.New("lane/"+string(rune('a'+i)), lanes.Source, events.LaneToken, t0, p)
		if err != nil {
			panic(err)
		}
		e.Seq = uint64(i + 1)
		l = lanes.Evolve(l, e)
	}
	return &l
}

func TestLaneCheck(t *testing.T) {
	started := given{events.RunStarted{Run: runID}}
	inA := given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}}
	entered := func(stage string) events.Payload {
		return events.LaneEntered{Pipeline: "p", Run: runID, Stage: stage}
	}
	other := "01a2154b-ea92-7634-ac3c-6b12b7b33cb6"
	cases := []struct {
		name  string
		mode  string
		given given
		lane  *lanes.State
		then  []string
	}{
		{"no lane: decided alone, the stage starts", "", started, nil, []string{"stage.started:A#1"}},
		{"SUPERSEDED: waits until the lane lets it in", events.ModeSuperseded, started, laneOf(), nil},
		{"QUEUED: waits until the lane lets it in", events.ModeQueued, started, laneOf(), nil},
		{"waits while another run holds the stage", "", started, laneOf(events.LaneEntered{Pipeline: "p", Run: other, Stage: "A"}), nil},
		{"let in: the stage starts", "", started, laneOf(entered("A")), []string{"stage.started:A#1"}},
		{"let into another stage only: waits", "", started, laneOf(entered("B")), nil},
		{"overtaken: the run ends Superseded", events.ModeSuperseded, started,
			laneOf(events.LaneSuperseded{Pipeline: "p", Run: runID, Stage: "A", By: other}), []string{events.TypeRunSuperseded}},
		{"PARALLEL: no lock, the stage starts", events.ModeParallel, started, laneOf(), []string{"stage.started:A#1"}},
		{"PARALLEL: a disabled transition holds it", events.ModeParallel, started,
			laneOf(events.LaneTransition{Pipeline: "p", Stage: "A", Disabled: true, Reason: "freeze"}), nil},
		{"PARALLEL: let through the enabled transition", events.ModeParallel, started,
			laneOf(events.LaneTransition{Pipeline: "p", Stage: "A", Disabled: true, Reason: "freeze"}, entered("A")), []string{"stage.started:A#1"}},
		{"a run in a stage is not held by the lane", "", inA, laneOf(), []string{"dispatched:A/x#1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := def()
			d.ExecutionMode = c.mode
			s := foldDef(t, d, c.given)
			in := in0
			in.Lane = c.lane
			if got := summary(decider.Decide(s, in)); !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
		})
	}
	// The run.superseded ends the run, naming who overtook it.
	s := foldDef(t, def(), started)
	in := in0
	in.Lane = laneOf(events.LaneSuperseded{Pipeline: "p", Run: runID, Stage: "A", By: other})
	s = run.Fold(s, decider.Decide(s, in)...)
	if s.Phase != run.Superseded || s.SupersededBy != other || !s.Done() {
		t.Fatalf("run %s by %q", s.Phase, s.SupersededBy)
	}
}
