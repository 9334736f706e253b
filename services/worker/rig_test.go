package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/conductor"
)

// rig is a test's server, a bus client on it and a running conductor; the
// services started with goRun stop when the test ends.
type rig struct {
	t   *testing.T
	srv *natstest.Server
	b   *bus.Bus
	ctx context.Context
	wg  sync.WaitGroup
}

func newRig(t *testing.T) *rig {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &rig{t: t, srv: srv, b: natstest.Bus(t, srv.ClientURL()), ctx: ctx}
	t.Cleanup(func() { cancel(); r.wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: r.bus(), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	r.goRun(c.Run)
	return r
}

// bus is a client of its own, as a separate service would have.
func (r *rig) bus() *bus.Bus { return natstest.Bus(r.t, r.srv.ClientURL()) }

// goRun runs a service until the test ends; an error before that fails it.
func (r *rig) goRun(f func(context.Context) error) {
	r.wg.Go(func() {
		if err := f(r.ctx); err != nil && r.ctx.Err() == nil {
			r.t.Errorf("service: %v", err)
		}
	})
}

// request starts a run of a one-stage pipeline (Build) with action and
// returns its ID.
func (r *rig) request(pipeline string, action events.ActionDef) string {
	r.t.Helper()
	def := events.Definition{Name: pipeline, Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{action}}}}
	runID := events.RunIDForTrigger(pipeline, time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "requested"), "/test", runID, time.Now(), events.RunRequested{
		Pipeline: def.Name, Run: runID, Revision: 1, Definition: def, Trigger: events.Trigger{ID: runID, Kind: "manual"}})
	if err != nil {
		r.t.Fatal(err)
	}
	zero := uint64(0)
	if _, _, err := r.b.Append(r.ctx, def.Name, e, &zero); err != nil {
		r.t.Fatal(err)
	}
	return runID
}

// dispatched waits for the conductor to queue a task of kind and returns it.
func (r *rig) dispatched(kind string) *jetstream.RawStreamMsg {
	r.t.Helper()
	tasks, err := r.b.JetStream().Stream(r.ctx, events.StreamTasks)
	if err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		task, err := tasks.GetLastMsgForSubject(r.ctx, events.TaskSubject(kind, "default"))
		if err == nil {
			return task
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s task dispatched: %v", kind, err)
		}
	}
}
