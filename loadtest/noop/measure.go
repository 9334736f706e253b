package noop

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
)

// stageTimes are the moments of one stage of one run. Stored times are
// JetStream's; taken is the worker's stamp on action.started.
type stageTimes struct {
	stageSucceeded  time.Time // stored
	stageStarted    time.Time // stored
	dispatched      time.Time // stored
	taken           time.Time // action.started `time`
	actionSucceeded time.Time // stored
}

type runTimes struct {
	requested time.Time // stored
	ended     time.Time // stored run.succeeded or run.failed
	succeeded bool
	failed    bool
	stages    []stageTimes
	events    int // stored for this run
}

// logTimes is the log read back after the runs.
type logTimes struct {
	runs map[string]*runTimes
	// events counts every message stored, bytes their size.
	events int
	bytes  int
	byType map[string]int
}

func (l *logTimes) meanBytes() int {
	if l.events == 0 {
		return 256
	}
	return l.bytes / l.events
}

// envelopeHead is the part of the envelope the measurement needs; it skips
// schema validation and the payload, so reading the log back stays cheap.
type envelopeHead struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Subject string    `json:"subject"`
	Time    time.Time `json:"time"`
}

// readLog reads the whole event stream with an ordered consumer and keeps
// the times of every run, stage and action.
func (e *env) readLog(ctx context.Context, b *bus.Bus) (*logTimes, error) {
	s, err := b.JetStream().Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("event stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("event stream info: %w", err)
	}
	lg := &logTimes{runs: map[string]*runTimes{}, byType: map[string]int{}}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return lg, nil
	}
	stageIdx := map[string]int{}
	for i, st := range e.def.Stages {
		stageIdx[st.Name] = i
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read event log: %w", err)
	}
	var seq uint64
	for {
		// Ask for no more than is left, so that the last fetch returns as
		// soon as it has it instead of waiting out FetchMaxWait.
		batch, err := cons.Fetch(int(min(1024, last-seq)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read event log: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			seq = meta.Sequence.Stream
			lg.events++
			lg.bytes += len(m.Data())
			var h envelopeHead
			if err := json.Unmarshal(m.Data(), &h); err != nil {
				continue // counted, but it times nothing
			}
			lg.byType[h.Type]++
			lg.add(h, meta.Timestamp, stageIdx, len(e.def.Stages))
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read event log: %w", err)
		}
		if seq >= last || got == 0 {
			break
		}
	}
	return lg, nil
}

func (l *logTimes) add(h envelopeHead, stored time.Time, stageIdx map[string]int, stages int) {
	r := l.runs[h.Subject]
	if r == nil {
		r = &runTimes{stages: make([]stageTimes, stages)}
		l.runs[h.Subject] = r
	}
	r.events++
	// IDs: run/<run>/stage/<stage>/...; the stage is the fourth segment.
	var st *stageTimes
	if parts := strings.SplitN(h.ID, "/", 5); len(parts) >= 4 && parts[2] == "stage" {
		if i, ok := stageIdx[parts[3]]; ok {
			st = &r.stages[i]
		}
	}
	switch h.Type {
	case events.TypeRunRequested:
		r.requested = stored
	case events.TypeRunSucceeded:
		r.ended, r.succeeded = stored, true
	case events.TypeRunFailed:
		r.ended, r.failed = stored, true
	}
	if st == nil {
		return
	}
	switch h.Type {
	case events.TypeStageStarted:
		st.stageStarted = stored
	case events.TypeStageSucceeded:
		st.stageSucceeded = stored
	case events.TypeActionDispatched:
		st.dispatched = stored
	case events.TypeActionStarted:
		st.taken = h.Time
	case events.TypeActionSucceeded:
		st.actionSucceeded = stored
	}
}

// dist is a sample of durations.
type dist []time.Duration

func (d *dist) add(from, to time.Time) {
	if from.IsZero() || to.IsZero() {
		return
	}
	*d = append(*d, to.Sub(from))
}

// quantile is the nearest-rank q-quantile in milliseconds, 0 when empty.
func (d dist) quantile(q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return ms(s[i])
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// foldExact is projection.FoldAll's loop, decode and evolve, with each fetch
// asking for no more than is left in the log. It returns the events folded.
func foldExact(ctx context.Context, b *bus.Bus) (int, error) {
	s, err := b.JetStream().Stream(ctx, events.StreamEvents)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	codec := b.Codec()
	states := map[string]run.State{}
	n := 0
	var seq uint64
	for seq < last {
		batch, err := cons.Fetch(int(min(1024, last-seq)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return n, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return n, err
			}
			seq = meta.Sequence.Stream
			e, err := codec.Decode(m.Data())
			if err != nil {
				continue
			}
			e.Seq = seq
			states[e.Subject] = run.Evolve(states[e.Subject], e)
			n++
		}
		if err := batch.Error(); err != nil {
			return n, err
		}
		if got == 0 {
			break
		}
	}
	return n, nil
}
