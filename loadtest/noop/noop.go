// Package noop is the no-op pipeline benchmark behind `make bench`: it starts
// an embedded nats-server on a temporary directory, a conductor, a projector
// and a worker whose handler returns at once (each on its own NATS
// connection, as if each were its own process), requests N runs of a
// pipeline of one no-op action per stage with a bounded number in flight,
// and reports throughput and latency. The same server then measures what
// NATS JetStream itself does (a sync publish, async publish throughput), so
// the numbers of the system read against the engine it runs on.
//
// What is measured, and how:
//
//   - runs_per_sec: completed runs over the wall time from the first request
//     to the stored timestamp of the last run.succeeded (or run.failed).
//   - transition: for each action after the first in a run, from the
//     JetStream stored timestamp of the previous action's action.succeeded to
//     the `time` of the next action.started event, which the worker stamps
//     right after it took the task and decoded it (before it appends
//     action.started, creates the workspace or calls the handler). The same
//     difference taken at the handler's first instruction is reported as
//     handler_transition; the breakdown splits the transition at the stored
//     timestamps of stage.succeeded, stage.started and action.dispatched.
//     Server and clients share one process and one clock.
//   - events_per_sec: events in the log over the same wall time.
//   - rebuild_events_per_sec: projection.FoldAll over the whole log once the
//     services have stopped.
//   - nats_pub_sync_p50_ms and nats_pub_async_msgs_per_sec: plain JetStream
//     publishes (no message ID, no expected sequence) of payloads the mean
//     size of an event, to a scratch file-storage stream, after the runs.
//
// Times come from the log after the fact (an ordered consumer reads it back
// when the runs have ended); while runs are under way the driver only
// watches a core NATS subscription for run.succeeded and run.failed headers,
// so measuring adds as little as possible to the load.
package noop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natsd"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/projection"
	"github.com/gantry-ci/gantry/services/worker"
)

// Pipeline is the name of the benchmark's pipeline; ActionType its task kind.
const (
	Pipeline   = "loadtest-noop"
	ActionType = "noop"
	ActionName = "noop"
	Pool       = "default"
)

// Config sizes a benchmark. Zero fields take the defaults noted.
type Config struct {
	// Runs to request (default 1000).
	Runs int
	// Stages of the pipeline, one no-op action each (default 3).
	Stages int
	// Concurrency is the worker's task slots (default 64).
	Concurrency int
	// Inflight bounds the runs requested but not yet ended (default 200).
	Inflight int
	// TCP connects the services over loopback TCP instead of in process (the
	// way `gantry dev` connects them), to compare.
	TCP bool
	// LowLoadRuns are requested one at a time, each after the previous one
	// ended, before the loaded phase: the transition latency targets hold
	// at low load, and these runs measure it (default 200; negative skips).
	LowLoadRuns int
	// Requesters append run.requested events in parallel (default 4).
	Requesters int
	// PubSync is how many sync publishes measure the NATS baseline (default
	// 5000); PubAsync how many async ones (default 100000). Negative skips.
	PubSync  int
	PubAsync int
	// Timeout bounds the runs phase (default 10 minutes); runs still open then
	// count as failed.
	Timeout time.Duration
	// TempDir is where the server's temporary data directory goes (default
	// os.TempDir()); the directory is removed at the end.
	TempDir string
	// Log receives the services' logs; the zero value discards them.
	Log zerolog.Logger
	// CPUProfile, if set, receives a CPU profile of the runs phase only
	// (first request to last run ended), not of set-up or the baselines.
	CPUProfile io.Writer
	// Trace, if set, receives an execution trace of the runs phase (go tool
	// trace): where goroutines wait, which a CPU profile does not show.
	Trace io.Writer
	// MemProfile, if set, receives the allocation profile (pprof "allocs")
	// taken when the runs phase ends.
	MemProfile io.Writer
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Runs, 1000)
	def(&c.Stages, 3)
	def(&c.Concurrency, 64)
	def(&c.Inflight, 200)
	def(&c.LowLoadRuns, 200)
	def(&c.Requesters, 4)
	def(&c.PubSync, 5000)
	def(&c.PubAsync, 100000)
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	return c
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", name, v))
		}
	}
	pos("runs", c.Runs)
	pos("stages", c.Stages)
	pos("concurrency", c.Concurrency)
	pos("inflight", c.Inflight)
	pos("requesters", c.Requesters)
	if c.Stages > 100 {
		errs = append(errs, fmt.Errorf("stages must be at most 100, got %d", c.Stages))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// Definition is the benchmark's pipeline: stages s0..sN-1, one no-op action each.
func Definition(stages int) events.Definition {
	// Independent runs (no stage locks): the benchmark measures the
	// conductor and the bus, not runs waiting for each other.
	d := events.Definition{Name: Pipeline, ExecutionMode: events.ModeParallel}
	for i := range stages {
		d.Stages = append(d.Stages, events.StageDef{Name: fmt.Sprintf("s%d", i), Actions: []events.ActionDef{
			{Name: ActionName, Type: ActionType, Pool: Pool, RunOrder: 1},
		}})
	}
	return d
}

// Run runs the benchmark. A report with failed runs is still returned with a
// nil error; errors are for a benchmark that could not run or measure.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadtest noop: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "gantry-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsd.Start(natsd.Options{DataDir: filepath.Join(dir, "jetstream"), Port: -1, ServerName: "gantry-loadtest"})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()

	e := &env{cfg: cfg, dir: dir, url: srv.ClientURL(), def: Definition(cfg.Stages)}
	if !cfg.TCP {
		e.opts = append(e.opts, srv.InProcess()) // as `gantry dev` connects its services
	}
	defer e.closeAll()
	return e.run(ctx)
}

// env is one benchmark's server, connections and services.
type env struct {
	cfg  Config
	dir  string
	url  string
	opts []nats.Option
	def  events.Definition

	mu      sync.Mutex
	closers []func()
	// handled records when the handler was entered, by run/stage.
	handled sync.Map
}

func (e *env) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

// connect opens a bus on a connection of its own, with its own codec, as a
// separate process would.
func (e *env) connect(ctx context.Context, name string, provision bool) (*bus.Bus, error) {
	nc, err := bus.Connect(e.url, name, e.opts...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.closers = append(e.closers, nc.Close)
	e.mu.Unlock()
	codec, err := events.NewCodec()
	if err != nil {
		return nil, err
	}
	b, err := bus.New(nc, codec)
	if err != nil {
		return nil, err
	}
	if provision {
		err = b.Provision(ctx, bus.Config{})
	} else {
		err = b.Open(ctx)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (e *env) run(ctx context.Context) (*Report, error) {
	cfg := e.cfg
	var ph Phases
	mark := time.Now()
	lap := func(d *float64) {
		now := time.Now()
		*d = round3(now.Sub(mark).Seconds())
		mark = now
	}
	driver, err := e.connect(ctx, "loadtest-driver", true)
	if err != nil {
		return nil, err
	}

	// The services, each on its own connection.
	svcCtx, stopServices := context.WithCancel(ctx)
	defer stopServices()
	var svcErrs []error
	var svcMu sync.Mutex
	var conductorWG, workerWG sync.WaitGroup
	startService := func(wg *sync.WaitGroup, name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(svcCtx); err != nil && svcCtx.Err() == nil {
				svcMu.Lock()
				svcErrs = append(svcErrs, fmt.Errorf("%s: %w", name, err))
				svcMu.Unlock()
				stopServices()
			}
		})
	}
	cb, err := e.connect(ctx, "loadtest-conductor", false)
	if err != nil {
		return nil, err
	}
	c, err := conductor.New(conductor.Options{Bus: cb, Log: cfg.Log.With().Str("role", "pipeline").Logger()})
	if err != nil {
		return nil, err
	}
	startService(&conductorWG, "conductor", c.Run)
	pb, err := e.connect(ctx, "loadtest-projector", false)
	if err != nil {
		return nil, err
	}
	p := &projection.Projector{Bus: pb, Log: cfg.Log.With().Str("role", "projector").Logger()}
	startService(&conductorWG, "projector", p.Run)
	wb, err := e.connect(ctx, "loadtest-worker", false)
	if err != nil {
		return nil, err
	}
	w, err := worker.New(worker.Options{
		Bus: wb, Log: cfg.Log.With().Str("role", "worker").Logger(), Kind: ActionType, Pool: Pool,
		Name: "loadtest-noop-worker", Concurrency: cfg.Concurrency, WorkDir: filepath.Join(e.dir, "work"),
		NoWorkspace: true, // the handler touches no disk
		Handler: worker.HandlerFunc(func(_ context.Context, t *worker.Task) (worker.Result, error) {
			now := time.Now()
			e.handled.Store(t.Run+"/"+t.Stage, now)
			return worker.Result{}, nil
		}),
	})
	if err != nil {
		return nil, err
	}
	startService(&workerWG, "worker", w.Run)
	defer workerWG.Wait()
	defer conductorWG.Wait()
	defer stopServices()

	if err := waitConsumers(ctx, driver.JetStream(), conductor.Durable, projection.Durable, worker.ConsumerName(ActionType, Pool)); err != nil {
		return nil, err
	}

	// Watch run ends on a core subscription: headers only, nothing stored.
	wnc, err := bus.Connect(e.url, "loadtest-watch", e.opts...)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.closers = append(e.closers, wnc.Close)
	e.mu.Unlock()
	ended := make(chan bool, cfg.Runs+max(cfg.LowLoadRuns, 0))
	seen := map[string]bool{}
	sub, err := wnc.Subscribe(events.PipelineEvents(Pipeline), func(m *nats.Msg) {
		t := m.Header.Get(bus.HeaderType)
		if t != events.TypeRunSucceeded && t != events.TypeRunFailed {
			return
		}
		// A repeated publish reaches core subscribers even when JetStream
		// drops it as a duplicate.
		if seen[m.Subject] {
			return
		}
		seen[m.Subject] = true
		select {
		case ended <- t == events.TypeRunSucceeded:
		default:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watch run ends: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	if err := wnc.Flush(); err != nil {
		return nil, err
	}

	lap(&ph.Setup)

	// Low load: one run at a time, for the latency of a transition when
	// nothing queues. Its cost is not counted with the loaded phase's.
	lowLoad := map[string]bool{}
	lowFailed := 0
	for i := range max(cfg.LowLoadRuns, 0) {
		runID, err := e.request(ctx, driver, -1-i)
		if err != nil {
			return nil, fmt.Errorf("low-load run %d: %w", i, err)
		}
		lowLoad[runID] = true
		select {
		case ok := <-ended:
			if !ok {
				lowFailed++
			}
		case <-time.After(cfg.Timeout):
			return nil, fmt.Errorf("low-load run %s did not end within %s", runID, cfg.Timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	lap(&ph.LowLoad)

	conns := []*roleConn{{role: "conductor", nc: cb.Conn()}, {role: "projector", nc: pb.Conn()},
		{role: "worker", nc: wb.Conn()}, {role: "driver", nc: driver.Conn()}, {role: "watcher", nc: wnc}}
	for _, c := range conns {
		c.start = c.nc.Stats()
	}

	// The runs phase.
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU()
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	profiling := cfg.CPUProfile != nil
	stopProfile := func() {
		if profiling {
			pprof.StopCPUProfile()
			profiling = false
		}
	}
	defer stopProfile()
	tracing := cfg.Trace != nil
	if tracing {
		if err := trace.Start(cfg.Trace); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
	}
	stopTrace := func() {
		if tracing {
			trace.Stop()
			tracing = false
		}
	}
	defer stopTrace()

	runCtx, cancelRuns := context.WithTimeout(ctx, cfg.Timeout)
	defer cancelRuns()
	slots := make(chan struct{}, cfg.Inflight)
	next := make(chan int)
	var requested atomic.Int64
	var appendMu sync.Mutex
	var appendLat dist
	var reqErr error
	var reqOnce sync.Once
	var reqWG sync.WaitGroup
	start := time.Now()
	for range cfg.Requesters {
		reqWG.Go(func() {
			for i := range next {
				t0 := time.Now()
				_, err := e.request(runCtx, driver, i)
				d := time.Since(t0)
				appendMu.Lock()
				appendLat = append(appendLat, d)
				appendMu.Unlock()
				if err != nil {
					reqOnce.Do(func() { reqErr = err; cancelRuns() })
					<-slots
					continue
				}
				requested.Add(1)
			}
		})
	}
	lagDone := make(chan struct{})
	var lags lagSampler
	go func() {
		defer close(lagDone)
		lags.sample(runCtx, driver.JetStream())
	}()
	succeeded, failed, fed := 0, 0, 0
	for succeeded+failed < cfg.Runs && runCtx.Err() == nil {
		// Take a slot for the next run while runs remain to request; a nil
		// channel never sends.
		var slot chan struct{}
		if fed < cfg.Runs {
			slot = slots
		}
		select {
		case slot <- struct{}{}:
			select {
			case next <- fed:
				fed++
			case <-runCtx.Done():
			}
		case ok := <-ended:
			if ok {
				succeeded++
			} else {
				failed++
			}
			<-slots
		case <-runCtx.Done():
		}
	}
	close(next)
	reqWG.Wait()
	// Lags when the last run ended; then the time until every service has
	// consumed the whole log, which the rates and CPU cost include: a rate
	// the projections cannot keep up with is not sustained.
	conductorLag, projectorLag := consumerLag(ctx, driver.JetStream(), conductor.Durable), consumerLag(ctx, driver.JetStream(), projection.Durable)
	caughtUp, catchUp := waitCaughtUp(runCtx, driver.JetStream())
	stopProfile()
	stopTrace()
	lap(&ph.Runs)
	if cfg.MemProfile != nil {
		if err := pprof.Lookup("allocs").WriteTo(cfg.MemProfile, 0); err != nil {
			return nil, fmt.Errorf("memory profile: %w", err)
		}
	}
	cpu1 := processCPU()
	for _, c := range conns {
		c.end = c.nc.Stats()
	}
	runtime.ReadMemStats(&ms1)
	timedOut := ctx.Err() == nil && runCtx.Err() != nil && succeeded+failed < cfg.Runs && reqErr == nil
	if reqErr != nil {
		return nil, fmt.Errorf("request runs: %w", reqErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Lags at the end of the runs, before the services stop.
	rep := &Report{}
	rep.fillConfig(cfg)
	rep.ConductorLag, rep.ProjectorLag = conductorLag, projectorLag
	rep.CatchUpSeconds, rep.CaughtUp = round3(catchUp.Seconds()), caughtUp
	cancelRuns()
	<-lagDone
	rep.ConductorLagMax, rep.ConductorLagMean = lags.conductor.max, lags.conductor.mean()
	rep.ProjectorLagMax, rep.ProjectorLagMean = lags.projector.max, lags.projector.mean()
	stopServices()
	conductorWG.Wait()
	// The worker's fetches wait up to 5 s and take no context; deleting its
	// consumer ends them at once (the server is thrown away anyway).
	_ = driver.JetStream().DeleteConsumer(ctx, events.StreamTasks, worker.ConsumerName(ActionType, Pool))
	workerWG.Wait()
	lap(&ph.Shutdown)
	svcMu.Lock()
	err = errors.Join(svcErrs...)
	svcMu.Unlock()
	if err != nil {
		return nil, err
	}

	// Read the log back and measure it.
	lg, err := e.readLog(ctx, driver)
	if err != nil {
		return nil, err
	}
	lap(&ph.ReadLog)
	rep.fromLog(lg, start, e.handledTimes(), lowLoad)
	rep.LowLoadFailedRuns = lowFailed
	rep.RunsRequested = int(requested.Load())
	rep.RequestAppendP50Ms, rep.RequestAppendP99Ms = appendLat.quantile(0.5), appendLat.quantile(0.99)
	rep.UnfinishedRuns = cfg.Runs - rep.RunsSucceeded - rep.runsFailedInLog
	rep.FailedRuns = cfg.Runs - rep.RunsSucceeded
	rep.TimedOut = timedOut
	rep.GCCycles = int(ms1.NumGC - ms0.NumGC)
	rep.traffic(conns)
	rep.cpu(cpu1-cpu0, ms1.TotalAlloc-ms0.TotalAlloc)

	// Rebuild: fold the whole log, as `gantry state rebuild` does.
	rb, err := e.connect(ctx, "loadtest-rebuild", false)
	if err != nil {
		return nil, err
	}
	t0, c0 := time.Now(), processCPU()
	states, n, skipped, err := projection.FoldAll(ctx, rb)
	d, cd := time.Since(t0), processCPU()-c0
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	rep.RebuildEvents, rep.RebuildRuns, rep.RebuildSkipped = n, len(states), skipped
	rep.RebuildSeconds = d.Seconds()
	if d > 0 {
		rep.RebuildEventsPerSec = float64(n) / d.Seconds()
	}
	if cd > 0 {
		rep.RebuildEventsPerCPUSec = round3(float64(n) / cd.Seconds())
	}
	t0 = time.Now()
	nx, err := foldExact(ctx, rb)
	if err != nil {
		return nil, fmt.Errorf("rebuild with exact fetches: %w", err)
	}
	if dx := time.Since(t0); dx > 0 {
		rep.RebuildExactEventsPerSec = round3(float64(nx) / dx.Seconds())
	}

	lap(&ph.Rebuild)

	// The engine's own numbers, on the same server.
	if err := e.baselines(ctx, rep, lg.meanBytes()); err != nil {
		return nil, err
	}
	lap(&ph.Baselines)
	rep.Phases = ph
	rep.finish()
	return rep, nil
}

// request appends run i's run.requested, expecting an empty run subject,
// and returns the run's ID.
func (e *env) request(ctx context.Context, b *bus.Bus, i int) (string, error) {
	now := time.Now()
	trigger := fmt.Sprintf("loadtest-%d-%d", now.UnixNano(), i)
	runID := events.RunIDForTrigger(trigger, now.UnixMilli())
	ev, err := events.New(events.RunID(runID, "requested"), "/gantry/loadtest", runID, now, events.RunRequested{
		Pipeline: Pipeline, Run: runID, Revision: 1, Definition: e.def,
		Trigger: events.Trigger{ID: trigger, Kind: "api", Actor: "loadtest"},
	})
	if err != nil {
		return "", err
	}
	zero := uint64(0)
	_, _, err = b.Append(ctx, Pipeline, ev, &zero)
	return runID, err
}

func (e *env) handledTimes() map[string]time.Time {
	out := map[string]time.Time{}
	e.handled.Range(func(k, v any) bool {
		out[k.(string)] = v.(time.Time)
		return true
	})
	return out
}

// waitCaughtUp waits until the conductor and the projector have consumed
// every event, and says how long that took.
func waitCaughtUp(ctx context.Context, js jetstream.JetStream) (bool, time.Duration) {
	t0 := time.Now()
	for ctx.Err() == nil {
		if consumerLag(ctx, js, conductor.Durable) == 0 && consumerLag(ctx, js, projection.Durable) == 0 {
			return true, time.Since(t0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false, time.Since(t0)
}

// waitConsumers waits until the services have created their durable consumers.
func waitConsumers(ctx context.Context, js jetstream.JetStream, names ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, name := range names {
		stream := events.StreamEvents
		if strings.HasPrefix(name, "worker-") {
			stream = events.StreamTasks
		}
		for {
			_, err := js.Consumer(ctx, stream, name)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrConsumerNotFound) || time.Now().After(deadline) {
				return fmt.Errorf("waiting for consumer %s on %s: %w", name, stream, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// roleConn is one service's connection and its counters over the runs phase.
type roleConn struct {
	role       string
	nc         *nats.Conn
	start, end nats.Statistics
}

// lagSampler samples the services' consumer lag while runs are under way.
type lagSampler struct {
	conductor, projector lagStat
}

type lagStat struct {
	max, n, sum int
}

func (l *lagStat) add(v int) {
	if v < 0 {
		return
	}
	l.max = max(l.max, v)
	l.n++
	l.sum += v
}

func (l *lagStat) mean() float64 {
	if l.n == 0 {
		return 0
	}
	return round3(float64(l.sum) / float64(l.n))
}

// sample reads both consumers' lag every 100 ms until ctx ends.
func (l *lagSampler) sample(ctx context.Context, js jetstream.JetStream) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			l.conductor.add(consumerLag(ctx, js, conductor.Durable))
			l.projector.add(consumerLag(ctx, js, projection.Durable))
		}
	}
}

// consumerLag is what a durable consumer has not yet acknowledged, or -1.
func consumerLag(ctx context.Context, js jetstream.JetStream, name string) int {
	c, err := js.Consumer(ctx, events.StreamEvents, name)
	if err != nil {
		return -1
	}
	info, err := c.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.NumPending) + info.NumAckPending
}
