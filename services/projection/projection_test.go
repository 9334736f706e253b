package projection_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/projection"
	"github.com/gantry-ci/gantry/services/worker"
)

// Runs that succeed and fail are projected; Rebuild verifies the live
// projection against the log, and catches a projection that was tampered
// with, then rewrites it.
func TestRebuildVerifiesTheLiveProjection(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 4,
		Handler: worker.HandlerFunc(func(ctx context.Context, t *worker.Task) (worker.Result, error) {
			if t.Variables["FAIL"] == "yes" {
				return worker.Result{}, errors.New("asked to fail")
			}
			return worker.Result{}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	p := &projection.Projector{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()}
	for _, f := range []func(context.Context) error{c.Run, w.Run, p.Run} {
		wg.Go(func() { _ = f(ctx) })
	}
	def := events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "one", Actions: []events.ActionDef{{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}}},
		{Name: "two", Actions: []events.ActionDef{{Name: "b", Type: "noop", Pool: "default", RunOrder: 1}}},
	}}
	var ids []string
	for i := range 6 {
		id := events.RunIDForTrigger(fmt.Sprint("t", i), time.Now().UnixMilli())
		vars := map[string]string{}
		if i%2 == 1 {
			vars["FAIL"] = "yes"
		}
		e, err := events.New(events.RunID(id, "requested"), "/test", id, time.Now(), events.RunRequested{
			Pipeline: "p", Run: id, Definition: def, Variables: vars, Trigger: events.Trigger{ID: id, Kind: "api"}})
		if err != nil {
			t.Fatal(err)
		}
		zero := uint64(0)
		if _, _, err := b.Append(ctx, "p", e, &zero); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	kv, err := b.JetStream().KeyValue(ctx, events.BucketRuns)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until every run ended and its projection caught up.
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range ids {
		for {
			evs, _ := b.ReadRun(ctx, "p", id, 0)
			st := run.Fold(run.State{}, evs...)
			if _, err := kv.Get(ctx, id); err == nil && st.Done() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s not done and projected in time", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var rep projection.Report
	for { // the projector may still be folding the last events
		rep, err = projection.Rebuild(ctx, b, true)
		if err == nil && rep.Verified || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || !rep.Verified || rep.Runs != 6 || rep.Events == 0 {
		t.Fatalf("rebuild: %+v %v", rep, err)
	}
	// Stop the projector, tamper with one run's projection: verify fails and
	// names it, and the rebuild puts the log's state back.
	cancel()
	wg.Wait()
	if _, err := kv.Put(context.Background(), ids[0], []byte(`{"run":"`+ids[0]+`","phase":"Failed"}`)); err != nil {
		t.Fatal(err)
	}
	rep, err = projection.Rebuild(context.Background(), b, true)
	if err != nil || rep.Verified || len(rep.Mismatches) != 1 || rep.Mismatches[0].Run != ids[0] {
		t.Fatalf("tampered projection not caught: %+v %v", rep, err)
	}
	rep, err = projection.Rebuild(context.Background(), b, true)
	if err != nil || !rep.Verified {
		t.Fatalf("rebuild did not restore the projection: %+v %v", rep, err)
	}
}
