// Package conductor is the pipeline service: it consumes the run event log,
// folds each run, asks the pure decider what comes next, appends that with
// optimistic concurrency on the run's subject and dispatches tasks. It keeps
// no state that the log cannot rebuild: its cache is folded from the log on
// demand, so a conductor started after another died picks runs up where
// the log says they are.
package conductor

import (
	"context"
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
}

// Conductor is one conductor process's worth of work.
type Conductor struct {
	o      Options
	shards []*shard
}

type shard struct {
	in   chan jetstream.Msg
	runs map[string]*entry
	// ended remembers the last sequence of runs that ended recently, so the
	// echoes of the conductor's own final appends are acked without
	// re-reading the run.
	ended      map[string]uint64
	endedOrder []string
}

// entry is a cached run and the tasks this conductor published for it, so
// that the echo of its own action.dispatched does not publish them again.
type entry struct {
	st        run.State
	published map[string]bool
	// tip is the run subject's last sequence as far as this conductor
	// knows, counting refused (undecodable) messages the fold skips: the
	// sequence the next append must expect.
	tip uint64
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
	c := &Conductor{o: o}
	for range o.Shards {
		c.shards = append(c.shards, &shard{in: make(chan jetstream.Msg, 256), runs: map[string]*entry{}, ended: map[string]uint64{}})
	}
	return c, nil
}

// Run consumes until ctx ends.
func (c *Conductor) Run(ctx context.Context) error {
	js := c.o.Bus.JetStream()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
		Durable:       Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.o.AckWait,
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: events.SubjectEventsAll,
		Description:   "the conductor: folds runs and decides what comes next",
	})
	if err != nil {
		return fmt.Errorf("conductor consumer: %w", err)
	}
	var wg sync.WaitGroup
	for _, sh := range c.shards {
		wg.Go(func() { c.loop(ctx, sh) })
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		sh := c.shards[shardOf(m.Subject(), len(c.shards))]
		select {
		case sh.in <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("conductor consume: %w", err)
	}
	c.o.Log.Info().Msg("conductor consuming the run log")
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
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-sh.in:
			if err := c.handle(ctx, sh, m); err != nil {
				if ctx.Err() != nil {
					return
				}
				c.o.Log.Warn().Err(err).Str("subject", m.Subject()).Msg("event not handled; it will be redelivered")
				_ = m.NakWithDelay(250 * time.Millisecond)
				continue
			}
			_ = m.Ack()
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

func (c *Conductor) handle(ctx context.Context, sh *shard, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	seq := meta.Sequence.Stream
	b := c.o.Bus
	pipeline, runID, ok := parseRunSubject(m.Subject())
	e, derr := b.Codec().Decode(m.Data())
	if derr == nil && (!ok || e.Subject != runID) {
		derr = fmt.Errorf("%w: event subject %q does not match the run of NATS subject %s", events.ErrInvalidEvent, e.Subject, m.Subject())
	}
	if derr != nil {
		c.o.Log.Warn().Err(derr).Str("subject", m.Subject()).Uint64("seq", seq).Msg("refused event sent to the dead-letter stream")
		return b.DeadLetter(ctx, events.StreamEvents, m.Subject(), seq, m.Data(), derr)
	}
	e.Seq = seq
	if last, ok := sh.ended[runID]; ok && seq <= last {
		return nil // an echo of the run's end, already folded
	}
	log := c.o.Log.With().Str("run", runID).Str("pipeline", pipeline).Logger()

	en := sh.runs[runID]
	if en == nil {
		en = &entry{published: map[string]bool{}}
	}
	st := en.st
	if st.LastSeq < seq {
		// Fold the delivered event directly when it is the run's next one;
		// otherwise (first sight of the run, a redelivery, another
		// conductor's work) read what was missed from the log.
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
	if st.Run == "" {
		return nil // no run.requested for this subject: nothing to conduct
	}
	en.tip = max(en.tip, seq)
	if d, ok := e.Payload.(events.ActionDispatched); ok && !en.published[d.Task.ID] {
		if a := st.Action(d.Task.Stage, d.Task.Action); a != nil && a.Attempt == d.Task.Attempt && a.Phase == run.Dispatched {
			if err := c.publishTask(ctx, d.Task); err != nil {
				return err
			}
			en.published[d.Task.ID] = true
		}
	}
	st, err = c.advance(ctx, pipeline, en, st, log)
	if st.Done() {
		sh.end(runID, st.LastSeq)
	} else {
		en.st = st
		sh.runs[runID] = en
	}
	return err
}

// advance decides and appends until the run waits for someone else. On a
// conflict it folds what it missed and decides again.
func (c *Conductor) advance(ctx context.Context, pipeline string, en *entry, st run.State, log zerolog.Logger) (run.State, error) {
	b := c.o.Bus
	for range 64 {
		chain := decideChain(st, c.o.Now())
		if len(chain) == 0 {
			return st, nil
		}
		seqs, err := b.AppendChain(ctx, pipeline, chain, en.expectFor(st))
		for i, seq := range seqs { // what was appended, even if the rest was refused
			e := chain[i]
			e.Seq = seq
			st = run.Evolve(st, e)
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
func decideChain(st run.State, now time.Time) []events.Event {
	var chain []events.Event
	for len(chain) < maxChain {
		evs := decider.Decide(st, now)
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
	data, err := encodeTask(t)
	if err != nil {
		return err
	}
	return c.o.Bus.PublishTask(ctx, t, data)
}

func logDecision(log zerolog.Logger, e events.Event) {
	ev := log.Debug().Str("type", e.Type).Str("id", e.ID)
	switch p := e.Payload.(type) {
	case events.StageStarted:
		ev = log.Info().Str("stage", p.Stage).Str("type", e.Type)
	case events.ActionDispatched:
		ev = log.Info().Str("stage", p.Task.Stage).Str("action", p.Task.Action).Int("attempt", p.Task.Attempt).Str("type", e.Type)
	case events.RunSucceeded, events.RunFailed:
		ev = log.Info().Str("type", e.Type)
	}
	ev.Msg("appended")
}
