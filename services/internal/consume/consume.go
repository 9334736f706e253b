// Package consume holds the services' rule for a consumed message: ack what
// was handled, redeliver what failed, and dead-letter what keeps failing.
package consume

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// PoisonAfter is how many deliveries a message gets before it is poison:
// dead-lettered with its last error and terminated, instead of coming back
// forever (a message no handler can ever accept would otherwise loop at
// full speed). MaxDeliver is what every durable consumer sets: a few more
// than PoisonAfter, so that a dead-letter write that fails is retried
// before the server gives the message up.
const (
	PoisonAfter = 10
	MaxDeliver  = PoisonAfter + 5
)

// DeadLetterer stores a refused message with the reason (bus.Bus does).
type DeadLetterer interface {
	DeadLetter(ctx context.Context, stream, subject string, seq uint64, data []byte, reason error) error
}

// AckOrRedeliver turns handle into a jetstream.MessageHandler: a message
// handle returns nil for is acked; otherwise the failure is logged (unless
// ctx ended: the service is stopping) and the message comes back after
// delay, so a transient failure (a conflict, a server hiccup) is retried
// and nothing is lost; past PoisonAfter deliveries it goes to dlq (Settle).
// what names the message in the log.
func AckOrRedeliver(ctx context.Context, log zerolog.Logger, what string, delay time.Duration, dlq DeadLetterer, handle func(jetstream.Msg) error) jetstream.MessageHandler {
	return func(m jetstream.Msg) {
		Settle(ctx, log, what, delay, dlq, m, handle(m))
	}
}

// Settle applies the rule to a message handled with err: ack on nil; on a
// failure, redeliver after delay, or, when this was delivery PoisonAfter
// or later, dead-letter it with the last error and terminate it.
func Settle(ctx context.Context, log zerolog.Logger, what string, delay time.Duration, dlq DeadLetterer, m jetstream.Msg, err error) {
	if err == nil {
		_ = m.Ack()
		return
	}
	Poison{DLQ: dlq, MaxDeliver: PoisonAfter, Delay: delay, MaxDelay: delay}.Fail(ctx, log, what, m, err)
}

// Poisoned is the rule for consumers that settle messages themselves (a
// task or deploy command held for minutes): a message delivered more than
// PoisonAfter times was never settled by anyone (its holders died or could
// not report), so it is dead-lettered with why and terminated, and
// Poisoned reports true. The caller then drops it.
func Poisoned(ctx context.Context, log zerolog.Logger, dlq DeadLetterer, m jetstream.Msg, why string) bool {
	meta, err := m.Metadata()
	if err != nil || meta.NumDelivered <= PoisonAfter {
		return false
	}
	reason := fmt.Errorf("delivered %d times without being settled: %s", meta.NumDelivered, why)
	if err := dlq.DeadLetter(ctx, meta.Stream, m.Subject(), meta.Sequence.Stream, m.Data(), reason); err != nil {
		log.Error().Err(err).Str("subject", m.Subject()).Msg("poison message could not be dead-lettered; it will be redelivered")
		_ = m.NakWithDelay(time.Second)
		return true
	}
	log.Error().Err(reason).Str("subject", m.Subject()).Msg("poison message sent to the dead-letter stream")
	_ = m.TermWithReason(reason.Error())
	return true
}
