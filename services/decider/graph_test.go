package decider_test

import (
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// diamond: A, then B and C (both dependsOn A), then D (dependsOn B and C);
// C has two runOrder groups.
func diamond() events.Definition {
	act := func(name string, order int) events.ActionDef {
		return events.ActionDef{Name: name, Type: "build", Pool: "default", RunOrder: order}
	}
	return events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{act("a", 1)}},
		{Name: "B", DependsOn: []string{"A"}, Actions: []events.ActionDef{act("b", 1)}},
		{Name: "C", DependsOn: []string{"A"}, Actions: []events.ActionDef{act("c1", 1), act("c2", 2)}},
		{Name: "D", DependsOn: []string{"C", "B"}, Actions: []events.ActionDef{act("d", 1)}},
	}}
}

func foldDef(t *testing.T, d events.Definition, g given) run.State {
	t.Helper()
	s := run.State{}
	for i, p := range append(given{events.RunRequested{Pipeline: "p", Run: runID, Revision: 1, Definition: d,
		Trigger: events.Trigger{ID: "t", Kind: "manual"}}}, g...) {
		e := ev(t, p)
		e.Seq = uint64(i + 1)
		s = run.Evolve(s, e)
	}
	return s
}

func TestDecideGraph(t *testing.T) {
	disp := func(stage, action string) events.Payload {
		return events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, stage, action, 1), Run: runID, Stage: stage,
			Action: action, Attempt: 1, LeaseHash: events.LeaseHash(lease(stage, action, 1))}}
	}
	ok := func(stage, action string) events.Payload {
		return events.ActionSucceeded{ActionRef: ref(stage, action, 1), Lease: lease(stage, action, 1)}
	}
	bad := func(stage, action string) events.Payload {
		return events.ActionFailed{ActionRef: ref(stage, action, 1), Lease: lease(stage, action, 1), Reason: "exit 1"}
	}
	startedStage := func(name string) events.Payload { return events.StageStarted{Run: runID, Stage: name, Attempt: 1} }
	succeeded := func(name string) events.Payload { return events.StageSucceeded{Run: runID, Stage: name, Attempt: 1} }
	then := func(g given, more ...events.Payload) given { return append(slices.Clone(g), more...) }

	aDone := given{events.RunStarted{Run: runID}, startedStage("A"), disp("A", "a"), ok("A", "a"), succeeded("A")}
	fanned := then(aDone, startedStage("B"), startedStage("C"))
	both := then(fanned, disp("B", "b"), disp("C", "c1"))
	cases := []struct {
		name  string
		given given
		then  []string
	}{
		{"a started run enters only the root", given{events.RunStarted{Run: runID}}, []string{"stage.started:A#1"}},
		{"fan-out: both dependants of A start together", aDone, []string{"stage.started:B#1", "stage.started:C#1"}},
		{"parallel stages dispatch in one decision", fanned, []string{"dispatched:B/b#1", "dispatched:C/c1#1"}},
		{"parallel stages wait together", both, nil},
		{"one branch ends while the other runs", then(both, ok("B", "b")), []string{"stage.succeeded:B"}},
		{"each branch moves on its own", then(both, ok("B", "b"), ok("C", "c1")),
			[]string{"stage.succeeded:B", "dispatched:C/c2#1"}},
		{"fan-in: D waits for its last dependency", then(both, ok("B", "b"), succeeded("B"), ok("C", "c1"), disp("C", "c2")), nil},
		{"fan-in: D starts once both succeeded",
			then(both, ok("B", "b"), succeeded("B"), ok("C", "c1"), disp("C", "c2"), ok("C", "c2"), succeeded("C")),
			[]string{"stage.started:D#1"}},
		{"a failed branch lets the other finish its action", then(both, bad("B", "b")), []string{"stage.failed:B"}},
		{"a failed stage waits for actions in progress elsewhere",
			then(both, bad("B", "b"), events.StageFailed{Run: runID, Stage: "B", Attempt: 1, Reason: "b"}), nil},
		{"a failed stage stops the other branch's next group",
			then(both, bad("B", "b"), events.StageFailed{Run: runID, Stage: "B", Attempt: 1, Reason: "b"}, ok("C", "c1")),
			[]string{"run.failed:B"}},
		{"a failure keeps stages not yet started from starting",
			then(aDone, startedStage("B"), disp("B", "b"), bad("B", "b"), events.StageFailed{Run: runID, Stage: "B", Attempt: 1, Reason: "b"}),
			[]string{"run.failed:B"}},
		{"the run succeeds after D",
			then(both, ok("B", "b"), succeeded("B"), ok("C", "c1"), disp("C", "c2"), ok("C", "c2"), succeeded("C"),
				startedStage("D"), disp("D", "d"), ok("D", "d"), succeeded("D")),
			[]string{"run.succeeded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summary(decider.Decide(foldDef(t, diamond(), c.given), in0))
			if !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
		})
	}
}

func TestDependencies(t *testing.T) {
	d := diamond()
	d.Stages = append(d.Stages, events.StageDef{Name: "E", DependsOn: []string{"nope", "E"}})
	for i, want := range [][]int{nil, {0}, {0}, {2, 1}, nil} {
		if got := decider.Dependencies(d, i); !slices.Equal(got, want) {
			t.Errorf("Dependencies(%s) = %v, want %v", d.Stages[i].Name, got, want)
		}
	}
	// Without dependsOn a stage follows the one before it.
	if got := decider.Dependencies(def(), 1); !slices.Equal(got, []int{0}) {
		t.Errorf("implicit dependency = %v", got)
	}
}
