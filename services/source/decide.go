package source

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/triggerfilter"
)

// Outcome is what one change did to one pipeline.
type Outcome struct {
	Pipeline string `json:"pipeline"`
	Accepted bool   `json:"accepted"`
	Trigger  string `json:"trigger"`
	Run      string `json:"run,omitempty"`
	Reason   string `json:"reason"`
}

// Decider holds changes against pipelines' triggers, publishes a trigger
// for each accepted one and a decision event for each either way. It is
// shared by the webhook receiver and the poller.
type Decider struct {
	Bus       *bus.Bus
	Validator *schemas.Validator
	// Now stamps decision events; time.Now when nil.
	Now func() time.Time
}

// Decide holds a change against one pipeline's triggers. t is the trigger
// to publish if the change is accepted (its ID names the decision too).
func (d *Decider) Decide(ctx context.Context, def events.Definition, seen events.TriggerChange, c triggerfilter.Change, t Trigger) (Outcome, error) {
	dec := triggerfilter.Decide(def.Triggers, c)
	out := Outcome{Pipeline: def.Name, Accepted: dec.Accepted, Trigger: t.ID, Reason: events.TruncateReason(dec.Reason)}
	var p events.Payload = events.TriggerFiltered{Pipeline: def.Name, Trigger: t.ID, Change: seen, Reason: out.Reason}
	outcome, subject := "filtered", t.ID
	if dec.Accepted {
		run, err := Publish(ctx, d.Bus.JetStream(), d.Validator, t)
		if err != nil {
			return Outcome{}, err
		}
		out.Run = run
		p = events.TriggerAccepted{Pipeline: def.Name, Trigger: t.ID, Run: run, Change: seen, Reason: out.Reason}
		outcome, subject = "accepted", run
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	e, err := events.New(events.TriggerDecisionID(def.Name, t.ID, outcome), "/gantry/source", subject, now().UTC(), p)
	if err != nil {
		return Outcome{}, err
	}
	data, err := d.Bus.Codec().Encode(e)
	if err != nil {
		return Outcome{}, err
	}
	msg := &nats.Msg{Subject: events.TriggerDecisionSubject(def.Name), Data: data, Header: nats.Header{}}
	msg.Header.Set(bus.HeaderType, e.Type)
	if _, err := d.Bus.JetStream().PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID)); err != nil {
		return Outcome{}, fmt.Errorf("publish %s: %w", e.ID, err)
	}
	return out, nil
}

// ReadDecisions returns the trigger decisions of a pipeline, oldest first,
// at most limit of the newest (0: all).
func ReadDecisions(ctx context.Context, b *bus.Bus, pipeline string, limit int) ([]events.Event, error) {
	js := b.JetStream()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.TriggerDecisionSubject(pipeline)}}
	s, err := js.Stream(ctx, events.StreamTriggers)
	if err != nil {
		return nil, fmt.Errorf("triggers stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.TriggerDecisionSubject(pipeline)))
	if err != nil {
		return nil, fmt.Errorf("triggers stream: %w", err)
	}
	total := info.State.Subjects[events.TriggerDecisionSubject(pipeline)]
	if total == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", pipeline, err)
	}
	var out []events.Event
	for uint64(len(out)) < total {
		batch, err := cons.Fetch(int(min(total-uint64(len(out)), 256)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read decisions of %s: %w", pipeline, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			e, err := b.Codec().Decode(m.Data())
			if err != nil {
				continue // not ours to judge here; the reader shows what decodes
			}
			out = append(out, e)
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("read decisions of %s: %w", pipeline, err)
		}
		if n == 0 {
			break
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// WatchDecisions calls fn with the trigger decisions of a pipeline ("" for
// every pipeline), from the first kept, then as they come, until ctx ends
// or fn returns false.
func WatchDecisions(ctx context.Context, b *bus.Bus, pipeline string, fn func(events.Event) bool) error {
	filter := events.TriggerDecisionSubject(pipeline)
	if pipeline == "" {
		filter = events.TriggerDecisionSubject("*")
	}
	s, err := b.JetStream().Stream(ctx, events.StreamTriggers)
	if err != nil {
		return fmt.Errorf("triggers stream: %w", err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("watch decisions: %w", err)
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(64, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch decisions: %w", err)
		}
		for m := range batch.Messages() {
			e, err := b.Codec().Decode(m.Data())
			if err != nil {
				continue
			}
			if !fn(e) {
				return nil
			}
		}
	}
	return nil
}
