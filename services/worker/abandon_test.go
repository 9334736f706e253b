package worker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// TestAbandonBeforeTheTaskIsTakenStillKills stops a run with abandon while
// its task waits on the queue, then starts a worker: no live
// action.abandoned reaches it (that was appended before it subscribed), so
// its periodic look at the log (every AckWait/3) must cancel the handler,
// and the result is dropped.
func TestAbandonBeforeTheTaskIsTakenStillKills(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	goRun := func(f func(context.Context) error) {
		wg.Go(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("service: %v", err)
			}
		})
	}
	c, err := conductor.New(conductor.Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	goRun(c.Run)

	def := events.Definition{Name: "shop", Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
		{Name: "compile", Type: "slow", Pool: "default", RunOrder: 1}}}}}
	runID := events.RunIDForTrigger("abandon-early", time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "requested"), "/test", runID, time.Now(), events.RunRequested{
		Pipeline: def.Name, Run: runID, Revision: 1, Definition: def, Trigger: events.Trigger{ID: runID, Kind: "manual"}})
	if err != nil {
		t.Fatal(err)
	}
	zero := uint64(0)
	if _, _, err := b.Append(ctx, def.Name, e, &zero); err != nil {
		t.Fatal(err)
	}
	tasks, err := b.JetStream().Stream(ctx, events.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err = tasks.GetLastMsgForSubject(ctx, events.TaskSubject("slow", "default")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task dispatched: %v", err)
		}
	}
	reply, err := command.Client{Conn: b.Conn()}.Do(ctx, command.Stop, command.Request{Run: runID, Abandon: true, Reason: "wrong branch"})
	if err != nil || reply.Error != "" {
		t.Fatalf("stop --abandon: %v %s", err, reply.Error)
	}

	cause := make(chan error, 1)
	handler := worker.HandlerFunc(func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return worker.Result{}, ctx.Err()
	})
	w, err := worker.New(worker.Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "slow",
		Handler: handler, WorkDir: t.TempDir(), AckWait: 900 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	goRun(w.Run)
	select {
	case err := <-cause:
		if err == nil || !strings.HasPrefix(err.Error(), "abandoned") {
			t.Fatalf("handler cancelled with %v, want the abandon", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler of an attempt abandoned before it was taken still runs")
	}
	evs, err := b.ReadRun(ctx, def.Name, runID, 0)
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
