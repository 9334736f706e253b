package consume_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// A message the handler always fails on is delivered MaxDeliver times, then
// dead-lettered once with the error as the reason and not delivered again; a
// permanent failure is dead-lettered on its first delivery.
func TestAckOrDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantCalls int32
	}{
		{"transient", errors.New("server hiccup"), 3},
		{"permanent", consume.Permanent(errors.New("too large")), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := natstest.Bus(t, natstest.Start(t).ClientURL())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			js := b.JetStream()
			s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, "t.x", []byte("poison")); err != nil {
				t.Fatal(err)
			}
			p := consume.Poison{DLQ: b, Stream: "T", MaxDeliver: 3, Delay: 20 * time.Millisecond, MaxDelay: 50 * time.Millisecond}
			cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
				MaxDeliver: p.ServerMaxDeliver()})
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			cc, err := cons.Consume(consume.AckOrDeadLetter(ctx, zerolog.Nop(), "test message", p, func(jetstream.Msg) error {
				calls.Add(1)
				return tc.err
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Stop()
			dlq, err := js.Stream(ctx, events.StreamDLQ)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(ctx, t, "the dead letter", func() bool {
				info, err := dlq.Info(ctx)
				return err == nil && info.State.Msgs == 1
			})
			waitFor(ctx, t, "the consumer to settle", func() bool {
				info, err := cons.Info(ctx)
				return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
			})
			time.Sleep(200 * time.Millisecond) // a missed settle would bring it back
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("handled %d times, want %d", got, tc.wantCalls)
			}
			m, err := dlq.GetLastMsgForSubject(ctx, events.DLQSubject("T"))
			if err != nil {
				t.Fatal(err)
			}
			if r := m.Header.Get(bus.HeaderReason); !strings.Contains(r, tc.err.Error()) || string(m.Data) != "poison" {
				t.Errorf("dead letter reason %q data %q", r, m.Data)
			}
			if info, _ := dlq.Info(ctx); info.State.Msgs != 1 {
				t.Errorf("%d dead letters, want 1", info.State.Msgs)
			}
		})
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
