package conductor_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/gantry-ci/gantry/services/lanes"
	"github.com/gantry-ci/gantry/services/worker"
)

// gate holds the actions of chosen runs and stages until released, and
// records which action attempts a worker began.
type gate struct {
	mu      sync.Mutex
	held    map[string]chan struct{} // run/stage -> closed when released
	started map[string]bool          // run/stage
}

func newGate() *gate {
	return &gate{held: map[string]chan struct{}{}, started: map[string]bool{}}
}

func (g *gate) hold(runID, stage string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held[runID+"/"+stage] = make(chan struct{})
}

func (g *gate) release(runID, stage string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.held[runID+"/"+stage])
}

func (g *gate) began(runID, stage string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started[runID+"/"+stage]
}

func (g *gate) handle(ctx context.Context, t *worker.Task) (worker.Result, error) {
	k := t.Run + "/" + t.Stage
	g.mu.Lock()
	g.started[k] = true
	ch := g.held[k]
	g.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return worker.Result{}, ctx.Err()
		}
	}
	return worker.Result{}, nil
}

// laneRig is an embedded JetStream with conductors and a gated noop worker.
type laneRig struct {
	t   *testing.T
	b   *bus.Bus
	g   *gate
	cmd command.Client
}

func newLaneRig(t *testing.T, conductors int) *laneRig {
	t.Helper()
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for range conductors {
		c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Shards: 4})
		if err != nil {
			t.Fatal(err)
		}
		start(t, ctx, &wg, c.Run)
	}
	g := newGate()
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 16,
		Handler: worker.HandlerFunc(g.handle)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)
	return &laneRig{t: t, b: b, g: g, cmd: command.Client{Conn: b.Conn()}}
}

// apply stores the definition as the pipeline's current one, as
// `gantry pipeline apply` does.
func (r *laneRig) apply(def events.Definition) {
	r.t.Helper()
	kv, err := r.b.JetStream().KeyValue(context.Background(), events.BucketPipelines)
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := json.Marshal(def)
	if _, err := kv.Put(context.Background(), def.Name, body); err != nil {
		r.t.Fatal(err)
	}
}

func (r *laneRig) start(def events.Definition, name string) string {
	r.t.Helper()
	id := events.RunIDForTrigger(name, time.Now().UnixMilli())
	request(r.t, r.b, def, id)
	return id
}

func (r *laneRig) lane(pipeline string) lanes.State {
	r.t.Helper()
	evs, err := r.b.ReadRun(context.Background(), pipeline, events.LaneToken, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return lanes.Fold(lanes.State{}, evs...)
}

func (r *laneRig) state(pipeline, runID string) run.State {
	r.t.Helper()
	evs, err := r.b.ReadRun(context.Background(), pipeline, runID, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return run.Fold(run.State{}, evs...)
}

// eventually polls cond with a generous deadline.
func (r *laneRig) eventually(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *laneRig) waitingAt(pipeline, stage, runID string) bool {
	l := r.lane(pipeline)
	for _, w := range l.Waiting[stage] {
		if w.Run == runID {
			return true
		}
	}
	return false
}

// lanePipeline has a fast stage, a stage the test can hold, and a last one.
func lanePipeline(name, mode string) events.Definition {
	d := noopDef(name, 3)
	d.Stages[0].Name, d.Stages[1].Name, d.Stages[2].Name = "Build", "Deploy", "Verify"
	d.ExecutionMode = mode
	return d
}

// stageIntervals returns, per stage, the [started, ended] stream sequences
// of every run's stage: what shows two runs in one stage at once.
func stageIntervals(t *testing.T, b *bus.Bus, pipeline string, runs []string) map[string][][2]uint64 {
	t.Helper()
	out := map[string][][2]uint64{}
	for _, id := range runs {
		evs, err := b.ReadRun(context.Background(), pipeline, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		open := map[string]uint64{}
		for _, e := range evs {
			switch p := e.Payload.(type) {
			case events.StageStarted:
				open[p.Stage] = e.Seq
			case events.StageSucceeded:
				out[p.Stage] = append(out[p.Stage], [2]uint64{open[p.Stage], e.Seq})
				delete(open, p.Stage)
			case events.StageFailed:
				out[p.Stage] = append(out[p.Stage], [2]uint64{open[p.Stage], e.Seq})
				delete(open, p.Stage)
			}
		}
		for s, from := range open {
			out[s] = append(out[s], [2]uint64{from, ^uint64(0)})
		}
	}
	return out
}

func noOverlap(t *testing.T, iv map[string][][2]uint64) {
	t.Helper()
	for stage, list := range iv {
		for i := range list {
			for j := i + 1; j < len(list); j++ {
				a, b := list[i], list[j]
				if a[0] < b[1] && b[0] < a[1] {
					t.Errorf("stage %s: two runs in it at once (sequences %v and %v)", stage, a, b)
				}
			}
		}
	}
}

func phases(r *laneRig, pipeline string, ids ...string) []run.Phase {
	var out []run.Phase
	for _, id := range ids {
		out = append(out, waitDone(r.t, r.b, pipeline, id, 30*time.Second).Phase)
	}
	return out
}

func TestExecutionModeSuperseded(t *testing.T) {
	r := newLaneRig(t, 1)
	def := lanePipeline("sup", events.ModeSuperseded)
	r1 := r.start(def, "sup-1")
	r.g.hold(r1, "Deploy")
	r.eventually("run 1 in Deploy", func() bool { return r.g.began(r1, "Deploy") })
	// Runs 2 and 3 start close together; both end up waiting to enter
	// Deploy (or Build) behind run 1, and run 3, the newer, overtakes 2.
	r2 := r.start(def, "sup-2")
	r3 := r.start(def, "sup-3")
	r.eventually("run 2 superseded", func() bool { return r.state(def.Name, r2).Phase == run.Superseded })
	if st := r.state(def.Name, r2); st.SupersededBy != r3 {
		t.Errorf("run 2 superseded by %q, want run 3 %s", st.SupersededBy, r3)
	}
	if r.g.began(r3, "Deploy") {
		t.Fatal("run 3 entered Deploy while run 1 held it")
	}
	r.g.release(r1, "Deploy")
	got := phases(r, def.Name, r1, r2, r3)
	want := []run.Phase{run.Succeeded, run.Superseded, run.Succeeded}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("final phases %v, want %v", got, want)
	}
	noOverlap(t, stageIntervals(t, r.b, def.Name, []string{r1, r2, r3}))
	r.eventually("the lane to be empty", func() bool { l := r.lane(def.Name); return len(l.Runs()) == 0 })
}

func TestExecutionModeQueued(t *testing.T) {
	r := newLaneRig(t, 1)
	def := lanePipeline("que", events.ModeQueued)
	r1 := r.start(def, "que-1")
	r.g.hold(r1, "Deploy")
	r.eventually("run 1 in Deploy", func() bool { return r.g.began(r1, "Deploy") })
	r2 := r.start(def, "que-2")
	r.eventually("run 2 waiting for Deploy", func() bool { return r.waitingAt(def.Name, "Deploy", r2) })
	r3 := r.start(def, "que-3")
	r.eventually("run 3 waiting for Deploy", func() bool { return r.waitingAt(def.Name, "Deploy", r3) })
	r.g.release(r1, "Deploy")
	got := phases(r, def.Name, r1, r2, r3)
	want := []run.Phase{run.Succeeded, run.Succeeded, run.Succeeded}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("final phases %v, want %v", got, want)
	}
	iv := stageIntervals(t, r.b, def.Name, []string{r1, r2, r3})
	noOverlap(t, iv)
	for _, stage := range []string{"Build", "Deploy", "Verify"} {
		l := iv[stage]
		if len(l) != 3 || !(l[0][0] < l[1][0] && l[1][0] < l[2][0]) {
			t.Errorf("stage %s entered out of the order the runs were started: %v", stage, l)
		}
	}
}

func TestExecutionModeParallel(t *testing.T) {
	r := newLaneRig(t, 1)
	def := lanePipeline("par", events.ModeParallel)
	r1 := r.start(def, "par-1")
	r.g.hold(r1, "Deploy")
	r.eventually("run 1 in Deploy", func() bool { return r.g.began(r1, "Deploy") })
	r2 := r.start(def, "par-2")
	r3 := r.start(def, "par-3")
	// Runs 2 and 3 pass run 1, which still holds Deploy open.
	if got := phases(r, def.Name, r2, r3); fmt.Sprint(got) != fmt.Sprint([]run.Phase{run.Succeeded, run.Succeeded}) {
		t.Fatalf("runs 2 and 3: %v", got)
	}
	if st := r.state(def.Name, r1); st.Done() {
		t.Fatalf("run 1 ended (%s) while held", st.Phase)
	}
	r.g.release(r1, "Deploy")
	if got := phases(r, def.Name, r1); got[0] != run.Succeeded {
		t.Fatalf("run 1: %v", got)
	}
	if evs, _ := r.b.ReadRun(context.Background(), def.Name, events.LaneToken, 0); len(evs) != 0 {
		t.Errorf("PARALLEL runs used the lane: %d lane events", len(evs))
	}
}

// Two conductors, many QUEUED runs started at once: never two runs in one
// stage at the same time, and every run succeeds.
func TestTwoConductorsNeverShareALockedStage(t *testing.T) {
	r := newLaneRig(t, 2)
	def := lanePipeline("locks", events.ModeQueued)
	var ids []string
	for i := range 8 {
		ids = append(ids, r.start(def, fmt.Sprint("locks-", i)))
	}
	for _, id := range ids {
		if st := waitDone(t, r.b, def.Name, id, 60*time.Second); st.Phase != run.Succeeded {
			t.Fatalf("run %s: %s %s", id, st.Phase, st.Reason)
		}
	}
	noOverlap(t, stageIntervals(t, r.b, def.Name, ids))
}

func TestDisabledTransition(t *testing.T) {
	for _, mode := range []string{events.ModeSuperseded, events.ModeQueued, events.ModeParallel} {
		t.Run(mode, func(t *testing.T) {
			r := newLaneRig(t, 1)
			def := lanePipeline("tr-"+mode, mode)
			r.apply(def)
			ctx := context.Background()
			if _, err := r.cmd.Do(ctx, command.StageDisable, command.Request{Pipeline: def.Name, Stage: "Deploy"}); err == nil {
				t.Fatal("disable without a reason was accepted")
			}
			if _, err := r.cmd.Do(ctx, command.StageDisable, command.Request{Pipeline: def.Name, Stage: "Nope", Reason: "x"}); err == nil {
				t.Fatal("disable of an unknown stage was accepted")
			}
			if _, err := r.cmd.Do(ctx, command.StageDisable, command.Request{
				Pipeline: def.Name, Stage: "Deploy", Reason: "release freeze", Actor: "alice@laptop"}); err != nil {
				t.Fatal(err)
			}
			if tr := r.lane(def.Name).Disabled["Deploy"]; tr.Actor != "alice@laptop" || tr.Reason != "release freeze" {
				t.Fatalf("the disable recorded %+v", tr)
			}
			// Wait: run 1 stops before Deploy.
			r1 := r.start(def, "tr-1-"+mode)
			r.eventually("run 1 waiting before Deploy", func() bool { return r.waitingAt(def.Name, "Deploy", r1) })
			r2 := r.start(def, "tr-2-"+mode)
			if mode == events.ModeSuperseded {
				// Collapse: the waiting runs collapse to the newest.
				r.eventually("run 1 superseded", func() bool { return r.state(def.Name, r1).Phase == run.Superseded })
			}
			r.eventually("run 2 waiting before Deploy", func() bool { return r.waitingAt(def.Name, "Deploy", r2) })
			if r.g.began(r1, "Deploy") || r.g.began(r2, "Deploy") {
				t.Fatal("a run passed the disabled transition")
			}
			// Enable: the waiting run enters.
			if _, err := r.cmd.Do(ctx, command.StageEnable, command.Request{Pipeline: def.Name, Stage: "Deploy", Actor: "alice@laptop"}); err != nil {
				t.Fatal(err)
			}
			want := []run.Phase{run.Superseded, run.Succeeded}
			if mode != events.ModeSuperseded {
				want = []run.Phase{run.Succeeded, run.Succeeded} // queued, or all waiting
			}
			if got := phases(r, def.Name, r1, r2); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("final phases %v, want %v", got, want)
			}
		})
	}
}

// The lane lives in the log: a conductor started after the one that let
// run 1 into Deploy died picks the lane up and lets run 2 in once run 1
// left, with nothing carried over in memory.
func TestLaneSurvivesConductorRestart(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	var wg sync.WaitGroup
	root, cancelAll := context.WithCancel(context.Background())
	t.Cleanup(func() { cancelAll(); wg.Wait() })
	startConductor := func() context.CancelFunc {
		ctx, cancel := context.WithCancel(root)
		c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Shards: 4})
		if err != nil {
			t.Fatal(err)
		}
		start(t, ctx, &wg, c.Run)
		return cancel
	}
	g := newGate()
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 8,
		Handler: worker.HandlerFunc(g.handle)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, root, &wg, w.Run)
	r := &laneRig{t: t, b: b, g: g}

	stopFirst := startConductor()
	def := lanePipeline("restart", events.ModeQueued)
	r1 := r.start(def, "restart-1")
	g.hold(r1, "Deploy")
	r.eventually("run 1 in Deploy", func() bool { return g.began(r1, "Deploy") })
	r2 := r.start(def, "restart-2")
	r.eventually("run 2 waiting for Deploy", func() bool { return r.waitingAt(def.Name, "Deploy", r2) })
	stopFirst()

	startConductor()
	g.release(r1, "Deploy")
	if got := phases(r, def.Name, r1, r2); fmt.Sprint(got) != fmt.Sprint([]run.Phase{run.Succeeded, run.Succeeded}) {
		t.Fatalf("after a conductor restart: %v", got)
	}
	noOverlap(t, stageIntervals(t, b, def.Name, []string{r1, r2}))
}
