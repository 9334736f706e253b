package conductor_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/worker"
)

func noopDef(name string, stages int) events.Definition {
	d := events.Definition{Name: name}
	for i := range stages {
		d.Stages = append(d.Stages, events.StageDef{Name: fmt.Sprintf("s%d", i), Actions: []events.ActionDef{
			{Name: "a", Type: "noop", Pool: "default", RunOrder: 1},
			{Name: "b", Type: "noop", Pool: "default", RunOrder: 2},
		}})
	}
	return d
}

func newBus(t *testing.T, url string) *bus.Bus { return natstest.Bus(t, url) }

func request(t *testing.T, b *bus.Bus, def events.Definition, runID string) {
	t.Helper()
	e, err := events.New(events.RunID(runID, "requested"), "/test", runID, time.Now(), events.RunRequested{
		Pipeline: def.Name, Run: runID, Revision: 1, Definition: def, Trigger: events.Trigger{ID: runID, Kind: "manual"}})
	if err != nil {
		t.Fatal(err)
	}
	zero := uint64(0)
	if _, _, err := b.Append(context.Background(), def.Name, e, &zero); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, b *bus.Bus, pipeline, runID string, timeout time.Duration) run.State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		evs, err := b.ReadRun(context.Background(), pipeline, runID, 0)
		if err != nil {
			t.Fatal(err)
		}
		st := run.Fold(run.State{}, evs...)
		if st.Done() {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s did not end within %s", runID, timeout)
	return run.State{}
}

func start(t *testing.T, ctx context.Context, wg *sync.WaitGroup, f func(context.Context) error) {
	wg.Go(func() {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("service: %v", err)
		}
	})
}

func TestRunsEndToEndWithTwoConductors(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for range 2 {
		c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		start(t, ctx, &wg, c.Run)
	}
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 8,
		Handler: worker.HandlerFunc(func(ctx context.Context, t *worker.Task) (worker.Result, error) { return worker.Result{}, nil })})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)

	def := noopDef("noop", 3)
	// Independent runs: this is about conductors sharing runs, not runs
	// sharing stages (lanes_test.go).
	def.ExecutionMode = events.ModeParallel
	n := 200
	if testing.Short() {
		n = 20
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = events.RunIDForTrigger(fmt.Sprint("t", i), time.Now().UnixMilli())
		request(t, b, def, ids[i])
	}
	for _, id := range ids {
		st := waitDone(t, b, def.Name, id, 30*time.Second)
		if st.Phase != run.Succeeded {
			t.Fatalf("run %s: %s %s", id, st.Phase, st.Reason)
		}
		evs, _ := b.ReadRun(ctx, def.Name, id, 0)
		if err := validSequence(def, evs); err != nil {
			t.Fatalf("run %s: %v", id, err)
		}
	}
}

// validSequence checks a run's log is one a single careful conductor would
// have written: no event twice, the run requested and started once, every
// stage started before its actions are dispatched and ended after them,
// stages in order, actions dispatched once per attempt, one ending.
func validSequence(def events.Definition, evs []events.Event) error {
	seen := map[string]bool{}
	stageStarted := map[string]bool{}
	stageEnded := map[string]bool{}
	dispatched := map[string]bool{}
	ended := false
	for i, e := range evs {
		if seen[e.ID] {
			return fmt.Errorf("event %d %s appears twice", i, e.ID)
		}
		seen[e.ID] = true
		if ended {
			return fmt.Errorf("event %s after the run ended", e.ID)
		}
		switch p := e.Payload.(type) {
		case events.RunRequested:
			if i != 0 {
				return fmt.Errorf("run.requested at position %d", i)
			}
		case events.RunStarted:
			if i != 1 {
				return fmt.Errorf("run.started at position %d", i)
			}
		case events.StageStarted:
			for i, sd := range def.Stages {
				if sd.Name != p.Stage {
					continue
				}
				for _, j := range decider.Dependencies(def, i) {
					if dep := def.Stages[j].Name; !stageEnded[dep] {
						return fmt.Errorf("stage %s started before stage %s (a dependency) ended", p.Stage, dep)
					}
				}
			}
			stageStarted[p.Stage] = true
		case events.ActionDispatched:
			if !stageStarted[p.Task.Stage] || stageEnded[p.Task.Stage] {
				return fmt.Errorf("action %s dispatched outside its stage", p.Task.ID)
			}
			if dispatched[p.Task.ID] {
				return fmt.Errorf("task %s dispatched twice", p.Task.ID)
			}
			dispatched[p.Task.ID] = true
		case events.StageSucceeded:
			stageEnded[p.Stage] = true
		case events.StageFailed:
			stageEnded[p.Stage] = true
		case events.RunSucceeded, events.RunFailed:
			ended = true
		}
	}
	if !ended {
		return fmt.Errorf("run did not end")
	}
	return nil
}

// Refused messages at the end of a run's subject (here right after
// run.requested, before any conductor runs) are skipped by the fold but
// still move the subject's last sequence: the conductor must expect that
// sequence, not the fold's, or it could never append again.
func TestRefusedMessagesDoNotWedgeTheRun(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	def := noopDef("wedge", 1)
	id := events.RunIDForTrigger("wedge", time.Now().UnixMilli())
	request(t, b, def, id)
	for _, g := range []string{`{not json`, `{"specversion":"1.0"}`} {
		if _, err := b.JetStream().Publish(context.Background(), events.RunSubject(def.Name, id), []byte(g)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, c.Run)
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop",
		Handler: worker.HandlerFunc(func(ctx context.Context, t *worker.Task) (worker.Result, error) { return worker.Result{}, nil })})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)
	if st := waitDone(t, b, def.Name, id, 20*time.Second); st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", st.Phase, st.Reason)
	}
}
