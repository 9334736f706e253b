package run_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

const id = "01a2154b-ea92-7634-ac3c-6b12b7b33cb5"

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func def() events.Definition {
	return events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{{Name: "x", Type: "build", Pool: "default", RunOrder: 1, Outputs: []string{"out"}}}},
	}}
}

func e(t *testing.T, seq int, p events.Payload) events.Event {
	t.Helper()
	ev, err := events.New(fmt.Sprintf("id-%d", seq), "/test", id, t0.Add(time.Duration(seq)*time.Second), p)
	if err != nil {
		t.Fatal(err)
	}
	ev.Seq = uint64(seq)
	return ev
}

func ref(attempt int) events.ActionRef {
	return events.ActionRef{Run: id, Stage: "A", Action: "x", Attempt: attempt}
}

func TestFold(t *testing.T) {
	out := events.ArtifactRef{Name: "out", Key: "p/" + id + "/out", SHA256: "ab", Size: 9}
	evs := []events.Event{
		e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Revision: 3, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}}),
		e(t, 2, events.RunStarted{Run: id}),
		e(t, 3, events.StageStarted{Run: id, Stage: "A", Attempt: 1}),
		e(t, 4, events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", "x", 1), Run: id, Stage: "A", Action: "x", Attempt: 1}}),
		e(t, 5, events.ActionStarted{ActionRef: ref(1), Worker: "w1"}),
		e(t, 6, events.ActionHeartbeat{ActionRef: ref(1), Worker: "w1", Beat: 1}),
		e(t, 7, events.ActionSucceeded{ActionRef: ref(1), Worker: "w1", Outputs: []events.ArtifactRef{out}, Variables: map[string]string{"V": "1"}}),
		e(t, 8, events.StageSucceeded{Run: id, Stage: "A", Attempt: 1}),
		e(t, 9, events.RunSucceeded{Run: id}),
	}
	cases := []struct {
		name  string
		upTo  int
		check func(run.State) error
	}{
		{"requested", 1, func(s run.State) error {
			return want(s.Phase == run.Requested && s.Revision == 3 && len(s.Stages) == 1 && s.Stages[0].Actions[0].Phase == run.NotStarted, s)
		}},
		{"dispatched", 4, func(s run.State) error {
			a := s.Action("A", "x")
			return want(s.Phase == run.Running && a.Phase == run.Dispatched && a.Attempt == 1 && a.DispatchedAt.Equal(t0.Add(4*time.Second)), s)
		}},
		{"running with a heartbeat", 6, func(s run.State) error {
			a := s.Action("A", "x")
			return want(a.Phase == run.Running && a.Worker == "w1" && a.Beats == 1, s)
		}},
		{"succeeded with outputs", 7, func(s run.State) error {
			a := s.Action("A", "x")
			return want(a.Phase == run.Succeeded && s.Artifacts["out"] == out && a.Variables["V"] == "1", s)
		}},
		{"ended", 9, func(s run.State) error {
			return want(s.Done() && s.Phase == run.Succeeded && s.LastSeq == 9 && s.Events == 9 && s.EndedAt.Equal(t0.Add(9*time.Second)), s)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.check(run.Fold(run.State{}, evs[:c.upTo]...)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func want(ok bool, s run.State) error {
	if ok {
		return nil
	}
	b, _ := json.MarshalIndent(s, "", " ")
	return fmt.Errorf("unexpected state:\n%s", b)
}

// Results of other attempts, events of other runs, repeats and a second
// run.requested change nothing but the bookkeeping.
func TestFoldIgnoresWhatIsNotCurrent(t *testing.T) {
	base := run.Fold(run.State{},
		e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}}),
		e(t, 2, events.RunStarted{Run: id}),
		e(t, 3, events.StageStarted{Run: id, Stage: "A", Attempt: 1}),
		e(t, 4, events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", "x", 2), Run: id, Stage: "A", Action: "x", Attempt: 2}}),
	)
	other, _ := events.New("o", "/test", "another-run", t0, events.RunFailed{Run: "another-run", Reason: "x"})
	for _, ev := range []events.Event{
		e(t, 5, events.ActionSucceeded{ActionRef: ref(1)}),
		e(t, 5, events.ActionFailed{ActionRef: ref(3), Reason: "future"}),
		e(t, 5, events.StageSucceeded{Run: id, Stage: "A", Attempt: 7}),
		e(t, 5, events.RunRequested{Pipeline: "p", Run: id, Definition: events.Definition{Name: "other"}}),
		e(t, 5, events.StageStarted{Run: id, Stage: "A", Attempt: 1}),
		other,
	} {
		got := run.Evolve(base, ev)
		a, _ := json.Marshal(base.Action("A", "x"))
		b, _ := json.Marshal(got.Action("A", "x"))
		if string(a) != string(b) || got.Phase != base.Phase || got.Stages[0].Phase != base.Stages[0].Phase || got.Definition.Name != "p" {
			t.Fatalf("%s changed the run", ev.Type)
		}
	}
}

// Evolve never changes the state it was given.
func TestEvolveDoesNotMutateItsInput(t *testing.T) {
	s := run.Fold(run.State{},
		e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}}),
		e(t, 2, events.RunStarted{Run: id}),
		e(t, 3, events.StageStarted{Run: id, Stage: "A", Attempt: 1}))
	before, _ := json.Marshal(s)
	_ = run.Evolve(s, e(t, 4, events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", "x", 1), Run: id, Stage: "A", Action: "x", Attempt: 1}}))
	after, _ := json.Marshal(s)
	if string(before) != string(after) {
		t.Fatal("Evolve mutated the state it was given")
	}
}

// actionRunning is a run of def() up to its one action running on w1
// (sequences 1 to 5).
func actionRunning(t *testing.T) []events.Event {
	return []events.Event{
		e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}}),
		e(t, 2, events.RunStarted{Run: id}),
		e(t, 3, events.StageStarted{Run: id, Stage: "A", Attempt: 1}),
		e(t, 4, events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", "x", 1), Run: id, Stage: "A", Action: "x", Attempt: 1}}),
		e(t, 5, events.ActionStarted{ActionRef: ref(1), Worker: "w1"}),
	}
}

// BenchmarkFold measures the pure fold alone (rebuild speed is bounded by it).
func BenchmarkFold(b *testing.B) {
	t := &testing.T{}
	evs := append(actionRunning(t),
		e(t, 6, events.ActionSucceeded{ActionRef: ref(1), Worker: "w1"}),
		e(t, 7, events.StageSucceeded{Run: id, Stage: "A", Attempt: 1}),
		e(t, 8, events.RunSucceeded{Run: id}),
	)
	b.ReportAllocs()
	for b.Loop() {
		_ = run.Fold(run.State{}, evs...)
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestFoldOwnsOnlyWhatItMade: Fold copies the caller's state once and then
// changes its own copy in place; EvolveOwned does the same for a rebuild.
// Both must give exactly what Evolve event by event gives, and leave the
// caller's state as it was.
func TestFoldOwnsOnlyWhatItMade(t *testing.T) {
	evs := append(actionRunning(t),
		e(t, 6, events.ActionFailed{ActionRef: ref(1), Worker: "w1", Reason: "boom"}),
		e(t, 7, events.StageFailed{Run: id, Stage: "A", Attempt: 1, Reason: "boom"}),
		e(t, 8, events.RunFailed{Run: id, Reason: "boom"}),
	)
	var want run.State
	for _, ev := range evs {
		want = run.Evolve(want, ev)
	}
	wantJSON, _ := json.Marshal(want)
	for split := range len(evs) + 1 {
		head := run.Fold(run.State{}, evs[:split]...)
		before, _ := json.Marshal(head)
		got := run.Fold(head, evs[split:]...)
		if b, _ := json.Marshal(got); string(b) != string(wantJSON) {
			t.Errorf("Fold from event %d: %s, want %s", split, b, wantJSON)
		}
		if after, _ := json.Marshal(head); string(after) != string(before) {
			t.Errorf("Fold from event %d changed the state it was given", split)
		}
	}
	var owned run.State
	for _, ev := range evs {
		owned = run.EvolveOwned(owned, ev)
	}
	if b, _ := json.Marshal(owned); string(b) != string(wantJSON) {
		t.Errorf("EvolveOwned: %s, want %s", b, wantJSON)
	}
}
