// Package consume holds the services' rule for a consumed message.
package consume

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// AckOrRedeliver turns handle into a jetstream.MessageHandler: a message
// handle returns nil for is acked; otherwise the failure is logged (unless
// ctx ended: the service is stopping) and the message comes back after
// delay, so a transient failure (a conflict, a server hiccup) is retried
// and nothing is lost. what names the message in the log.
func AckOrRedeliver(ctx context.Context, log zerolog.Logger, what string, delay time.Duration, handle func(jetstream.Msg) error) jetstream.MessageHandler {
	return func(m jetstream.Msg) {
		if err := handle(m); err != nil {
			if ctx.Err() == nil {
				log.Warn().Err(err).Str("subject", m.Subject()).Msg(what + " not handled; it will be redelivered")
			}
			_ = m.NakWithDelay(delay)
			return
		}
		_ = m.Ack()
	}
}
