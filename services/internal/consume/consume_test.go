package consume_test

import (
	"context"
	"errors"
	"fmt"
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
	cc, err := cons.Consume(consume.AckOrRedeliver(ctx, zerolog.Nop(), "test message", 50*time.Millisecond, b, func(jetstream.Msg) error {
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

// A message that fails every time is tried PoisonAfter times, then lands in
// GANTRY_DLQ with its last error and is never delivered again.
func TestPoisonMessageGoesToTheDLQ(t *testing.T) {
	b := natstest.Bus(t, natstest.Start(t).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := b.JetStream()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.poison", []byte("never acceptable")); err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
		MaxDeliver: consume.MaxDeliver})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	cc, err := cons.Consume(consume.AckOrRedeliver(ctx, zerolog.Nop(), "test message", time.Millisecond, b, func(jetstream.Msg) error {
		return fmt.Errorf("attempt %d: bad input", calls.Add(1))
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	dlq, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	var m *jetstream.RawStreamMsg
	for m == nil {
		if m, err = dlq.GetLastMsgForSubject(ctx, events.DLQSubject("T")); err != nil {
			m = nil
			if ctx.Err() != nil {
				t.Fatalf("the poison message never reached the DLQ after %d calls", calls.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := fmt.Sprintf("test message failed %d deliveries, the last with: attempt %d: bad input", consume.PoisonAfter, consume.PoisonAfter)
	if got := m.Header.Get(bus.HeaderReason); got != want || string(m.Data) != "never acceptable" || m.Header.Get(bus.HeaderOrigSubject) != "t.poison" {
		t.Fatalf("DLQ holds %q from %q with reason %q; want reason %q", m.Data, m.Header.Get(bus.HeaderOrigSubject), got, want)
	}
	time.Sleep(200 * time.Millisecond) // a message not terminated would come back
	if n := calls.Load(); n != consume.PoisonAfter {
		t.Fatalf("handled %d times, want %d", n, consume.PoisonAfter)
	}
	if info, err := cons.Info(ctx); err != nil || info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Fatalf("consumer still holds the message: %+v %v", info, err)
	}
}
