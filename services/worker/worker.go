// Package worker is the shell every worker fleet shares (build, test,
// source, custom kinds): it pulls tasks of one kind and pool from the
// GANTRY_TASKS work queue through a durable consumer shared by the fleet,
// heartbeats while a task runs so a live worker keeps it and a dead one's
// task comes back after AckWait, streams the task's output live, archives
// it, and appends the action's events. The work itself is a Handler.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/internal/consume"
	"github.com/gantry-ci/gantry/services/metrics"
)

// Handler does one task. A returned error fails the action with the error as
// the reason; the Result of a success names its outputs and variables.
type Handler interface {
	Handle(ctx context.Context, t *Task) (Result, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, t *Task) (Result, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, t *Task) (Result, error) { return f(ctx, t) }

// Result is what a successful task produced.
type Result struct {
	Outputs   []events.ArtifactRef
	Variables map[string]string
}

// Task is the handler's view of one task attempt.
type Task struct {
	events.Task
	// Workspace is an empty directory of this attempt's own, removed
	// afterwards; empty when the worker runs with Options.NoWorkspace.
	Workspace string
	// Log receives the task's output; lines are streamed live and archived.
	Log *LogStream
	// Publish appends an extra event about this action (a test report, an
	// artifact stored) to the run's log.
	Publish func(ctx context.Context, p events.Payload, fact string) error
	// Ref names this attempt in events.
	Ref events.ActionRef
	// Artifacts is the object store of artifacts and logs.
	Artifacts *artifact.Store
	// Worker is this worker's name.
	Worker string
	// Upload is unique to this delivery of the task: it keys what the
	// delivery stores, so a stalled worker whose task was redelivered never
	// overwrites what the other delivery stored (see ArtifactKey).
	Upload string
}

// ArtifactKey is the object store key of artifact name of this delivery
// ([events.ArtifactKey]): write-once, never shared with another delivery.
func (t *Task) ArtifactKey(name string) string {
	return events.ArtifactKey(t.Pipeline, t.Ref, t.Upload, name)
}

// ErrAttemptClosed is returned by Task.Publish when the attempt already
// ended in the run's log: another delivery of the task (after this worker
// stalled past AckWait) finished it, or the run moved on. The handler
// should give up; its result is dropped.
var ErrAttemptClosed = errors.New("the action attempt has already ended")

// Options configure a worker.
type Options struct {
	Bus     *bus.Bus
	Log     zerolog.Logger
	Kind    string
	Pool    string
	Name    string
	Handler Handler
	// Concurrency is how many tasks this process runs at once.
	Concurrency int
	// AckWait is how long a task stays with a worker that stopped heartbeating.
	AckWait time.Duration
	// WorkDir holds the per-task workspaces; default os.TempDir()/gantry-work.
	WorkDir string
	// LogCap bounds the bytes of output kept per task.
	LogCap int64
	// BeatEvery is how many InProgress heartbeats pass between
	// action.heartbeat events in the log.
	BeatEvery int
	// KeepWorkspace leaves workspaces behind for debugging.
	KeepWorkspace bool
	// NoWorkspace skips creating a workspace directory per task, for
	// handlers that never touch disk (an action that calls an API, the
	// load test's no-op): Task.Workspace is then empty. The log's local
	// copy still goes to WorkDir, and only once a line is printed.
	NoWorkspace bool
	// Metrics, if set, counts tasks, their durations and redeliveries.
	Metrics *metrics.Set
}

// Worker pulls and runs tasks.
type Worker struct {
	o Options
}

// ConsumerName is the durable consumer a kind and pool's fleet shares.
func ConsumerName(kind, pool string) string { return "worker-" + kind + "-" + pool }

// New checks options; it does no I/O.
func New(o Options) (*Worker, error) {
	var errs []error
	if o.Bus == nil {
		errs = append(errs, errors.New("a bus is required"))
	}
	if o.Handler == nil {
		errs = append(errs, errors.New("a handler is required"))
	}
	if err := events.CheckName("kind", o.Kind); err != nil {
		errs = append(errs, err)
	}
	if o.Pool == "" {
		o.Pool = "default"
	}
	if err := events.CheckName("pool", o.Pool); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("worker options: %w", err)
	}
	if o.Name == "" {
		host, _ := os.Hostname()
		o.Name = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.WorkDir == "" {
		o.WorkDir = filepath.Join(os.TempDir(), "gantry-work")
	}
	if o.LogCap <= 0 {
		o.LogCap = 10 << 20
	}
	if o.BeatEvery <= 0 {
		o.BeatEvery = 6
	}
	o.Log = o.Log.With().Str("kind", o.Kind).Str("pool", o.Pool).Str("worker", o.Name).Logger()
	return &Worker{o: o}, nil
}

// Run pulls tasks until ctx ends; tasks under way are cancelled with it and
// handed back to the fleet at once (nak), not after AckWait.
func (w *Worker) Run(ctx context.Context) error {
	js := w.o.Bus.JetStream()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamTasks, jetstream.ConsumerConfig{
		Durable:       ConsumerName(w.o.Kind, w.o.Pool),
		FilterSubject: events.TaskSubject(w.o.Kind, w.o.Pool),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.o.AckWait,
		// Redelivery is how a dead worker's task returns to the fleet;
		// past consume.PoisonAfter tries it is dead-lettered (process).
		MaxDeliver:  consume.MaxDeliver,
		Description: fmt.Sprintf("the %s fleet of pool %s", w.o.Kind, w.o.Pool),
	})
	if err != nil {
		return fmt.Errorf("task consumer %s: %w", ConsumerName(w.o.Kind, w.o.Pool), err)
	}
	store, err := artifact.OpenStore(ctx, js)
	if err != nil {
		return fmt.Errorf("object store %s: %w", events.BucketArtifacts, err)
	}
	if err := os.MkdirAll(w.o.WorkDir, 0o755); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	w.o.Log.Info().Msg("worker waiting for tasks")
	var wg sync.WaitGroup
	for range w.o.Concurrency {
		wg.Go(func() { w.pull(ctx, cons, store) })
	}
	wg.Wait()
	return nil
}

func (w *Worker) pull(ctx context.Context, cons jetstream.Consumer, store *artifact.Store) {
	for ctx.Err() == nil {
		// One task at a time per slot: a worker must not hold tasks it is not
		// running, or they would wait behind a long build.
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			if ctx.Err() == nil {
				w.o.Log.Warn().Err(err).Msg("fetch task")
				sleep(ctx, time.Second)
			}
			continue
		}
		for m := range batch.Messages() {
			if ctx.Err() != nil {
				// Fetched while stopping: not this worker's to run.
				w.handBack(m, w.o.Log)
				continue
			}
			w.process(ctx, m, store)
		}
	}
}

// handBack naks a task this worker will not finish because it is stopping,
// and flushes, so the nak reaches the server before the connection closes.
func (w *Worker) handBack(m jetstream.Msg, log zerolog.Logger) {
	log.Warn().Msg("worker stopping; the task is handed back to the fleet")
	if err := m.Nak(); err != nil {
		log.Warn().Err(err).Msg("nak task; it returns after AckWait")
		return
	}
	if err := w.o.Bus.Conn().FlushTimeout(5 * time.Second); err != nil {
		log.Warn().Err(err).Msg("flush the nak; the task may return only after AckWait")
	}
}

// sleep waits d and reports true, or false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *Worker) process(ctx context.Context, m jetstream.Msg, store *artifact.Store) {
	b := w.o.Bus
	var t events.Task
	meta, _ := m.Metadata()
	var seq uint64
	if meta != nil {
		seq = meta.Sequence.Stream
	}
	if err := decodeTask(m.Data(), &t); err != nil {
		w.o.Log.Warn().Err(err).Str("subject", m.Subject()).Msg("refused task sent to the dead-letter stream")
		if derr := b.DeadLetter(ctx, events.StreamTasks, m.Subject(), seq, m.Data(), err); derr != nil {
			_ = m.Nak()
			return
		}
		_ = m.Term()
		return
	}
	ref := events.ActionRef{Run: t.Run, Stage: t.Stage, Action: t.Action, Attempt: t.Attempt}
	view := newRunView(b, t)
	takenAt := time.Now()
	// Only a delivery that is not the task's first, or that was held long
	// enough for the server to hand the task to another worker meanwhile,
	// can find its attempt ended by someone else; a quick first delivery
	// skips reading the run before its result. (A copy of the task
	// published again is caught by the result's deterministic ID, or by
	// the check before artifact.stored.)
	recheck := func() bool {
		return meta == nil || meta.NumDelivered > 1 || time.Since(takenAt) >= w.o.AckWait/3
	}
	log := w.o.Log.With().Str("run", t.Run).Str("stage", t.Stage).Str("action", t.Action).Int("attempt", t.Attempt).Logger()
	if consume.Poisoned(ctx, log, b, m, "every worker that took the task died or could not report; the conductor fails the attempt at its deadline") {
		return
	}
	if meta != nil && meta.NumDelivered > 1 {
		w.o.Metrics.Redelivered(ConsumerName(w.o.Kind, w.o.Pool))
		log.Warn().Uint64("delivery", meta.NumDelivered).Msg("task redelivered: its previous worker went silent")
		if done, err := w.alreadyDone(ctx, view, t); err == nil && done {
			log.Info().Msg("task already ended in the log; dropping the repeat")
			_ = m.Ack()
			return
		}
	}

	// Heartbeat from the moment the task is taken, so a slow start keeps it.
	hbCtx, stopHB := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeat(hbCtx, m, t, ref) })
	defer func() { stopHB(); hb.Wait() }()
	taken := w.o.Metrics.TaskTaken(w.o.Kind, w.o.Pool)
	result := "returned" // to the fleet, unless it ends below
	defer func() { taken(result) }()

	publish := func(ctx context.Context, p events.Payload, fact string) error {
		e, err := events.New(events.ActionID(ref, fact), "/gantry/worker/"+w.o.Kind, t.Run, time.Now(), p)
		if err != nil {
			return err
		}
		_, _, err = b.Append(ctx, t.Pipeline, e, nil)
		return err
	}
	if err := publish(ctx, events.ActionStarted{ActionRef: ref, Worker: w.o.Name}, "started"); err != nil {
		log.Warn().Err(err).Msg("append action.started; the task will be retried")
		_ = m.NakWithDelay(time.Second)
		return
	}
	log.Info().Msg("task started")

	upload := newUploadID()
	ws, logPath := "", filepath.Join(w.o.WorkDir, "task-"+upload+".log")
	if !w.o.NoWorkspace {
		var err error
		if ws, err = os.MkdirTemp(w.o.WorkDir, "task-"); err != nil {
			result = w.finish(ctx, m, store, view, recheck(), t, ref, publish, Result{}, fmt.Errorf("create workspace: %w", err), nil, "", log)
			return
		}
		if !w.o.KeepWorkspace {
			defer os.RemoveAll(ws)
		}
		logPath = ws + ".log"
	}
	ls := newLogStream(b.Conn(), events.LogSubject(t.Run, t.Stage, t.Action), logPath, w.o.LogCap)
	defer os.Remove(logPath)

	runCtx := ctx
	if t.TimeoutSeconds > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, time.Duration(t.TimeoutSeconds)*time.Second)
		defer cancel()
	}
	// Extra events (artifact stored, test report) name what this delivery
	// produced: a stale delivery must not add them to an attempt another
	// one finished.
	publishOpen := func(ctx context.Context, p events.Payload, fact string) error {
		if err := w.checkOpen(ctx, view, t); err != nil {
			return err
		}
		return publish(ctx, p, fact)
	}
	// A stop with abandon ends the attempt in the log; cancelling the
	// handler's context makes the runner kill the task's process group.
	runCtx, abandon := context.WithCancelCause(runCtx)
	defer abandon(nil)
	defer w.watchAbandon(ctx, view, t, ref, abandon)()
	res, herr := w.o.Handler.Handle(runCtx, &Task{
		Task: t, Workspace: ws, Log: ls, Publish: publishOpen, Ref: ref, Artifacts: store, Worker: w.o.Name, Upload: upload,
	})
	if ctx.Err() != nil {
		// This worker is stopping (SIGTERM): its processes were killed with
		// the context. Hand the task back now, so another worker redoes it
		// at once instead of after AckWait.
		w.handBack(m, log)
		return
	}
	if cause := context.Cause(runCtx); errors.Is(cause, errAbandoned) {
		// The attempt already ended in the log: no result, only the log.
		log.Info().Err(cause).Msg("task abandoned; its processes were killed")
		result = "abandoned"
		ls.Line("gantry", cause.Error())
		w.archive(ctx, store, t, ref, upload, publish, ls, log)
		if err := m.DoubleAck(ctx); err != nil {
			log.Warn().Err(err).Msg("ack task")
		}
		return
	}
	if herr != nil && runCtx.Err() == context.DeadlineExceeded {
		herr = fmt.Errorf("timed out after %ds: %w", t.TimeoutSeconds, herr)
	}
	result = w.finish(ctx, m, store, view, recheck(), t, ref, publish, res, herr, ls, upload, log)
}

func (w *Worker) finish(ctx context.Context, m jetstream.Msg, store *artifact.Store, view *runView, recheck bool, t events.Task, ref events.ActionRef,
	publish func(context.Context, events.Payload, string) error, res Result, herr error, ls *LogStream, upload string, log zerolog.Logger) (result string) {
	// Right before the result: if another delivery of this attempt ended
	// it meanwhile (this worker stalled past AckWait), its result and
	// artifacts stand; this delivery's are dropped quietly. A handler that
	// already found the attempt closed says so in its error.
	var err error
	switch {
	case errors.Is(herr, ErrAttemptClosed):
		err = herr
	case recheck:
		err = w.checkOpen(ctx, view, t)
	}
	if errors.Is(err, ErrAttemptClosed) {
		log.Info().Str("upload", upload).Msg("another delivery already ended this attempt; dropping this one's result")
		if err := m.DoubleAck(ctx); err != nil {
			log.Warn().Err(err).Msg("ack task")
		}
		return "dropped"
	} else if err != nil {
		log.Warn().Err(err).Msg("check the attempt is still open; the task will be retried")
		_ = m.NakWithDelay(time.Second)
		return "returned"
	}
	if ls != nil {
		if herr != nil {
			ls.Line("gantry", "action failed: "+herr.Error())
		}
		w.archive(ctx, store, t, ref, upload, publish, ls, log)
	}
	// The result carries the task's lease (the conductor refuses a result
	// without it) and its ID a tag of the lease, so that a result someone
	// published ahead under the plain ID cannot take this one's slot.
	result = "succeeded"
	if herr != nil {
		result = "failed"
		log.Info().Err(herr).Msg("task failed")
		err = publish(ctx, events.ActionFailed{ActionRef: ref, Worker: w.o.Name, Reason: truncate(herr.Error(), 2000), Lease: t.Lease},
			resultFact(ref, "failed", t.Lease))
	} else {
		log.Info().Int("outputs", len(res.Outputs)).Msg("task succeeded")
		err = publish(ctx, events.ActionSucceeded{ActionRef: ref, Worker: w.o.Name, Outputs: res.Outputs, Variables: res.Variables, Lease: t.Lease},
			resultFact(ref, "succeeded", t.Lease))
	}
	if err != nil {
		log.Warn().Err(err).Msg("append the action's result; the task will be retried")
		_ = m.NakWithDelay(time.Second)
		return "returned"
	}
	// The result is in the log: an ack that is lost only brings the task
	// back after AckWait, and that delivery finds its attempt ended and
	// drops it, so the ack need not wait for the server's answer.
	if err := m.Ack(); err != nil {
		log.Warn().Err(err).Msg("ack task")
	}
	return result
}

func (w *Worker) archive(ctx context.Context, store *artifact.Store, t events.Task, ref events.ActionRef, upload string,
	publish func(context.Context, events.Payload, string) error, ls *LogStream, log zerolog.Logger) {
	arch, ok, err := ls.Archive(ctx, store, events.LogKey(t.Pipeline, t.Run, t.Stage, t.Action, t.Attempt, upload), ref)
	switch {
	case err != nil:
		log.Warn().Err(err).Msg("archive log")
	case ok:
		if err := publish(ctx, arch, "log-archived"); err != nil {
			log.Warn().Err(err).Msg("append log.archived")
		}
	}
}

// errAbandoned is the cause of a task's context when its run was stopped
// with abandon.
var errAbandoned = errors.New("abandoned")

// watchAbandon calls abandon when the attempt is abandoned in the log. A
// task that ends within abandonWatchDelay is never watched: nothing could
// kill it sooner, and most tasks of a busy fleet are that quick (a no-op,
// an API call). After that the watcher listens to the run's subject for
// action.abandoned and reads the log once, for an abandon that came
// before it listened, then every AckWait/3 while the task runs, for one
// whose live copy was lost (core NATS drops messages to a slow
// subscriber). The check before the result catches it at the latest.
func (w *Worker) watchAbandon(ctx context.Context, v *runView, t events.Task, ref events.ActionRef, abandon context.CancelCauseFunc) func() {
	b := w.o.Bus
	fire := func(reason string) { abandon(fmt.Errorf("%w: %s", errAbandoned, reason)) }
	abandoned := func() {
		st, err := v.read(ctx)
		if err != nil {
			return // the next look reads again
		}
		if a := st.Action(t.Stage, t.Action); a != nil && a.Attempt == t.Attempt && a.Phase == run.Abandoned {
			fire(a.Reason)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if !sleep(ctx, abandonWatchDelay) {
			return
		}
		sub, err := b.Conn().Subscribe(events.RunSubject(t.Pipeline, t.Run), func(m *nats.Msg) {
			e, err := b.Codec().Decode(m.Data)
			if err != nil {
				return
			}
			// The lease proves the conductor sent it: nobody else knows it.
			if p, ok := e.Payload.(events.ActionAbandoned); ok && p.ActionRef == ref && p.Lease == t.Lease {
				fire(p.Reason)
			}
		})
		if err != nil {
			w.o.Log.Warn().Err(err).Str("run", t.Run).Msg("cannot listen for the run being stopped; looking every AckWait/3 instead")
		} else {
			defer func() { _ = sub.Unsubscribe() }()
		}
		abandoned()
		tick := time.NewTicker(w.o.AckWait / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				abandoned()
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// abandonWatchDelay is how long a task runs before its worker watches for
// an abandon (watchAbandon).
const abandonWatchDelay = 100 * time.Millisecond

// alreadyDone reads the run's log to see whether this attempt has ended, so
// a task redelivered after its result was appended is not run twice.
func (w *Worker) alreadyDone(ctx context.Context, v *runView, t events.Task) (bool, error) {
	st, err := v.read(ctx)
	if err != nil {
		return false, err
	}
	return attemptEnded(st, t) || st.Done(), nil
}

// runView is one task's fold of its run's log, read incrementally: the
// worker looks at the run several times per task (a redelivery, the
// abandon watch, before storing artifacts and before the result), and
// each look reads only what was appended since the last one instead of
// the whole log again.
type runView struct {
	b             *bus.Bus
	pipeline, run string

	mu  sync.Mutex
	st  run.State
	tip uint64
}

func newRunView(b *bus.Bus, t events.Task) *runView {
	return &runView{b: b, pipeline: t.Pipeline, run: t.Run}
}

// read folds what the run's log gained since the last read and returns
// the run as it stands.
func (v *runView) read(ctx context.Context) (run.State, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	evs, tip, err := v.b.ReadRunTip(ctx, v.pipeline, v.run, v.tip)
	if err != nil {
		return v.st, err
	}
	v.st, v.tip = run.Fold(v.st, evs...), max(v.tip, tip)
	return v.st, nil
}

// attemptEnded reports whether the task's attempt has a result in the run's
// log, or a later attempt started.
func attemptEnded(st run.State, t events.Task) bool {
	a := st.Action(t.Stage, t.Action)
	return a != nil && (a.Attempt > t.Attempt || (a.Attempt == t.Attempt && a.Phase.Done()))
}

// checkOpen returns ErrAttemptClosed when the task's attempt has ended in
// the run's log. A run that ended otherwise (stopped) leaves the attempt
// open: its log is still archived and its result recorded, which the fold
// ignores.
func (w *Worker) checkOpen(ctx context.Context, v *runView, t events.Task) error {
	st, err := v.read(ctx)
	if err != nil {
		return fmt.Errorf("check attempt %d of %s/%s is still open: %w", t.Attempt, t.Stage, t.Action, err)
	}
	if attemptEnded(st, t) {
		return fmt.Errorf("%w: attempt %d of %s/%s", ErrAttemptClosed, t.Attempt, t.Stage, t.Action)
	}
	return nil
}

// newUploadID names one delivery of a task: a UUIDv7, so keys sort by time.
func newUploadID() string {
	if u, err := uuid.NewV7(); err == nil {
		return u.String()
	}
	return uuid.NewString()
}

func (w *Worker) heartbeat(ctx context.Context, m jetstream.Msg, t events.Task, ref events.ActionRef) {
	every := w.o.AckWait / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	beats := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := m.InProgress(); err != nil {
				w.o.Log.Warn().Err(err).Str("run", t.Run).Msg("heartbeat")
			}
			beats++
			if beats%w.o.BeatEvery == 0 {
				n := beats / w.o.BeatEvery
				e, err := events.New(events.ActionID(ref, "heartbeat/"+strconv.Itoa(n)), "/gantry/worker/"+w.o.Kind, t.Run, time.Now(),
					events.ActionHeartbeat{ActionRef: ref, Worker: w.o.Name, Beat: n})
				if err == nil {
					_, _, _ = w.o.Bus.Append(ctx, t.Pipeline, e, nil)
				}
			}
		}
	}
}

func decodeTask(data []byte, t *events.Task) error {
	if err := json.Unmarshal(data, t); err != nil {
		return fmt.Errorf("%w: task: %w", events.ErrInvalidEvent, err)
	}
	var errs []error
	for what, v := range map[string]string{"pipeline": t.Pipeline, "stage": t.Stage, "action": t.Action, "kind": t.Kind, "pool": t.Pool} {
		if err := events.CheckName(what, v); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Run == "" || t.Attempt < 1 || t.ID != events.TaskID(t.Run, t.Stage, t.Action, t.Attempt) {
		errs = append(errs, errors.New("task id, run and attempt do not agree"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: task: %w", events.ErrInvalidEvent, err)
	}
	return nil
}

// resultFact is the fact part of events.ResultID, for publish, which
// prefixes the attempt's ActionID.
func resultFact(ref events.ActionRef, fact, lease string) string {
	return strings.TrimPrefix(events.ResultID(ref, fact, lease), events.ActionID(ref, ""))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
