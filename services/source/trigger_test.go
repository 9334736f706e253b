package source_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/source"
)

// TestOversizedTriggers is issue 7's oversized input, end to end against an
// embedded server: a 7 MB trigger (within the server's max_payload) is
// refused by Publish and by the stream itself, so it never reaches the
// consumer; triggers that fit the stream but are invalid, or whose
// run.requested would be too large, are dead-lettered once each with their
// reason; and the trigger consumer settles, with nothing pending or awaiting
// an ack. On the old code the first was published and retried forever.
func TestOversizedTriggers(t *testing.T) {
	b := natstest.Bus(t, natstest.Start(t).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := b.JetStream()
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		t.Fatal(err)
	}
	// A definition of about 600 KB: with a trigger's 400 KB of variables
	// its run.requested is over events.MaxEventBytes.
	cfg := map[string]string{}
	for i := range 9 {
		cfg[fmt.Sprintf("c%d", i)] = strings.Repeat("c", events.MaxConfigurationValue)
	}
	def := events.Definition{Name: "hello", Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
		{Name: "build", Type: "build", Pool: "default", RunOrder: 1, Configuration: cfg}}}}}
	if _, err := (source.Pipelines{KV: kv}).Put(ctx, def); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- (&source.Triggers{Bus: b, Log: zerolog.Nop(), Validator: v}).Run(runCtx) }()
	defer func() { stop(); <-done }()

	// 7 MB: refused before it is sent, with the limit named.
	huge := source.Trigger{ID: "huge", Pipeline: "hello", Kind: "manual", Variables: map[string]string{"X": strings.Repeat("x", 7<<20)}}
	_, err = source.Publish(ctx, js, v, huge)
	if !errors.Is(err, source.ErrTriggerTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(events.MaxTriggerBytes)) {
		t.Fatalf("Publish of a 7 MB trigger: error = %v, want ErrTriggerTooLarge naming the limit", err)
	}
	// The same bytes published by a client that skips the checks: the
	// stream refuses them.
	raw := `{"id":"huge","pipeline":"hello","kind":"manual","variables":{"X":"` + strings.Repeat("x", 7<<20) + `"}}`
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: events.TriggerSubject("hello"), Data: []byte(raw)}); err == nil {
		t.Fatal("the triggers stream accepted a 7 MB message")
	}
	// Too many variables: refused by Publish, and dead-lettered when a
	// client skips the check.
	many := map[string]string{}
	for i := range 101 {
		many[fmt.Sprintf("V%d", i)] = "x"
	}
	if _, err := source.Publish(ctx, js, v, source.Trigger{ID: "many", Pipeline: "hello", Kind: "manual", Variables: many}); !errors.Is(err, schemas.ErrInvalid) || !strings.Contains(err.Error(), "maxProperties") {
		t.Fatalf("Publish with 101 variables: error = %v, want maxProperties", err)
	}
	var b101 strings.Builder
	b101.WriteString(`{"id":"many","pipeline":"hello","kind":"manual","variables":{`)
	for i := range 101 {
		if i > 0 {
			b101.WriteString(",")
		}
		fmt.Fprintf(&b101, `"V%d":"x"`, i)
	}
	b101.WriteString("}}")
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: events.TriggerSubject("hello"), Data: []byte(b101.String())}); err != nil {
		t.Fatal(err)
	}
	// Every field within bounds, but the run.requested would not fit an
	// event: Publish accepts it, the consumer dead-letters it.
	big := map[string]string{}
	for i := range 100 {
		big[fmt.Sprintf("V%d", i)] = strings.Repeat("v", events.MaxVariableValue)
	}
	if _, err := source.Publish(ctx, js, v, source.Trigger{ID: "big", Pipeline: "hello", Kind: "manual", Variables: big}); err != nil {
		t.Fatalf("Publish of a 400 KB trigger: %v", err)
	}

	dlq, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, events.StreamTriggers, source.TriggersDurable)
	if err != nil {
		t.Fatal(err)
	}
	settled := func() bool {
		ci, err := cons.Info(ctx)
		di, derr := dlq.Info(ctx)
		return err == nil && derr == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0 &&
			ci.Delivered.Stream == 2 && di.State.Msgs == 2
	}
	for !settled() {
		select {
		case <-ctx.Done():
			ci, _ := cons.Info(ctx)
			di, _ := dlq.Info(ctx)
			t.Fatalf("trigger consumer did not settle: %+v; dead letters %d", ci, di.State.Msgs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond) // a message left unsettled would come back
	if !settled() {
		t.Fatal("the trigger consumer or the dead-letter stream moved after settling")
	}
	want := map[uint64]string{1: "maxProperties", 2: events.ErrTooLarge.Error()}
	for seq, text := range want {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if r := m.Header.Get(bus.HeaderReason); !strings.Contains(r, text) {
			t.Errorf("dead letter %d: reason %q does not contain %q", seq, r, text)
		}
	}
	ev, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := ev.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("event log holds %d events (err %v), want none", info.State.Msgs, err)
	}
}
