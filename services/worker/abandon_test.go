package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/worker"
)

// TestAbandonBeforeTheTaskIsTakenStillKills stops a run with abandon while
// its task waits on the queue, then starts a worker: no live
// action.abandoned reaches it (that was appended before it subscribed), so
// its periodic look at the log (every AckWait/3) must cancel the handler,
// and the result is dropped.
func TestAbandonBeforeTheTaskIsTakenStillKills(t *testing.T) {
	r := newRig(t)
	runID := r.request("shop", events.ActionDef{Name: "compile", Type: "slow", Pool: "default", RunOrder: 1})
	r.dispatched("slow")
	reply, err := command.Client{Conn: r.b.Conn()}.Do(r.ctx, command.Stop, command.Request{Run: runID, Abandon: true, Reason: "wrong branch"})
	if err != nil || reply.Error != "" {
		t.Fatalf("stop --abandon: %v %s", err, reply.Error)
	}

	cause := make(chan error, 1)
	handler := worker.HandlerFunc(func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return worker.Result{}, ctx.Err()
	})
	w, err := worker.New(worker.Options{Bus: r.bus(), Log: zerolog.Nop(), Kind: "slow",
		Handler: handler, WorkDir: t.TempDir(), AckWait: 900 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.goRun(w.Run)
	select {
	case err := <-cause:
		if err == nil || !strings.HasPrefix(err.Error(), "abandoned") {
			t.Fatalf("handler cancelled with %v, want the abandon", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler of an attempt abandoned before it was taken still runs")
	}
	evs, err := r.b.ReadRun(r.ctx, "shop", runID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		switch e.Payload.(type) {
		case events.ActionSucceeded, events.ActionFailed:
			t.Errorf("the abandoned attempt got a result: %s", e.Type)
		}
	}
}
