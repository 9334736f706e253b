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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
)

// Durable is the projector's consumer; every projector shares it.
const Durable = "projector"

// Projector folds the log into the runs bucket.
type Projector struct {
	Bus *bus.Bus
	Log zerolog.Logger
}

type cached struct {
	st  run.State
	rev uint64
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
		Description: "projector: folds runs into the runs bucket",
	})
	if err != nil {
		return fmt.Errorf("projector consumer: %w", err)
	}
	cache := map[string]*cached{}
	return p.consume(ctx, cons, "run", func(m jetstream.Msg) error { return p.handle(ctx, kv, cache, m) })
}

// consume hands each message of a projector's consumer to handle, acking
// what was written and asking again later for what was not, until ctx ends.
func (p *Projector) consume(ctx context.Context, cons jetstream.Consumer, what string, handle func(jetstream.Msg) error) error {
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
			p.Log.Warn().Err(err).Str("projection", what).Str("subject", m.Subject()).Msg("projection not written; will retry")
			_ = m.NakWithDelay(250 * time.Millisecond)
			continue
		}
		_ = m.Ack()
	}
}

func (p *Projector) handle(ctx context.Context, kv jetstream.KeyValue, cache map[string]*cached, m jetstream.Msg) error {
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
	c := cache[runID]
	if c == nil {
		c = &cached{}
		if e, err := kv.Get(ctx, runID); err == nil {
			if json.Unmarshal(e.Value(), &c.st) == nil {
				c.rev = e.Revision()
			} else {
				c.st = run.State{}
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		cache[runID] = c
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
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	var rev uint64
	if c.rev == 0 {
		rev, err = kv.Create(ctx, runID, b)
	} else {
		rev, err = kv.Update(ctx, runID, b, c.rev)
	}
	if err != nil {
		// Another projector moved it: drop the cache and try again from the bucket.
		delete(cache, runID)
		return fmt.Errorf("write projection of %s: %w", runID, err)
	}
	c.st, c.rev = next, rev
	if next.Done() && len(cache) > 10000 {
		delete(cache, runID)
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
