// Package conductor is the pipeline service: it consumes the run event log,
// folds each run, asks the pure decider what comes next, appends that with
// optimistic concurrency on the run's subject and dispatches tasks. It keeps
// no state that the log cannot rebuild: its cache is folded from the log on
// demand, so a conductor started after another died picks runs up where
// the log says they are.
package conductor

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/internal/consume"
	"github.com/gantry-ci/gantry/services/metrics"
)

// Durable is the conductor's consumer name on GANTRY_EVENTS. Every conductor
// shares it, so each event is handled by one of them; renaming it would
// re-consume the whole log.
const Durable = "conductor"

// Options configure a conductor.
type Options struct {
	Bus *bus.Bus
	Log zerolog.Logger
	// Shards is how many runs are handled in parallel; events of one run are
	// always handled in order by one shard.
	Shards int
	// AckWait is how long an event stays with a conductor that went silent.
	AckWait time.Duration
	// Now is the clock handed to the decider.
	Now func() time.Time
	// LeaseKey signs the leases of dispatched tasks. Empty means the key in
	// the KV bucket events.BucketKeys, created there once if absent, so
	// every conductor signs alike.
	LeaseKey []byte
	// Grace is how long past an attempt's timeout the conductor waits for
	// its result before failing it; zero means decider.DefaultGrace.
	Grace time.Duration
	// Tick is how often each shard looks for deadlines due; default 1s.
	Tick time.Duration
	// Metrics, if set, records decision latency, redeliveries and run ends.
	Metrics *metrics.Set
}

// Conductor is one conductor process's worth of work.
type Conductor struct {
	o      Options
	shards []*shard
	// key is the lease key, set once by Run before any shard starts, and
	// leases its leases, remembered across decisions.
	key    []byte
	leases *events.Leases
	// lanes caches each pipeline's folded lane (lanes.go).
	lanes laneCache
}

type shard struct {
	in chan delivery
	// wake carries runs to look at without an event: those open when the
	// conductor started (their deadlines must fire after a restart).
	wake chan [2]string
	runs map[string]*entry
	// ended remembers the last sequence of runs that ended recently, so the
	// echoes of the conductor's own final appends are acked without
	// re-reading the run.
	ended      map[string]uint64
	endedOrder []string
}

// delivery is a message from the conductor's consumer and the unbroken run
// of delivery numbers it arrived in.
type delivery struct {
	m    jetstream.Msg
	meta *jetstream.MsgMetadata // nil when it did not parse
	span consume.Span
}

// entry is a cached run and the tasks this conductor published for it, so
// that the echo of its own action.dispatched does not publish them again.
type entry struct {
	st        run.State
	published map[string]bool
	// seen is the delivery of the last first delivery of this run handled
	// in full, zero when none is known. With st it proves
	// that nothing was missed: every event of the run stored after it was
	// first delivered after it, so if this process received every delivery
	// since, each such event came to this shard, in order, and is folded.
	seen consume.Position
	// own are the sequences this conductor appended to the run and
	// finished with (their tasks published, the decisions after them
	// made), in order, until their echoes come back: an echo needs no
	// decoding and no decision.
	own []uint64
	// tip is the run subject's last sequence as far as this conductor
	// knows, counting refused (undecodable) messages the fold skips: the
	// sequence the next append must expect.
	tip uint64
}

// echo reports whether seq is one of the conductor's own appends coming
// back, and forgets it and any older one (deliveries come in stream order:
// an older one's echo went to another conductor).
func (en *entry) echo(seq uint64) bool {
	i := 0
	for i < len(en.own) && en.own[i] < seq {
		i++
	}
	found := i < len(en.own) && en.own[i] == seq
	if found {
		i++
	}
	en.own = en.own[i:]
	return found
}

// expectFor is the sequence the run's next append must expect, given the
// state being decided on.
func (en *entry) expectFor(st run.State) uint64 { return max(st.LastSeq, en.tip) }

// maxEnded bounds each shard's memory of ended runs.
const maxEnded = 4096

func (sh *shard) end(runID string, last uint64) {
	delete(sh.runs, runID)
	if _, ok := sh.ended[runID]; !ok {
		sh.endedOrder = append(sh.endedOrder, runID)
		if len(sh.endedOrder) > maxEnded {
			delete(sh.ended, sh.endedOrder[0])
			sh.endedOrder = sh.endedOrder[1:]
		}
	}
	sh.ended[runID] = last
}

// New checks options; it does no I/O.
func New(o Options) (*Conductor, error) {
	if o.Bus == nil {
		return nil, errors.New("conductor: a bus is required")
	}
	if o.Shards <= 0 {
		o.Shards = 32
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	c := &Conductor{o: o, lanes: laneCache{m: map[string]laneEntry{}, noted: map[string]uint64{}}}
	for range o.Shards {
		c.shards = append(c.shards, &shard{in: make(chan delivery, 256), wake: make(chan [2]string, 64),
			runs: map[string]*entry{}, ended: map[string]uint64{}})
	}
	return c, nil
}

// Run consumes until ctx ends.
func (c *Conductor) Run(ctx context.Context) error {
	js := c.o.Bus.JetStream()
	c.key = c.o.LeaseKey
	if len(c.key) == 0 {
		key, err := LeaseKey(ctx, js)
		if err != nil {
			return err
		}
		c.key = key
	}
	c.leases = events.NewLeases(c.key)
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
		Durable:       Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.o.AckWait,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: events.SubjectEventsAll,
		MaxDeliver:    consume.MaxDeliver,
		Description:   "the conductor: folds runs and decides what comes next",
	})
	if err != nil {
		return fmt.Errorf("conductor consumer: %w", err)
	}
	cmds, err := c.serveCommands(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range cmds {
			_ = s.Unsubscribe()
		}
	}()
	var wg sync.WaitGroup
	for _, sh := range c.shards {
		wg.Go(func() { c.loop(ctx, sh) })
	}
	var win consume.Window
	cc, err := cons.Consume(func(m jetstream.Msg) {
		d := delivery{m: m}
		if meta, err := m.Metadata(); err == nil {
			d.meta, d.span = meta, win.See(meta.Sequence.Consumer)
			var pipeline string
			var laneSeq uint64
			if strings.HasSuffix(m.Subject(), "."+events.LaneToken) {
				pipeline, _, _ = parseRunSubject(m.Subject())
				laneSeq = meta.Sequence.Stream
			}
			c.lanes.received(d.span.At(meta.Sequence.Consumer), pipeline, laneSeq)
		}
		sh := c.shards[shardOf(m.Subject(), len(c.shards))]
		select {
		case sh.in <- d:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("conductor consume: %w", err)
	}
	c.o.Log.Info().Msg("conductor consuming the run log")
	// Runs open in the log get looked at once, so that their deadlines
	// fire even if no event of theirs ever arrives again.
	if err := c.o.Bus.OpenRuns(ctx, func(pipeline, runID string) {
		select {
		case c.shards[shardOf(events.RunSubject(pipeline, runID), len(c.shards))].wake <- [2]string{pipeline, runID}:
		case <-ctx.Done():
		}
	}); err != nil && ctx.Err() == nil {
		c.o.Log.Warn().Err(err).Msg("open runs not recovered; their deadlines fire on their next event")
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	wg.Wait()
	return nil
}

func shardOf(subject string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(subject))
	return int(h.Sum32() % uint32(n))
}

func (c *Conductor) loop(ctx context.Context, sh *shard) {
	tick := time.NewTicker(c.o.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.expire(ctx, sh)
		case w := <-sh.wake:
			if err := c.look(ctx, sh, w[0], w[1]); err != nil && ctx.Err() == nil {
				c.o.Log.Warn().Err(err).Str("run", w[1]).Msg("open run not looked at")
			}
		case d := <-sh.in:
			consume.Settle(ctx, c.o.Log, "event", 250*time.Millisecond, c.o.Bus, d.m, c.handle(ctx, sh, d))
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// parseRunSubject splits gantry.events.<pipeline>.<run>.
func parseRunSubject(subject string) (pipeline, runID string, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != "gantry" || parts[1] != "events" {
		return "", "", false
	}
	return parts[2], parts[3], true
}

func (c *Conductor) handle(ctx context.Context, sh *shard, d delivery) error {
	m, meta := d.m, d.meta
	if meta == nil {
		_, err := m.Metadata()
		return fmt.Errorf("metadata: %w", err)
	}
	seq := meta.Sequence.Stream
	if meta.NumDelivered > 1 {
		c.o.Metrics.Redelivered(Durable)
	}
	defer func(start time.Time) { c.o.Metrics.Decided(time.Since(start)) }(time.Now())
	b := c.o.Bus
	pipeline, runID, ok := parseRunSubject(m.Subject())
	if en := sh.runs[runID]; ok && en != nil && en.echo(seq) {
		// Validated when this conductor encoded it, folded when appended,
		// decided after: only the proof of deliveries moves on.
		if meta.NumDelivered == 1 && d.span.Covers(en.seen) {
			en.seen = d.span.At(meta.Sequence.Consumer)
		} else {
			en.seen = consume.Position{}
		}
		return nil
	}
	e, derr := b.Codec().Decode(m.Data())
	if ok && runID == events.LaneToken {
		return c.handleLane(ctx, pipeline, m.Subject(), seq, m.Data(), e, derr)
	}
	if derr == nil && (!ok || e.Subject != runID) {
		derr = fmt.Errorf("%w: event subject %q does not match the run of NATS subject %s", events.ErrInvalidEvent, e.Subject, m.Subject())
	}
	if derr != nil {
		c.o.Log.Warn().Err(derr).Str("subject", m.Subject()).Uint64("seq", seq).Msg("refused event sent to the dead-letter stream")
		return b.DeadLetter(ctx, events.StreamEvents, m.Subject(), seq, m.Data(), derr)
	}
	e.Seq = seq
	if err := c.checkLease(e); err != nil {
		// The fold ignores it too; the dead-letter copy says why.
		c.o.Log.Warn().Err(err).Str("run", runID).Uint64("seq", seq).Msg("unleased result sent to the dead-letter stream")
		if err := b.DeadLetter(ctx, events.StreamEvents, m.Subject(), seq, m.Data(), err); err != nil {
			return err
		}
	}
	if last, ok := sh.ended[runID]; ok && seq <= last {
		return nil // an echo of the run's end, already folded
	}
	log := c.o.Log.With().Str("run", runID).Str("pipeline", pipeline).Logger()

	en := sh.runs[runID]
	if en == nil {
		en = &entry{published: map[string]bool{}}
	}
	first := meta.NumDelivered == 1
	// Until this delivery is handled in full, the entry proves nothing.
	seen := en.seen
	en.seen = consume.Position{}
	st := en.st
	if st.LastSeq < seq {
		// Fold the delivered event directly when it is the run's next one;
		// otherwise (first sight of the run, a redelivery, another
		// conductor's work) read what was missed from the log.
		switch {
		case first && st.Run != "" && d.span.Covers(seen):
			// Every delivery since the run's last one reached this process
			// (consume.Window), so the events in between are folded already.
			st = run.Evolve(st, e)
		case st.Run == "" && st.LastSeq == 0 && m.Headers().Get(jetstream.ExpectedLastSubjSeqHeader) == "0":
			// Appended on the condition that the subject was empty: the
			// run's first event.
			st = run.Evolve(st, e)
		default:
			next, found, err := b.NextSeq(ctx, pipeline, runID, st.LastSeq)
			if err != nil {
				return err
			}
			if found && next == seq && st.Run != "" {
				st = run.Evolve(st, e)
			} else {
				evs, err := b.ReadRunUntil(ctx, pipeline, runID, st.LastSeq, seq)
				if err != nil {
					return err
				}
				st = run.Fold(st, evs...)
			}
		}
	}
	if st.Run == "" {
		return nil // no run.requested for this subject: nothing to conduct
	}
	en.tip = max(en.tip, seq)
	if d, ok := e.Payload.(events.ActionDispatched); ok && !en.published[d.Task.ID] {
		if dispatchedNow(st, d.Task) {
			if err := c.publishTask(ctx, d.Task); err != nil {
				return err
			}
			en.published[d.Task.ID] = true
		}
	}
	st, err := c.advance(ctx, pipeline, en, st, &d.span, log)
	c.keep(sh, en, st)
	if err != nil {
		return err
	}
	if err := c.settled(ctx, st); err != nil {
		return err
	}
	if first {
		en.seen = d.span.At(meta.Sequence.Consumer)
	}
	return nil
}

// advance decides and appends until the run waits for someone else. On a
// conflict it folds what it missed and decides again. span, when the
// decision is on a delivered event, is the run of deliveries it came in.
func (c *Conductor) advance(ctx context.Context, pipeline string, en *entry, st run.State, span *consume.Span, log zerolog.Logger) (run.State, error) {
	b := c.o.Bus
	for range 64 {
		in, err := c.runInputs(ctx, st, span)
		if err != nil {
			return st, err
		}
		chain := decideChain(st, in)
		if len(chain) == 0 {
			return st, nil
		}
		seqs, err := b.AppendChain(ctx, pipeline, chain, en.expectFor(st))
		for i, seq := range seqs { // what was appended, even if the rest was refused
			e := chain[i]
			e.Seq = seq
			wasDone := st.Done()
			st = run.Evolve(st, e)
			if !wasDone && st.Done() {
				c.o.Metrics.RunEnded(pipeline, string(st.Phase), st.EndedAt.Sub(st.RequestedAt))
			}
			en.tip = max(en.tip, seq)
			logDecision(log, e)
		}
		for _, e := range chain[:len(seqs)] {
			if d, ok := e.Payload.(events.ActionDispatched); ok {
				if err := c.publishTask(ctx, d.Task); err != nil {
					return st, err
				}
				en.published[d.Task.ID] = true
			}
		}
		if err == nil || errors.Is(err, bus.ErrConflict) {
			// Decided after below, so their echoes need nothing; after any
			// other failure the echoes are handled like anyone's events.
			en.own = append(en.own, seqs...)
		}
		if errors.Is(err, bus.ErrConflict) {
			// Someone appended first: fold what we missed and decide again.
			more, tip, err := b.ReadRunTip(ctx, pipeline, st.Run, en.expectFor(st))
			if err != nil {
				return st, err
			}
			st = run.Fold(st, more...)
			en.tip = max(en.tip, tip)
			continue
		}
		if err != nil {
			return st, err
		}
	}
	return st, fmt.Errorf("run %s: decider did not settle after 64 rounds", st.Run)
}

// maxChain bounds the events decided ahead and appended at once.
const maxChain = 64

// decideChain decides, folds the decision into a scratch copy of the state
// and decides again, until the run waits for someone else: the events that
// follow from the state alone (stage succeeded, next stage started, its
// tasks dispatched) are appended together in one atomic batch rather than
// one round trip each. The decider is pure, so deciding on the scratch
// state gives exactly what deciding after each append would.
func decideChain(st run.State, in decider.Inputs) []events.Event {
	var chain []events.Event
	for len(chain) < maxChain {
		evs := decider.Decide(st, in)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			st = run.Evolve(st, e)
		}
		chain = append(chain, evs...)
	}
	return chain
}

func (c *Conductor) publishTask(ctx context.Context, t events.Task) error {
	if t.Kind == events.KindApproval {
		return nil // a person answers an approval, no worker (approve.go)
	}
	// The log has the lease's hash; the worker gets the lease itself.
	t.Lease = c.leaseToken(t.ID)
	data, err := encodeTask(t)
	if err != nil {
		return err
	}
	return c.o.Bus.PublishTask(ctx, t, data)
}

func (c *Conductor) inputs() decider.Inputs {
	return decider.Inputs{Now: c.o.Now(), LeaseKey: c.key, Leases: c.leases, Grace: c.o.Grace}
}

// ErrUnleasedResult is the dead-letter reason of a result that does not
// carry the lease of the task it claims to end: forged, or meant for an
// attempt that was never dispatched.
var ErrUnleasedResult = errors.New("result refused")

// checkLease refuses a result whose lease is not the one the conductor
// gave the attempt's task. The conductor can check any attempt, current or
// not, since the lease is the HMAC of the task ID under its key.
func (c *Conductor) checkLease(e events.Event) error {
	var ref events.ActionRef
	var lease, what string
	switch p := e.Payload.(type) {
	case events.ActionSucceeded:
		ref, lease, what = p.ActionRef, p.Lease, "action.succeeded"
	case events.ActionFailed:
		ref, lease, what = p.ActionRef, p.Lease, "action.failed"
	case events.ActionAbandoned:
		ref, lease, what = p.ActionRef, p.Lease, "action.abandoned"
	case events.ActionApproved:
		ref, lease, what = p.ActionRef, p.Lease, "action.approved"
	case events.ActionRejected:
		ref, lease, what = p.ActionRef, p.Lease, "action.rejected"
	default:
		return nil
	}
	want := c.leaseToken(events.TaskID(ref.Run, ref.Stage, ref.Action, ref.Attempt))
	if subtle.ConstantTimeCompare([]byte(lease), []byte(want)) == 1 {
		return nil
	}
	return fmt.Errorf("%w: %s for %s/%s/%s attempt %d does not carry the lease of the dispatched task",
		ErrUnleasedResult, what, ref.Run, ref.Stage, ref.Action, ref.Attempt)
}

// expire advances every cached run with a deadline due, so an attempt whose
// result never arrives fails without waiting for an event.
func (c *Conductor) expire(ctx context.Context, sh *shard) {
	in := c.inputs()
	for runID, en := range sh.runs {
		next, ok := decider.NextDeadline(en.st, in)
		if !ok || in.Now.Before(next) {
			continue
		}
		log := c.o.Log.With().Str("run", runID).Str("pipeline", en.st.Pipeline).Logger()
		st, err := c.advance(ctx, en.st.Pipeline, en, en.st, nil, log)
		c.keep(sh, en, st)
		if err == nil {
			err = c.settled(ctx, st)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("deadline not enforced; retrying on the next tick")
		}
	}
}

// look folds a run from the log and advances it: a run that was open when
// this conductor started.
func (c *Conductor) look(ctx context.Context, sh *shard, pipeline, runID string) error {
	if runID == events.LaneToken {
		return c.reconcile(ctx, pipeline)
	}
	en := sh.runs[runID]
	if en == nil {
		en = &entry{published: map[string]bool{}}
	}
	evs, tip, err := c.o.Bus.ReadRunTip(ctx, pipeline, runID, en.st.LastSeq)
	if err != nil {
		return err
	}
	st := run.Fold(en.st, evs...)
	if st.Run == "" {
		return nil
	}
	en.tip = max(en.tip, tip)
	log := c.o.Log.With().Str("run", runID).Str("pipeline", pipeline).Logger()
	st, err = c.advance(ctx, pipeline, en, st, nil, log)
	c.keep(sh, en, st)
	if err != nil {
		return err
	}
	return c.settled(ctx, st)
}

// keep caches a run's state, or forgets it once it ended.
func (c *Conductor) keep(sh *shard, en *entry, st run.State) {
	if st.Done() {
		sh.end(st.Run, st.LastSeq)
		return
	}
	en.st = st
	sh.runs[st.Run] = en
}

func logDecision(log zerolog.Logger, e events.Event) {
	ev := log.Debug().Str("type", e.Type).Str("id", e.ID)
	switch p := e.Payload.(type) {
	case events.StageStarted:
		ev = log.Info().Str("stage", p.Stage).Str("type", e.Type)
	case events.ActionDispatched:
		ev = log.Info().Str("stage", p.Task.Stage).Str("action", p.Task.Action).Int("attempt", p.Task.Attempt).Str("type", e.Type)
	case events.RunSucceeded, events.RunFailed, events.RunStopped, events.RunStopping, events.ActionAbandoned, events.StageRetrying:
		ev = log.Info().Str("type", e.Type)
	case events.ActionWaiting:
		ev = log.Info().Str("stage", p.Stage).Str("action", p.Action).Str("expires", p.Expires).Str("type", e.Type)
	case events.ConditionEvaluated:
		ev = log.Info().Str("stage", p.Stage).Str("when", p.When).Str("rule", p.Rule).Bool("passed", p.Passed).Str("type", e.Type)
	case events.StageSkipped:
		ev = log.Info().Str("stage", p.Stage).Str("type", e.Type)
	}
	ev.Msg("appended")
}
