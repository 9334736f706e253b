package chatops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// Outcomes reads the delivery outcome events of one run's notifications,
// oldest first (what `gantry notify outcomes RUN` prints).
func Outcomes(ctx context.Context, js jetstream.JetStream, codec *events.Codec, pipeline, run string) ([]events.Event, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	subject := events.NotifyOutcomeSubject(pipeline, run)
	c, err := js.OrderedConsumer(ctx, events.StreamNotify, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // no notifier ever ran
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	var out []events.Event
	for pending := info.NumPending; pending > 0; pending-- {
		m, err := c.Next(jetstream.FetchContext(ctx))
		if err != nil {
			return out, fmt.Errorf("read %s: %w", subject, err)
		}
		e, err := codec.Decode(m.Data())
		if err != nil {
			return out, fmt.Errorf("%s: %w", subject, err)
		}
		if meta, err := m.Metadata(); err == nil {
			e.Seq = meta.Sequence.Stream
		}
		out = append(out, e)
	}
	return out, nil
}
