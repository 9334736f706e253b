package conductor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// flaky starts a conductor and a noop worker whose action "flaky" fails its
// first attempt and succeeds after; everything else succeeds.
func flaky(t *testing.T) *bus.Bus {
	t.Helper()
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, c.Run)
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 4,
		Handler: worker.HandlerFunc(func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			if task.Action == "flaky" && task.Attempt == 1 {
				return worker.Result{}, errors.New("flaky: first attempt fails")
			}
			return worker.Result{}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)
	return b
}

func flakyDef(name string, onFailure *events.OnFailure) events.Definition {
	return events.Definition{Name: name, Stages: []events.StageDef{
		{Name: "Build", Actions: []events.ActionDef{{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}}},
		{Name: "Test", OnFailure: onFailure, Actions: []events.ActionDef{
			{Name: "steady", Type: "noop", Pool: "default", RunOrder: 1},
			{Name: "flaky", Type: "noop", Pool: "default", RunOrder: 1},
		}},
		{Name: "Ship", Actions: []events.ActionDef{{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}}},
	}}
}

// TestManualRetryTurnsAFailedRunSucceeded: the run fails on its flaky test;
// a retry of the stage re-runs only the failed action and the same run
// ends Succeeded, having run the stage after it too.
func TestManualRetryTurnsAFailedRunSucceeded(t *testing.T) {
	b := flaky(t)
	def := flakyDef("retry", nil)
	id := events.RunIDForTrigger("retry", time.Now().UnixMilli())
	request(t, b, def, id)
	if st := waitDone(t, b, def.Name, id, 30*time.Second); st.Phase != run.Failed {
		t.Fatalf("first end: %s %s", st.Phase, st.Reason)
	}
	cl := command.Client{Conn: b.Conn()}
	ctx := context.Background()
	// Refusals first: an unknown stage, a stage that succeeded.
	for stage, want := range map[string]string{"Nope": "no stage", "Build": "only a stage that failed"} {
		_, err := cl.Do(ctx, command.Retry, command.Request{Run: id, Stage: stage, Actor: "test"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("retry of %s: %v, want an error containing %q", stage, err, want)
		}
	}
	reply, err := cl.Do(ctx, command.Retry, command.Request{Run: id, Stage: "Test", Actor: "alice@test"})
	if err != nil {
		t.Fatal(err)
	}
	if reply.Phase != run.Running {
		t.Fatalf("reply phase %s, want Running", reply.Phase)
	}
	st := waitDone(t, b, def.Name, id, 30*time.Second)
	if st.Phase != run.Succeeded {
		t.Fatalf("after retry: %s %s", st.Phase, st.Reason)
	}
	if a := st.Action("Test", "flaky"); a.Attempt != 2 {
		t.Errorf("flaky ran %d attempts, want 2", a.Attempt)
	}
	if a := st.Action("Test", "steady"); a.Attempt != 1 {
		t.Errorf("steady ran again (attempt %d): a retry of the failed actions must keep the succeeded ones", a.Attempt)
	}
	if s := st.Stage("Test"); s.Attempt != 2 || s.RetriedBy != "alice@test" {
		t.Errorf("stage Test: attempt %d retried by %q", s.Attempt, s.RetriedBy)
	}
	if st.Stage("Ship").Phase != run.Succeeded {
		t.Errorf("Ship did not run after the retry")
	}
	// The run has ended Succeeded: a retry now is refused.
	if _, err := cl.Do(ctx, command.Retry, command.Request{Run: id, Stage: "Test", Actor: "test"}); err == nil ||
		!strings.Contains(err.Error(), "only a Failed or Stopped run") {
		t.Errorf("retry of a succeeded run: %v", err)
	}
}

// TestAutomaticRetry: onFailure RETRY runs the failed stage again after its
// backoff (woken by NextDeadline, with no event arriving) and the run
// succeeds without a person.
func TestAutomaticRetry(t *testing.T) {
	b := flaky(t)
	def := flakyDef("autoretry", &events.OnFailure{Result: events.OnFailureRetry, Retries: 2})
	id := events.RunIDForTrigger("autoretry", time.Now().UnixMilli())
	request(t, b, def, id)
	st := waitDone(t, b, def.Name, id, 60*time.Second)
	if st.Phase != run.Succeeded {
		t.Fatalf("run: %s %s", st.Phase, st.Reason)
	}
	if s := st.Stage("Test"); s.Attempt != 2 || s.Retries != 1 || s.RetriedBy != "gantry" {
		t.Errorf("stage Test: attempt %d, %d automatic retries, retried by %q", s.Attempt, s.Retries, s.RetriedBy)
	}
}
