// Package source turns the outside world into runs and source artifacts.
//
// Triggers arrive on gantry.triggers.<pipeline> from anyone (the CLI, the
// API, webhooks, other systems); each becomes one run.requested carrying the
// pipeline definition of the moment. The run ID is derived from the trigger
// ID and the first append to the run's subject expects it empty, so a
// trigger delivered twice, or published twice, starts one run.
//
// The source action (kind "source") checks a git repository out at the
// run's commit and stores the tree as the run's source artifact.
package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// Trigger is the message published on gantry.triggers.<pipeline>.
type Trigger struct {
	ID        string            `json:"id"`
	Pipeline  string            `json:"pipeline"`
	Kind      string            `json:"kind"`
	Commit    string            `json:"commit,omitempty"`
	Ref       string            `json:"ref,omitempty"`
	Actor     string            `json:"actor,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
	Time      time.Time         `json:"time,omitzero"`
}

// RunID is the run a trigger starts.
func (t Trigger) RunID() string { return events.RunIDForTrigger(t.ID, t.Time.UnixMilli()) }

// ErrUnknownPipeline is returned when a trigger names a pipeline that was
// never applied.
var ErrUnknownPipeline = errors.New("unknown pipeline")

// ErrTriggerTooLarge is returned (wrapped with the sizes) for a trigger over
// events.MaxTriggerBytes.
var ErrTriggerTooLarge = errors.New("trigger too large")

// checkSize refuses an encoded trigger over events.MaxTriggerBytes. The
// schema bounds each field; this bounds their sum, so that the run.requested
// a trigger becomes still fits an event with its definition.
func checkSize(data []byte) error {
	if len(data) > events.MaxTriggerBytes {
		return fmt.Errorf("%w: %w: %d bytes, the limit is %d", schemas.ErrInvalid, ErrTriggerTooLarge, len(data), events.MaxTriggerBytes)
	}
	return nil
}

// Publish validates a trigger and publishes it with its ID as Nats-Msg-Id.
// It returns the run the trigger starts.
func Publish(ctx context.Context, js jetstream.JetStream, v *schemas.Validator, t Trigger) (string, error) {
	if t.Time.IsZero() {
		t.Time = time.Now().UTC()
	}
	t.Time = t.Time.Truncate(time.Millisecond)
	data, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("encode trigger: %w", err)
	}
	if err := checkSize(data); err != nil {
		return "", err
	}
	if err := v.ValidateJSON("trigger", data); err != nil {
		return "", err
	}
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: events.TriggerSubject(t.Pipeline), Data: data}, jetstream.WithMsgID(t.ID))
	if err != nil {
		return "", fmt.Errorf("publish trigger %s: %w", t.ID, err)
	}
	if ack.Duplicate {
		// The first publish's time named the run; read it back.
		m, err := js.Stream(ctx, events.StreamTriggers)
		if err == nil {
			if raw, err := m.GetMsg(ctx, ack.Sequence); err == nil {
				var first Trigger
				if json.Unmarshal(raw.Data, &first) == nil {
					return first.RunID(), nil
				}
			}
		}
	}
	return t.RunID(), nil
}

// Pipelines reads applied definitions from the pipelines bucket.
type Pipelines struct{ KV jetstream.KeyValue }

// Get returns a pipeline's current definition and its revision.
func (p Pipelines) Get(ctx context.Context, name string) (events.Definition, uint64, error) {
	e, err := p.KV.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return events.Definition{}, 0, fmt.Errorf("%w: %q (apply it with `gantry pipeline apply -f FILE`)", ErrUnknownPipeline, name)
	}
	if err != nil {
		return events.Definition{}, 0, fmt.Errorf("read pipeline %s: %w", name, err)
	}
	var d events.Definition
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return events.Definition{}, 0, fmt.Errorf("decode pipeline %s revision %d: %w", name, e.Revision(), err)
	}
	return d, e.Revision(), nil
}

// Put stores a definition and returns its revision.
func (p Pipelines) Put(ctx context.Context, d events.Definition) (uint64, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return 0, fmt.Errorf("encode pipeline %s: %w", d.Name, err)
	}
	rev, err := p.KV.Put(ctx, d.Name, b)
	if err != nil {
		return 0, fmt.Errorf("store pipeline %s: %w", d.Name, err)
	}
	return rev, nil
}

// Triggers consumes GANTRY_TRIGGERS and opens runs.
type Triggers struct {
	Bus       *bus.Bus
	Log       zerolog.Logger
	Validator *schemas.Validator
}

// TriggersDurable is the consumer every source service shares.
const TriggersDurable = "source-triggers"

// poison gives up on a trigger that still fails after about three minutes
// of redeliveries (an unreachable bucket, a log that refuses the append):
// it goes to the dead-letter stream with the last error instead of coming
// back forever.
func (s *Triggers) poison() consume.Poison {
	return consume.Poison{DLQ: s.Bus, Stream: events.StreamTriggers, MaxDeliver: 10, Delay: time.Second, MaxDelay: 30 * time.Second}
}

// Run consumes triggers until ctx ends.
func (s *Triggers) Run(ctx context.Context) error {
	js := s.Bus.JetStream()
	kv, err := js.KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return fmt.Errorf("pipelines bucket: %w", err)
	}
	poison := s.poison()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamTriggers, jetstream.ConsumerConfig{
		Durable: TriggersDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		// Trigger requests only: the decision events beside them
		// (gantry.triggers.<pipeline>.decisions) are records, not requests.
		FilterSubject: events.TriggerRequests,
		MaxDeliver:    poison.ServerMaxDeliver(),
		Description:   "source service: triggers become runs",
	})
	if err != nil {
		return fmt.Errorf("trigger consumer: %w", err)
	}
	pipes := Pipelines{KV: kv}
	cc, err := cons.Consume(consume.AckOrDeadLetter(ctx, s.Log, "trigger", poison,
		func(m jetstream.Msg) error { return s.handle(ctx, pipes, m) }))
	if err != nil {
		return fmt.Errorf("consume triggers: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}

func (s *Triggers) handle(ctx context.Context, pipes Pipelines, m jetstream.Msg) error {
	var seq uint64
	var stamp time.Time
	if meta, err := m.Metadata(); err == nil {
		seq, stamp = meta.Sequence.Stream, meta.Timestamp
	}
	refuse := func(reason error) error {
		s.Log.Warn().Err(reason).Str("subject", m.Subject()).Msg("refused trigger sent to the dead-letter stream")
		return s.Bus.DeadLetter(ctx, events.StreamTriggers, m.Subject(), seq, m.Data(), reason)
	}
	if err := checkSize(m.Data()); err != nil {
		return refuse(err)
	}
	if err := s.Validator.ValidateJSON("trigger", m.Data()); err != nil {
		return refuse(err)
	}
	var t Trigger
	if err := json.Unmarshal(m.Data(), &t); err != nil {
		return refuse(fmt.Errorf("%w: trigger: %w", schemas.ErrInvalid, err))
	}
	if events.TriggerSubject(t.Pipeline) != m.Subject() {
		return refuse(fmt.Errorf("%w: trigger for pipeline %q published on %s", schemas.ErrInvalid, t.Pipeline, m.Subject()))
	}
	def, rev, err := pipes.Get(ctx, t.Pipeline)
	if errors.Is(err, ErrUnknownPipeline) {
		return refuse(err)
	}
	if err != nil {
		return err
	}
	if t.Time.IsZero() {
		// A publisher that gave no time gets the stream's: stable across redeliveries.
		t.Time = stamp.UTC().Truncate(time.Millisecond)
	}
	runID := t.RunID()
	vars := maps.Clone(t.Variables)
	e, err := events.New(events.RunID(runID, "requested"), "/gantry/source", runID, t.Time, events.RunRequested{
		Pipeline: t.Pipeline, Run: runID, Revision: rev, Definition: def, Variables: vars,
		Trigger: events.Trigger{ID: t.ID, Kind: t.Kind, Commit: t.Commit, Ref: t.Ref, Actor: t.Actor},
	})
	if err != nil {
		return err
	}
	empty := uint64(0)
	_, _, err = s.Bus.Append(ctx, t.Pipeline, e, &empty)
	if errors.Is(err, bus.ErrConflict) {
		s.Log.Info().Str("run", runID).Str("trigger", t.ID).Msg("trigger already started its run")
		return nil
	}
	if errors.Is(err, events.ErrInvalidEvent) {
		return refuse(err)
	}
	if err != nil {
		return err
	}
	s.Log.Info().Str("run", runID).Str("pipeline", t.Pipeline).Str("trigger", t.ID).Uint64("revision", rev).Msg("run requested")
	return nil
}
