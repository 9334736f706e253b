package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/worker"
)

// TestStoppingWorkerHandsTaskBack: a worker told to stop (SIGTERM cancels
// its context) in the middle of a task hands the task back at once, and
// another worker redoes it long before AckWait would have returned it.
// Before, the stopping worker just returned and the task sat unacknowledged
// for the whole AckWait (30 s by default).
func TestStoppingWorkerHandsTaskBack(t *testing.T) {
	const ackWait = 2 * time.Minute // far beyond the test's deadline
	r := newRig(t)
	ctx, wg := r.ctx, &r.wg
	// The first worker takes the task and holds it until it is stopped.
	taken := make(chan struct{})
	var once sync.Once
	firstCtx, stopFirst := context.WithCancel(ctx)
	first, err := worker.New(worker.Options{Bus: r.bus(), Log: zerolog.Nop(), Kind: "slow",
		Name: "first", AckWait: ackWait, WorkDir: t.TempDir(),
		Handler: worker.HandlerFunc(func(ctx context.Context, _ *worker.Task) (worker.Result, error) {
			once.Do(func() { close(taken) })
			<-ctx.Done()
			return worker.Result{}, ctx.Err()
		})})
	if err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan struct{})
	wg.Go(func() { defer close(firstDone); _ = first.Run(firstCtx) })

	runID := r.request("drain", events.ActionDef{Name: "compile", Type: "slow", Pool: "default", RunOrder: 1})
	select {
	case <-taken:
	case <-time.After(30 * time.Second):
		t.Fatal("the first worker never got the task")
	}

	// A second worker is ready; then the first is stopped mid-task.
	second, err := worker.New(worker.Options{Bus: r.bus(), Log: zerolog.Nop(), Kind: "slow",
		Name: "second", AckWait: ackWait, WorkDir: t.TempDir(),
		Handler: worker.HandlerFunc(func(context.Context, *worker.Task) (worker.Result, error) { return worker.Result{}, nil })})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = second.Run(ctx) })
	stopped := time.Now()
	stopFirst()
	<-firstDone

	var st run.State
	for deadline := stopped.Add(ackWait / 2); !st.Done(); time.Sleep(50 * time.Millisecond) {
		evs, err := r.b.ReadRun(ctx, "drain", runID, 0)
		if err != nil {
			t.Fatal(err)
		}
		st = run.Fold(run.State{}, evs...)
		if time.Now().After(deadline) {
			t.Fatalf("run not done %s after the first worker stopped (AckWait %s): the task was not handed back", time.Since(stopped), ackWait)
		}
	}
	if st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", st.Phase, st.Reason)
	}
	evs, err := r.b.ReadRun(ctx, "drain", runID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var by string
	for _, e := range evs {
		if p, ok := e.Payload.(events.ActionSucceeded); ok {
			by = p.Worker
		}
	}
	if by != "second" {
		t.Errorf("succeeded by %q, want the second worker", by)
	}
	t.Logf("redone %s after the first worker stopped (AckWait %s)", time.Since(stopped).Round(time.Millisecond), ackWait)
}
