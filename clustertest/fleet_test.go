package clustertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// The fault tests' pipeline: one action of kind "fault" a worker finishes
// after a short while, so that many runs are in flight at once.
const (
	pipeline = "faults"
	kind     = "fault"
)

// def runs every run to its end: PARALLEL, since the default execution
// mode (SUPERSEDED) would rightly end most of a hundred runs started at
// once as Superseded, and these tests count runs that succeed.
var def = events.Definition{Name: pipeline, ExecutionMode: events.ModeParallel, Stages: []events.StageDef{
	{Name: "Build", Actions: []events.ActionDef{{Name: "compile", Type: kind, Pool: "default", RunOrder: 1}}},
	{Name: "Test", Actions: []events.ActionDef{{Name: "unit", Type: kind, Pool: "default", RunOrder: 1}}},
}}

// service is one in-process Gantry service with its own connection, which
// the test may stop and start again.
type service struct {
	name   string
	run    func(context.Context) error
	cancel context.CancelFunc
	done   chan struct{}
}

// fleet runs conductors and workers against the cluster in this process:
// the Gantry side of the fault tests, where the NATS nodes are what fails.
type fleet struct {
	t        *testing.T
	c        *cluster
	mu       sync.Mutex
	services []*service
}

func newFleet(t *testing.T, c *cluster, conductors, workers int) *fleet {
	f := &fleet{t: t, c: c}
	for i := range conductors {
		f.add(fmt.Sprintf("conductor-%d", i+1), func(b *bus.Bus) (func(context.Context) error, error) {
			cd, err := conductor.New(conductor.Options{Bus: b, Log: quiet()})
			if err != nil {
				return nil, err
			}
			return cd.Run, nil
		})
	}
	for i := range workers {
		name := fmt.Sprintf("worker-%d", i+1)
		f.add(name, func(b *bus.Bus) (func(context.Context) error, error) {
			w, err := worker.New(worker.Options{Bus: b, Log: quiet(), Kind: kind, Name: name, Concurrency: 8,
				WorkDir: t.TempDir(), Handler: worker.HandlerFunc(work)})
			if err != nil {
				return nil, err
			}
			return w.Run, nil
		})
	}
	t.Cleanup(f.stopAll)
	return f
}

// work is a task: a quarter of a second, cut short when the worker stops.
func work(ctx context.Context, _ *worker.Task) (worker.Result, error) {
	select {
	case <-time.After(250 * time.Millisecond):
		return worker.Result{}, nil
	case <-ctx.Done():
		return worker.Result{}, ctx.Err()
	}
}

func (f *fleet) add(name string, mk func(*bus.Bus) (func(context.Context) error, error)) {
	f.t.Helper()
	b := f.c.mustOpen(name)
	run, err := mk(b)
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	s := &service{name: name, run: run}
	f.services = append(f.services, s)
	f.start(s)
}

func (f *fleet) start(s *service) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.run(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			f.t.Errorf("%s: %v", s.name, err)
		}
	}()
}

// restart stops a service as SIGTERM would and starts it again.
func (f *fleet) restart(s *service) {
	s.cancel()
	<-s.done
	f.start(s)
}

func (f *fleet) stopAll() {
	for _, s := range f.services {
		s.cancel()
	}
	for _, s := range f.services {
		<-s.done
	}
}

// request appends run.requested for a new run, retrying while the cluster
// elects a leader: an append may fail, it must not be lost or doubled.
func request(t *testing.T, b *bus.Bus, name string) string {
	t.Helper()
	runID := events.RunIDForTrigger(name, time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "requested"), "/clustertest", runID, time.Now(), events.RunRequested{
		Pipeline: def.Name, Run: runID, Revision: 1, Definition: def, Trigger: events.Trigger{ID: name, Kind: "manual"}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		zero := uint64(0)
		_, _, err := b.Append(ctx, def.Name, e, &zero)
		cancel()
		if err == nil || errors.Is(err, bus.ErrConflict) { // a conflict: an earlier try landed
			return runID
		}
		if time.Now().After(deadline) {
			t.Fatalf("request run %s: %v", name, err)
		}
	}
}

// waitDone waits until every run ended and checks each: it succeeded,
// exactly once (one run.succeeded, one action.succeeded per action), and
// its log is one linear history (sequences strictly increasing, no event
// ID twice).
func waitDone(t *testing.T, b *bus.Bus, runs []string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, r := range runs {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			evs, err := b.ReadRun(ctx, def.Name, r, 0)
			cancel()
			st := run.Fold(run.State{}, evs...)
			if err == nil && st.Done() {
				checkRun(t, r, st, evs)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s not done after %s: phase %s, read error %v", r, within, st.Phase, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

func checkRun(t *testing.T, r string, st run.State, evs []events.Event) {
	t.Helper()
	if st.Phase != run.Succeeded {
		t.Errorf("run %s %s: %s", r, st.Phase, st.Reason)
	}
	var succeeded int
	actions := map[string]int{}
	ids := map[string]bool{}
	var last uint64
	for _, e := range evs {
		if e.Seq <= last {
			t.Errorf("run %s: sequence %d after %d: the log forked or went back", r, e.Seq, last)
		}
		last = e.Seq
		if ids[e.ID] {
			t.Errorf("run %s: event %s appears twice", r, e.ID)
		}
		ids[e.ID] = true
		switch p := e.Payload.(type) {
		case events.RunSucceeded:
			succeeded++
		case events.ActionSucceeded:
			actions[p.Stage+"/"+p.Action]++
		}
	}
	if succeeded != 1 {
		t.Errorf("run %s: %d run.succeeded events, want exactly 1", r, succeeded)
	}
	for a, n := range actions {
		if n != 1 {
			t.Errorf("run %s: action %s succeeded %d times, want once", r, a, n)
		}
	}
	if len(actions) != 2 {
		t.Errorf("run %s: %d actions succeeded, want 2", r, len(actions))
	}
}
