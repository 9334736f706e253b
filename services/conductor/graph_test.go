package conductor_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// TestDiamondRunsItsMiddleStagesInParallel: A -> {B, C} -> D. B and C are
// both dispatched before either finishes (their handlers each wait, up to a
// generous bound, for the other to have started, so a conductor that ran
// them one after the other would show B ending before C is dispatched), and
// D starts only after both succeeded. The proof is the log's order.
func TestDiamondRunsItsMiddleStagesInParallel(t *testing.T) {
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

	var mu sync.Mutex
	middle := map[string]bool{}
	both := make(chan struct{})
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 4,
		Handler: worker.HandlerFunc(func(ctx context.Context, task *worker.Task) (worker.Result, error) {
			if task.Stage != "B" && task.Stage != "C" {
				return worker.Result{}, nil
			}
			mu.Lock()
			middle[task.Stage] = true
			if len(middle) == 2 {
				close(both)
			}
			mu.Unlock()
			select {
			case <-both:
			case <-time.After(20 * time.Second):
			case <-ctx.Done():
			}
			return worker.Result{}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)

	act := events.ActionDef{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}
	def := events.Definition{Name: "diamond", Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{act}},
		{Name: "B", DependsOn: []string{"A"}, Actions: []events.ActionDef{act}},
		{Name: "C", DependsOn: []string{"A"}, Actions: []events.ActionDef{act}},
		{Name: "D", DependsOn: []string{"B", "C"}, Actions: []events.ActionDef{act}},
	}}
	id := events.RunIDForTrigger("diamond", time.Now().UnixMilli())
	request(t, b, def, id)
	st := waitDone(t, b, def.Name, id, 60*time.Second)
	if st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s %s", id, st.Phase, st.Reason)
	}
	evs, err := b.ReadRun(ctx, def.Name, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := validSequence(def, evs); err != nil {
		t.Fatal(err)
	}
	at := map[string]int{}
	for i, e := range evs {
		switch p := e.Payload.(type) {
		case events.ActionDispatched:
			at["dispatched "+p.Task.Stage] = i
		case events.ActionSucceeded:
			at["finished "+p.Stage] = i
		case events.StageSucceeded:
			at["succeeded "+p.Stage] = i
		case events.StageStarted:
			at["started "+p.Stage] = i
		}
	}
	lastDispatch := max(at["dispatched B"], at["dispatched C"])
	firstFinish := min(at["finished B"], at["finished C"])
	if lastDispatch == 0 || lastDispatch > firstFinish {
		t.Errorf("B and C did not run in parallel: dispatched at %d and %d, finished at %d and %d",
			at["dispatched B"], at["dispatched C"], at["finished B"], at["finished C"])
	}
	if d := at["started D"]; d < at["succeeded B"] || d < at["succeeded C"] {
		t.Errorf("D started at %d, before B (%d) and C (%d) succeeded", d, at["succeeded B"], at["succeeded C"])
	}
	if at["started B"] < at["succeeded A"] || at["started C"] < at["succeeded A"] {
		t.Errorf("B or C started before A succeeded: %v", at)
	}
}
