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
	v, err := json.Marshal(next)
	if err != nil {
		return err
	}
	var rev uint64
	if e.rev == 0 {
		rev, err = b.kv.Create(ctx, key, v)
	} else {
		rev, err = b.kv.Update(ctx, key, v, e.rev)
	}
	if err != nil {
		delete(b.cache, key)
		err = fmt.Errorf("write projection of %s (%d bytes): %w", key, len(v), err)
		if tooLarge(err) {
			err = consume.Permanent(err)
		}
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
	return p.consume(ctx, cons, "run", p.poison(events.StreamEvents), func(m jetstream.Msg) error { return p.handle(ctx, runs, m) })
}

// consume hands each message of a projector's consumer to handle, acking
// what was written and asking again later for what was not, until ctx ends.
func (p *Projector) consume(ctx context.Context, cons jetstream.Consumer, what string, poison consume.Poison, handle func(jetstream.Msg) error) error {
	msgs, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("%s projector consume: %w", what, err)
	}
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	for {
		m, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			p.Log.Warn().Err(err).Str("projection", what).Msg("projector next")
			continue
		}
		if err := handle(m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			poison.Fail(ctx, p.Log.With().Str("projection", what).Logger(), what+" event", m, err)
			continue
		}
		_ = m.Ack()
	}
}

func (p *Projector) handle(ctx context.Context, runs *bucket[run.State], m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	seq := meta.Sequence.Stream
	parts := strings.Split(m.Subject(), ".")
	if len(parts) != 4 {
		return nil
	}
	pipeline, runID := parts[2], parts[3]
	c, err := runs.load(ctx, runID)
	if err != nil {
		return err
	}
	if c.st.LastSeq >= seq {
		return nil
	}
	next, err := p.catchUp(ctx, pipeline, runID, c.st, seq, m.Data())
	if err != nil {
		return err
	}
	if next.Run == "" {
		return nil // events without a run.requested: nothing to project
	}
	if c.rev != 0 && next.LastSeq == c.st.LastSeq {
		return nil // only undecodable events since: the fold skips them too
	}
	if err := runs.store(ctx, runID, c, next); err != nil {
		return err
	}
	if next.Done() && len(runs.cache) > 10000 {
		delete(runs.cache, runID)
	}
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
