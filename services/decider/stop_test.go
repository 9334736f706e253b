package decider_test

import (
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

func TestStop(t *testing.T) {
	disp := func(stage, action string) events.Payload {
		id := events.TaskID(runID, stage, action, 1)
		return events.ActionDispatched{Task: events.Task{ID: id, Run: runID, Stage: stage, Action: action, Attempt: 1,
			LeaseHash: events.LeaseHash(lease(stage, action, 1))}}
	}
	stop := events.RunStopping{Run: runID, Reason: "wrong branch", Actor: "alice"}
	abandon := events.RunStopping{Run: runID, Reason: "wrong branch", Actor: "alice", Abandon: true}
	inA := given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, disp("A", "x")}
	xOK := events.ActionSucceeded{ActionRef: ref("A", "x", 1), Outputs: []events.ArtifactRef{src}, Lease: lease("A", "x", 1)}
	cases := []struct {
		name  string
		given given
		then  []string
	}{
		{"a requested run stops at once", given{stop}, []string{"run.stopped"}},
		{"a stop waits for the action in progress", append(slices.Clone(inA), stop), nil},
		{"then the run stops instead of going on", append(slices.Clone(inA), stop, xOK), []string{"run.stopped"}},
		{"abandon ends the action in progress at once", append(slices.Clone(inA), abandon), []string{"action.abandoned:x"}},
		{"a stop escalated to abandon", append(slices.Clone(inA), stop, abandon), []string{"action.abandoned:x"}},
		{"once abandoned the run stops",
			append(slices.Clone(inA), abandon, events.ActionAbandoned{ActionRef: ref("A", "x", 1), Reason: "r", Lease: lease("A", "x", 1)}),
			[]string{"run.stopped"}},
		{"an abandon without the lease changes nothing",
			append(slices.Clone(inA), abandon, events.ActionAbandoned{ActionRef: ref("A", "x", 1), Reason: "r"}),
			[]string{"action.abandoned:x"}},
		{"an abandon with no stop request changes nothing",
			append(slices.Clone(inA), events.ActionAbandoned{ActionRef: ref("A", "x", 1), Reason: "r", Lease: lease("A", "x", 1)}), nil},
		{"a stop after the end changes nothing",
			append(slices.Clone(inA), events.RunFailed{Run: runID, Reason: "x"}, stop), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := decider.Decide(fold(t, c.given), in0)
			if got := summary(evs); !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
		})
	}
	// The decisions fold to the end the CLI shows.
	s := fold(t, append(slices.Clone(inA), abandon))
	for range 3 {
		s = run.Fold(s, decider.Decide(s, in0)...)
	}
	if a := s.Action("A", "x"); s.Phase != run.Stopped || a.Phase != run.Abandoned || s.Reason != "wrong branch" || s.StoppedBy != "alice" || !s.Done() {
		t.Fatalf("run %s (%q by %q), action %s", s.Phase, s.Reason, s.StoppedBy, a.Phase)
	}
	// A stop that waits still enforces the deadline.
	s = fold(t, append(slices.Clone(inA), stop))
	late := decider.Inputs{Now: t0.Add(decider.DefaultTimeout + decider.DefaultGrace), LeaseKey: key}
	if got := summary(decider.Decide(s, late)); !slices.Equal(got, []string{"action.failed:x"}) {
		t.Fatalf("stopping run past the deadline: %v", got)
	}
}
