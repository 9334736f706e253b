package run_test

import (
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// A result ends an attempt only when it carries the lease whose hash the
// dispatch recorded.
func TestFoldAcceptsOnlyLeasedResults(t *testing.T) {
	key := []byte("conductor key")
	lease := events.LeaseToken(key, events.TaskID(id, "A", "x", 1))
	wrong := events.LeaseToken([]byte("forger's key"), events.TaskID(id, "A", "x", 1))
	head := func() []events.Event {
		return []events.Event{
			e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Revision: 1, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}}),
			e(t, 2, events.RunStarted{Run: id}),
			e(t, 3, events.StageStarted{Run: id, Stage: "A", Attempt: 1}),
		}
	}
	dispatched := func(seq int) events.Event {
		return e(t, seq, events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", "x", 1), Run: id, Stage: "A", Action: "x",
			Attempt: 1, LeaseHash: events.LeaseHash(lease)}})
	}
	ok := func(seq int, l string) events.Event {
		return e(t, seq, events.ActionSucceeded{ActionRef: ref(1), Worker: "w", Lease: l})
	}
	failed := func(seq int, l string) events.Event {
		return e(t, seq, events.ActionFailed{ActionRef: ref(1), Worker: "w", Reason: "exit 1", Lease: l})
	}
	cases := []struct {
		name string
		then []events.Event
		want run.Phase
	}{
		{"the right lease succeeds", []events.Event{dispatched(4), ok(5, lease)}, run.Succeeded},
		{"the right lease fails", []events.Event{dispatched(4), failed(5, lease)}, run.Failed},
		{"a wrong lease is ignored", []events.Event{dispatched(4), ok(5, wrong)}, run.Dispatched},
		{"a missing lease is ignored", []events.Event{dispatched(4), ok(5, "")}, run.Dispatched},
		{"the hash itself is not the lease", []events.Event{dispatched(4), ok(5, events.LeaseHash(lease))}, run.Dispatched},
		{"a forged success does not hide the real failure", []events.Event{dispatched(4), ok(5, wrong), failed(6, lease)}, run.Failed},
		{"a success published before the dispatch, then the real failure",
			[]events.Event{ok(4, ""), ok(5, wrong), dispatched(6), failed(7, lease)}, run.Failed},
		{"a success published before the dispatch, then the real success",
			[]events.Event{ok(4, ""), dispatched(5), ok(6, lease)}, run.Succeeded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := run.Fold(run.State{}, append(head(), c.then...)...)
			if a := s.Action("A", "x"); a.Phase != c.want {
				t.Fatalf("action %s, want %s", a.Phase, c.want)
			}
		})
	}
}
