package decider_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// retryDef: stage A (x), stage B with y and z in parallel; B retries
// automatically twice when retries is set.
func retryDef(retries int) events.Definition {
	d := events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{{Name: "x", Type: "build", Pool: "default", RunOrder: 1}}},
		{Name: "B", Actions: []events.ActionDef{
			{Name: "y", Type: "build", Pool: "default", RunOrder: 1},
			{Name: "z", Type: "build", Pool: "default", RunOrder: 1},
		}},
	}}
	if retries > 0 {
		d.Stages[1].OnFailure = &events.OnFailure{Result: events.OnFailureRetry, Retries: retries}
	}
	return d
}

func dispN(stage, action string, n int) events.Payload {
	return events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, stage, action, n), Run: runID, Stage: stage,
		Action: action, Attempt: n, LeaseHash: events.LeaseHash(lease(stage, action, n))}}
}

func okN(stage, action string, n int) events.Payload {
	return events.ActionSucceeded{ActionRef: ref(stage, action, n), Lease: lease(stage, action, n)}
}

func badN(stage, action string, n int) events.Payload {
	return events.ActionFailed{ActionRef: ref(stage, action, n), Lease: lease(stage, action, n), Reason: "exit 1"}
}

// bFailed: A succeeded; in B, y succeeded and z failed; B failed.
var bFailed = given{events.RunStarted{Run: runID},
	events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, dispN("A", "x", 1), okN("A", "x", 1),
	events.StageSucceeded{Run: runID, Stage: "A", Attempt: 1},
	events.StageStarted{Run: runID, Stage: "B", Attempt: 1}, dispN("B", "y", 1), dispN("B", "z", 1),
	okN("B", "y", 1), badN("B", "z", 1), events.StageFailed{Run: runID, Stage: "B", Attempt: 1, Reason: "z failed"}}

func retrying(mode string, auto bool) events.Payload {
	return events.StageRetrying{Run: runID, Stage: "B", Attempt: 2, Mode: mode, Auto: auto, Actor: "alice"}
}

func TestManualRetry(t *testing.T) {
	then := func(g given, more ...events.Payload) given { return append(slices.Clone(g), more...) }
	runFailed := then(bFailed, events.RunFailed{Run: runID, Stage: "B", Reason: "stage B failed"})
	cases := []struct {
		name  string
		given given
		then  []string
	}{
		{"a retry of the failed actions re-dispatches only them, as attempt 2",
			then(runFailed, retrying(events.RetryFailed, false)), []string{"dispatched:B/z#2"}},
		{"a retry of all actions re-dispatches every one",
			then(runFailed, retrying(events.RetryAll, false)), []string{"dispatched:B/y#2", "dispatched:B/z#2"}},
		{"the retried attempt's success ends the stage",
			then(runFailed, retrying(events.RetryFailed, false), dispN("B", "z", 2), okN("B", "z", 2)), []string{"stage.succeeded:B"}},
		{"and then the run, in the same run",
			then(runFailed, retrying(events.RetryFailed, false), dispN("B", "z", 2), okN("B", "z", 2),
				events.StageSucceeded{Run: runID, Stage: "B", Attempt: 2}), []string{"run.succeeded"}},
		{"a late result of the old attempt changes nothing",
			then(runFailed, retrying(events.RetryFailed, false), okN("B", "z", 1)), []string{"dispatched:B/z#2"}},
		{"a retry of a running run is ignored by the fold",
			then(bFailed, retrying(events.RetryFailed, false)), []string{"run.failed:B"}},
		{"a stopped run's abandoned action runs again",
			given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, dispN("A", "x", 1),
				events.RunStopping{Run: runID, Abandon: true, Reason: "stop"},
				events.ActionAbandoned{ActionRef: ref("A", "x", 1), Lease: lease("A", "x", 1), Reason: "stop"},
				events.RunStopped{Run: runID, Reason: "stop"},
				events.StageRetrying{Run: runID, Stage: "A", Attempt: 2, Mode: events.RetryFailed, Actor: "bob"}},
			[]string{"dispatched:A/x#2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summary(decider.Decide(foldDef(t, retryDef(0), c.given), in0))
			if !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
		})
	}
}

func TestRetryReopensTheRun(t *testing.T) {
	s := foldDef(t, retryDef(0), append(slices.Clone(bFailed), events.RunFailed{Run: runID, Stage: "B", Reason: "x"},
		retrying(events.RetryFailed, false)))
	st := s.Stage("B")
	if s.Phase != run.Running || s.Reopened != 1 || !s.EndedAt.IsZero() || st.Phase != run.Running || st.Attempt != 2 || st.RetriedBy != "alice" {
		t.Fatalf("run %s reopened %d, stage %+v", s.Phase, s.Reopened, st)
	}
	if y, z := s.Action("B", "y"), s.Action("B", "z"); y.Phase != run.Succeeded || z.Phase != run.NotStarted || z.Attempt != 1 {
		t.Fatalf("y %+v z %+v", y, z)
	}
	// A second failure ends the run again under a new event ID (the bus
	// would drop a repeat of the first run.failed's ID).
	s = foldDef(t, retryDef(0), append(slices.Clone(bFailed), events.RunFailed{Run: runID, Stage: "B", Reason: "x"},
		retrying(events.RetryFailed, false), dispN("B", "z", 2), badN("B", "z", 2),
		events.StageFailed{Run: runID, Stage: "B", Attempt: 2, Reason: "again"}))
	evs := decider.Decide(s, in0)
	if len(evs) != 1 || evs[0].ID == events.RunID(runID, "failed") {
		t.Fatalf("second failure: %v", evs)
	}
}

func TestAutomaticRetry(t *testing.T) {
	then := func(g given, more ...events.Payload) given { return append(slices.Clone(g), more...) }
	at := func(d time.Duration) decider.Inputs { in := in0; in.Now = t0.Add(d); return in }
	secondFailure := then(bFailed, retrying(events.RetryFailed, true), dispN("B", "z", 2), badN("B", "z", 2),
		events.StageFailed{Run: runID, Stage: "B", Attempt: 2, Reason: "again"})
	thirdFailure := then(secondFailure, events.StageRetrying{Run: runID, Stage: "B", Attempt: 3, Mode: events.RetryFailed, Auto: true, Actor: "gantry"},
		dispN("B", "z", 3), badN("B", "z", 3), events.StageFailed{Run: runID, Stage: "B", Attempt: 3, Reason: "thrice"})
	cases := []struct {
		name  string
		given given
		in    decider.Inputs
		then  []string
		wake  time.Duration // NextDeadline after t0; 0 for none
	}{
		{"the failed stage waits for its backoff", bFailed, at(time.Second), nil, decider.RetryBackoff},
		{"then retries", bFailed, at(decider.RetryBackoff), []string{"dev.gantry.stage.retrying"}, decider.RetryBackoff},
		{"the retry dispatches the failed action again",
			then(bFailed, retrying(events.RetryFailed, true)), at(decider.RetryBackoff), []string{"dispatched:B/z#2"}, 0},
		{"the second retry waits twice as long", secondFailure, at(decider.RetryBackoff), nil, 2 * decider.RetryBackoff},
		{"the retries are used up: the run fails", thirdFailure, at(time.Hour), []string{"run.failed:B"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := foldDef(t, retryDef(2), c.given)
			got := summary(decider.Decide(s, c.in))
			if !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
			next, ok := decider.NextDeadline(s, c.in)
			if c.wake == 0 {
				if ok && next.Before(t0.Add(time.Minute)) {
					t.Fatalf("wakes at %s, want no retry wake-up", next)
				}
				return
			}
			if !ok || !next.Equal(t0.Add(c.wake)) {
				t.Fatalf("NextDeadline = %s %v, want t0+%s", next, ok, c.wake)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for k, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		if got := decider.Backoff(k); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", k, got, want)
		}
	}
}
