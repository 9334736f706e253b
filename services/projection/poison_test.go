package projection_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/projection"
)

// An event whose projection cannot be written because it is too large (here:
// a runs bucket with a tiny maximum value size) is dead-lettered once with
// the reason, and the projector's consumer settles; before, it was
// redelivered every 250 ms forever.
func TestProjectorDeadLettersWhatItCannotWrite(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: events.BucketRuns, MaxValueSize: 64}); err != nil {
		t.Fatal(err)
	}
	b := natstest.Bus(t, srv.ClientURL()) // provisions the rest
	def := events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "one", Actions: []events.ActionDef{{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}}}}}
	id := events.RunIDForTrigger("t", time.Now().UnixMilli())
	e, err := events.New(events.RunID(id, "requested"), "/test", id, time.Now(), events.RunRequested{
		Pipeline: "p", Run: id, Definition: def, Trigger: events.Trigger{ID: id, Kind: "api"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(ctx, "p", e, nil); err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	p := &projection.Projector{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()}
	wg.Go(func() { _ = p.Run(pctx) })

	dlq, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	var cons jetstream.Consumer
	settled := func() bool {
		if cons == nil {
			if cons, err = js.Consumer(ctx, events.StreamEvents, projection.Durable); err != nil {
				cons = nil
				return false
			}
		}
		ci, err := cons.Info(ctx)
		di, derr := dlq.Info(ctx)
		return err == nil && derr == nil && ci.Delivered.Stream == 1 && ci.NumAckPending == 0 && ci.NumPending == 0 &&
			ci.NumRedelivered == 0 && di.State.Msgs == 1
	}
	for !settled() {
		select {
		case <-ctx.Done():
			t.Fatal("the projector did not dead-letter the event")
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond)
	if !settled() {
		t.Fatal("the projector's consumer or the dead-letter stream moved after settling")
	}
	m, err := dlq.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Header.Get(bus.HeaderReason); !strings.Contains(r, "write projection of "+id) || m.Header.Get(bus.HeaderOrigStream) != events.StreamEvents {
		t.Errorf("dead letter reason %q, stream %q", r, m.Header.Get(bus.HeaderOrigStream))
	}
}
