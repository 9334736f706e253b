package consume

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// ErrPermanent marks a failure that no redelivery can cure (the message is
// too large, or malformed in a way the handler found late): Poison
// dead-letters it on the first delivery.
var ErrPermanent = errors.New("permanent failure")

// Permanent marks err as permanent (errors.Is(err, ErrPermanent)).
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Poison is the poison queue of one consumer: a message its handler keeps
// failing on goes to the dead-letter stream with the last error as the
// reason, instead of coming back forever (issue 7: an oversized trigger
// kept two services at 100 % CPU).
type Poison struct {
	// DLQ stores the dead letters.
	DLQ DeadLetterer
	// Stream the consumer reads, recorded with each dead letter; empty
	// means the stream the message's metadata names.
	Stream string
	// MaxDeliver is the delivery on which a still failing message is given
	// up. The consumer's own MaxDeliver must be higher (ServerMaxDeliver),
	// so that a dead letter that could not be stored is tried again.
	MaxDeliver int
	// Delay is the first redelivery delay; it doubles with each delivery,
	// up to MaxDelay.
	Delay, MaxDelay time.Duration
}

// ServerMaxDeliver is the MaxDeliver to give the consumer: a few deliveries
// past p.MaxDeliver, so that the server itself stops redelivering should
// the dead-letter stream be unreachable for that long.
func (p Poison) ServerMaxDeliver() int { return p.MaxDeliver + 3 }

// Fail settles a message its handler failed on with err: redelivered after
// a growing delay, or, when err is Permanent or this was delivery
// MaxDeliver or later, dead-lettered and terminated. what names the message
// in the log.
func (p Poison) Fail(ctx context.Context, log zerolog.Logger, what string, m jetstream.Msg, err error) {
	n, seq, stream := 1, uint64(0), p.Stream
	if meta, merr := m.Metadata(); merr == nil {
		n, seq = int(meta.NumDelivered), meta.Sequence.Stream
		if stream == "" {
			stream = meta.Stream
		}
	}
	if !errors.Is(err, ErrPermanent) && n < p.MaxDeliver {
		if ctx.Err() == nil {
			log.Warn().Err(err).Str("subject", m.Subject()).Int("delivery", n).Msg(what + " not handled; it will be redelivered")
		}
		_ = m.NakWithDelay(p.delay(n))
		return
	}
	if ctx.Err() != nil {
		_ = m.Nak() // stopping: whoever takes over decides
		return
	}
	reason := fmt.Errorf("%s failed %d deliveries, the last with: %w", what, n, err)
	if errors.Is(err, ErrPermanent) {
		reason = fmt.Errorf("%s refused on delivery %d: %w", what, n, err)
	}
	if dlErr := p.DLQ.DeadLetter(ctx, stream, m.Subject(), seq, m.Data(), reason); dlErr != nil {
		log.Error().Err(dlErr).AnErr("reason", err).Str("subject", m.Subject()).Msg(what + " could not be dead-lettered; it will be redelivered")
		_ = m.NakWithDelay(p.delay(n))
		return
	}
	log.Warn().Err(err).Str("subject", m.Subject()).Int("delivery", n).Msg(what + " sent to the dead-letter stream")
	_ = m.Term()
}

func (p Poison) delay(n int) time.Duration {
	d := p.Delay
	for i := 1; i < n && (p.MaxDelay == 0 || d < p.MaxDelay); i++ {
		d *= 2
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		d = p.MaxDelay
	}
	return d
}

// AckOrDeadLetter is AckOrRedeliver with the poison queue p: a message
// handle returns nil for is acked, a failed one is settled by p.Fail.
func AckOrDeadLetter(ctx context.Context, log zerolog.Logger, what string, p Poison, handle func(jetstream.Msg) error) jetstream.MessageHandler {
	return func(m jetstream.Msg) {
		if err := handle(m); err != nil {
			p.Fail(ctx, log, what, m, err)
			return
		}
		_ = m.Ack()
	}
}
