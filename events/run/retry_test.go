package run_test

import (
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

func TestFoldRetry(t *testing.T) {
	l := events.LeaseToken([]byte("k"), events.TaskID(id, "A", "x", 1))
	failed := []events.Payload{
		events.RunRequested{Pipeline: "p", Run: id, Revision: 1, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}},
		events.RunStarted{Run: id},
		events.StageStarted{Run: id, Stage: "A", Attempt: 1},
		events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", "x", 1), Run: id, Stage: "A", Action: "x", Attempt: 1,
			LeaseHash: events.LeaseHash(l)}},
		events.ActionFailed{ActionRef: ref(1), Lease: l, Reason: "boom"},
		events.StageFailed{Run: id, Stage: "A", Attempt: 1, Reason: "x"},
	}
	fold := func(ps ...events.Payload) run.State {
		var evs []events.Event
		for i, p := range ps {
			evs = append(evs, e(t, i+1, p))
		}
		return run.Fold(run.State{}, evs...)
	}
	retry := func(attempt int, auto bool) events.Payload {
		return events.StageRetrying{Run: id, Stage: "A", Attempt: attempt, Mode: events.RetryFailed, Auto: auto, Actor: "a"}
	}
	ended := append(append([]events.Payload{}, failed...), events.RunFailed{Run: id, Stage: "A", Reason: "x"})

	if s := fold(append(ended, retry(2, false))...); s.Phase != run.Running || s.Reopened != 1 || s.Stages[0].Phase != run.Running ||
		s.Stages[0].Attempt != 2 || s.Stages[0].Actions[0].Phase != run.NotStarted || s.Stages[0].Actions[0].LeaseHash != events.LeaseHash(l) {
		t.Errorf("a retry by hand did not reopen the run and the stage: %+v", s)
	}
	if s := fold(append(ended, retry(2, false), retry(2, false))...); s.Reopened != 1 {
		t.Errorf("a repeated retry applied twice")
	}
	if s := fold(append(ended, retry(3, false))...); s.Phase != run.Failed {
		t.Errorf("a retry skipping an attempt applied")
	}
	if s := fold(append(failed, retry(2, false))...); s.Stages[0].Phase != run.Failed {
		t.Errorf("a retry by hand of a running run applied")
	}
	if s := fold(append(ended, retry(2, true))...); s.Phase != run.Failed {
		t.Errorf("an automatic retry reopened an ended run")
	}
	if s := fold(append(failed, retry(2, true))...); s.Phase != run.Running || s.Stages[0].Retries != 1 || s.Stages[0].Phase != run.Running {
		t.Errorf("an automatic retry of a failed stage did not apply: %+v", s)
	}
	// The old attempt's late result finds the action not started: nothing.
	late := events.ActionSucceeded{ActionRef: ref(1), Lease: l}
	if s := fold(append(ended, retry(2, false), late)...); s.Stages[0].Actions[0].Phase != run.NotStarted {
		t.Errorf("a late result of the retried attempt applied: %+v", s.Stages[0].Actions[0])
	}
}
