package consume_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// A failing handler's message comes back after the delay; once handled
// it is acked and not delivered again.
func TestAckOrRedeliver(t *testing.T) {
	b := natstest.Bus(t, natstest.Start(t).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := b.JetStream()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("m")); err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	done := make(chan struct{})
	cc, err := cons.Consume(consume.AckOrRedeliver(ctx, zerolog.Nop(), "test message", 50*time.Millisecond, func(jetstream.Msg) error {
		if calls.Add(1) == 1 {
			return errors.New("transient")
		}
		close(done)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the failed message was not redelivered")
	}
	time.Sleep(300 * time.Millisecond) // a missing ack would bring it back
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("%d calls, %d awaiting ack, %d pending; want 2, 0, 0", calls.Load(), info.NumAckPending, info.NumPending)
	}
}
