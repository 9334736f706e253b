// Package projection keeps the `runs` KV bucket: a cache of every run's
// folded state for fast reads, written by a projector that consumes the
// event log, and thrown away and rebuilt from the log by Rebuild. The log
// stays the truth; the bucket only saves folding it on every read.
package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// Durable is the projector's consumer; every projector shares it.
const Durable = "projector"

// Projector folds the log into the runs bucket.
type Projector struct {
	Bus *bus.Bus
	Log zerolog.Logger
}

// entry is a projected state and the bucket revision it was written at.
type entry[S any] struct {
	st  S
	rev uint64
}

// bucket caches a projection bucket's entries and writes them with
// compare-and-set on the revision, so several projectors can run.
type bucket[S any] struct {
	kv    jetstream.KeyValue
	cache map[string]*entry[S]
}

func newBucket[S any](kv jetstream.KeyValue) *bucket[S] {
	return &bucket[S]{kv: kv, cache: map[string]*entry[S]{}}
}

// load returns the cached entry of key, reading the bucket on a miss; an
// entry that does not decode starts again from the zero state.
func (b *bucket[S]) load(ctx context.Context, key string) (*entry[S], error) {
	if e, ok := b.cache[key]; ok {
		return e, nil
	}
	e := &entry[S]{}
	kve, err := b.kv.Get(ctx, key)
	switch {
	case err == nil:
		if json.Unmarshal(kve.Value(), &e.st) == nil {
			e.rev = kve.Revision()
		} else {
			var zero S
			e.st = zero
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, err
	}
	b.cache[key] = e
	return e, nil
}

// store writes next over e. On a conflict (another projector moved the key)
// the cache entry is dropped, so the retry starts from the bucket.
func (b *bucket[S]) store(ctx context.Context, key string, e *entry[S], next S) error {
	rev, err := b.write(ctx, key, e.rev, next)
	return b.commit(key, e, next, rev, err)
}

// write writes next at key over revision rev (0: a new key). It touches
// no cache, so several writes may be under way at once.
func (b *bucket[S]) write(ctx context.Context, key string, rev uint64, next S) (uint64, error) {
	v, err := json.Marshal(next)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = b.kv.Create(ctx, key, v)
	} else {
		rev, err = b.kv.Update(ctx, key, v, rev)
	}
	if err != nil {
		err = fmt.Errorf("write projection of %s (%d bytes): %w", key, len(v), err)
		if tooLarge(err) {
			err = consume.Permanent(err)
		}
	}
	return rev, err
}

// commit records the outcome of a write in the cache.
func (b *bucket[S]) commit(key string, e *entry[S], next S, rev uint64, err error) error {
	if err != nil {
		delete(b.cache, key)
		return err
	}
	e.st, e.rev = next, rev
	return nil
}

// tooLarge reports whether a write failed for its size, which no retry
// cures: larger than the connection's max_payload, or than the bucket's
// maximum message size.
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}

// poison gives up on an event the projector still cannot write after about
// two minutes of redeliveries, or at once when it is too large: it goes to
// the dead-letter stream with the reason. The projection of its run is then
// behind the log until the run's next event (each write folds everything
// since the last one) or `gantry state rebuild`.
func (p *Projector) poison(stream string) consume.Poison {
	return consume.Poison{DLQ: p.Bus, Stream: stream, MaxDeliver: 12, Delay: 250 * time.Millisecond, MaxDelay: 15 * time.Second}
}

// Run keeps both projections, runs and deployments, until ctx ends.
func (p *Projector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := p.runDeploys(ctx)
		cancel()
		errc <- err
	}()
	err := p.runRuns(ctx)
	cancel()
	return errors.Join(err, <-errc)
}

// runRuns folds the run log into the runs bucket.
func (p *Projector) runRuns(ctx context.Context) error {
	js := p.Bus.JetStream()
	kv, err := js.KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return fmt.Errorf("runs bucket: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
		Durable: Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxAckPending: 4096, FilterSubject: events.SubjectEventsAll,
		MaxDeliver:  p.poison(events.StreamEvents).ServerMaxDeliver(),
		Description: "projector: folds runs into the runs bucket",
	})
	if err != nil {
		return fmt.Errorf("projector consumer: %w", err)
	}
	runs := newBucket[run.State](kv)
	rp := &runProjector{p: p, runs: runs, seen: map[string]consume.Position{}}
	return p.consume(ctx, cons, "run", p.poison(events.StreamEvents), rp.project)
}

// Batches: after a message, the projector takes what else arrives within
// batchWindow, up to maxBatch messages, and writes each run once per
// batch: a run's events within the window (a result, the next stage
// started, its task dispatched and taken) cost one write, not one each.
// The runs bucket is thus up to batchWindow (and a write) behind the log;
// what must be current reads the log.
const (
	maxBatch    = 1024
	batchWindow = 50 * time.Millisecond
)

// consume hands what a projector's consumer delivers to project, a drained
// batch at a time, in delivery order; project returns each message's
// outcome. What was written is acked, what was not comes again later,
// until ctx ends.
func (p *Projector) consume(ctx context.Context, cons jetstream.Consumer, what string, poison consume.Poison,
	project func(ctx context.Context, batch []jetstream.Msg) []error) error {
	msgs, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("%s projector consume: %w", what, err)
	}
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	log := p.Log.With().Str("projection", what).Logger()
	batch := make([]jetstream.Msg, 0, maxBatch)
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			p.Log.Warn().Err(err).Str("projection", what).Msg("projector next")
			continue
		}
		batch = append(batch[:0], m)
		for end := time.Now().Add(batchWindow); len(batch) < maxBatch; {
			wait := time.Until(end)
			if wait <= 0 {
				break
			}
			m, err := msgs.Next(jetstream.NextMaxWait(wait))
			if err != nil {
				break // the window closed (a closed iterator shows at the next Next)
			}
			batch = append(batch, m)
		}
		for i, err := range project(ctx, batch) {
			if err == nil {
				_ = batch[i].Ack()
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			poison.Fail(ctx, log, what+" event", batch[i], err)
		}
	}
}

// each projects a batch one message at a time.
func each(handle func(jetstream.Msg) error) func(context.Context, []jetstream.Msg) []error {
	return func(_ context.Context, batch []jetstream.Msg) []error {
		errs := make([]error, len(batch))
		for i, m := range batch {
			errs[i] = handle(m)
		}
		return errs
	}
}

// runProjector projects the run log into the runs bucket.
type runProjector struct {
	p    *Projector
	runs *bucket[run.State]
	// win and seen prove, as in the conductor, that a run's delivered
	// event is its next one without asking the server: seen holds the
	// delivery of each run's last first delivery written.
	win  consume.Window
	seen map[string]consume.Position
}

// runBatch is one run's messages in a batch, in delivery order, and what
// folding them gave.
type runBatch struct {
	pipeline, run string
	idx           []int // into the batch

	c     *entry[run.State] // the projection before
	st    run.State         // after
	last  consume.Position
	write bool // st must be written
	rev   uint64
	err   error
}

// project folds each run's events in the batch and writes the run once.
func (rp *runProjector) project(ctx context.Context, batch []jetstream.Msg) []error {
	errs := make([]error, len(batch))
	spans := make([]consume.Span, len(batch))
	metas := make([]*jetstream.MsgMetadata, len(batch))
	var order []*runBatch
	byRun := map[string]*runBatch{}
	for i, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			errs[i] = err
			continue
		}
		metas[i], spans[i] = meta, rp.win.See(meta.Sequence.Consumer)
		parts := strings.Split(m.Subject(), ".")
		if len(parts) != 4 {
			continue // not a run's subject: nothing to project
		}
		rb := byRun[parts[3]]
		if rb == nil {
			rb = &runBatch{pipeline: parts[2], run: parts[3]}
			byRun[rb.run] = rb
			order = append(order, rb)
		}
		rb.idx = append(rb.idx, i)
	}
	for _, rb := range order {
		rb.err = rp.fold(ctx, rb, batch, metas, spans)
	}
	// The runs' writes go out together: one round trip for the batch, not
	// one per run.
	var wg sync.WaitGroup
	for _, rb := range order {
		if rb.err == nil && rb.write {
			wg.Go(func() { rb.rev, rb.err = rp.runs.write(ctx, rb.run, rb.c.rev, rb.st) })
		}
	}
	wg.Wait()
	for _, rb := range order {
		if rb.err == nil && rb.write {
			rb.err = rp.runs.commit(rb.run, rb.c, rb.st, rb.rev, nil)
		} else if rb.err != nil {
			_ = rp.runs.commit(rb.run, rb.c, rb.st, 0, rb.err)
		}
		if rb.err != nil {
			for _, i := range rb.idx {
				errs[i] = rb.err
			}
			continue
		}
		if rb.st.Done() {
			if len(rp.runs.cache) > 10000 {
				delete(rp.runs.cache, rb.run)
			}
			continue
		}
		rp.seen[rb.run] = rb.last
	}
	return errs
}

// fold folds one run's delivered events onto its projection.
func (rp *runProjector) fold(ctx context.Context, rb *runBatch, batch []jetstream.Msg, metas []*jetstream.MsgMetadata, spans []consume.Span) error {
	c, err := rp.runs.load(ctx, rb.run)
	if err != nil {
		return err
	}
	rb.c = c
	last := rp.seen[rb.run]
	delete(rp.seen, rb.run) // proves nothing until this batch is written
	st := c.st
	for _, i := range rb.idx {
		seq, first := metas[i].Sequence.Stream, metas[i].NumDelivered == 1
		if st.LastSeq < seq {
			// Direct: every delivery since the run's last one reached this
			// projector, or the event was appended on the condition that
			// the run's subject was empty.
			if first && st.Run != "" && spans[i].Covers(last) ||
				st.Run == "" && st.LastSeq == 0 && batch[i].Headers().Get(jetstream.ExpectedLastSubjSeqHeader) == "0" {
				if e, err := rp.p.Bus.Codec().Decode(batch[i].Data()); err == nil {
					e.Seq = seq
					st = run.Evolve(st, e)
				} // refused by the codec: the fold skips it too
			} else if st, err = rp.p.catchUp(ctx, rb.pipeline, rb.run, st, seq, batch[i].Data()); err != nil {
				return err
			}
		}
		last = consume.Position{}
		if first {
			last = spans[i].At(metas[i].Sequence.Consumer)
		}
	}
	rb.st, rb.last = st, last
	// Nothing to write for events without a run.requested, or when only
	// undecodable events came since (the fold skips them too).
	rb.write = st.Run != "" && (c.rev == 0 || st.LastSeq != c.st.LastSeq)
	return nil
}

// catchUp folds a run up to seq: the delivered event alone when a cheap
// probe shows it is the run's next one, else whatever the log holds since
// the cached state.
func (p *Projector) catchUp(ctx context.Context, pipeline, runID string, st run.State, seq uint64, data []byte) (run.State, error) {
	if st.Run != "" {
		next, ok, err := p.Bus.NextSeq(ctx, pipeline, runID, st.LastSeq)
		if err != nil {
			return st, err
		}
		if ok && next == seq {
			e, err := p.Bus.Codec().Decode(data)
			if err != nil {
				return st, nil // refused by the codec: the fold skips it too
			}
			e.Seq = seq
			return run.Evolve(st, e), nil
		}
	}
	evs, err := p.Bus.ReadRunUntil(ctx, pipeline, runID, st.LastSeq, seq)
	if err != nil {
		return st, err
	}
	return run.Fold(st, evs...), nil
}
