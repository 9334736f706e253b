package access_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/chatops"
)

// TestNotifierUserIsConfined: against the real permission set, the
// notifier's user runs the notification service (its consumers, its
// stream, a delivery and its outcome event) and can neither append to a
// run, start one, nor send a command.
func TestNotifierUserIsConfined(t *testing.T) {
	if access.NotifierEventsDurable != chatops.EventsDurable || access.NotifierDeliveriesDurable != chatops.DeliveriesDurable {
		t.Fatal("access's notifier durable names differ from services/chatops'")
	}
	s := startServer(t)
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(hook.Close)
	rules, err := chatops.ParseRules([]byte(`targets: [{name: ce, kind: cloudevents, url: "`+hook.URL+`"}]
rules: [{types: ["dev.gantry.run.*"], targets: [ce]}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &chatops.Notifier{Bus: s.open(access.Notifier, false).Bus, Rules: rules, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	errc := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); errc <- n.Run(ctx) }()
	admin := s.open(access.Admin, false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := admin.Bus.JetStream().Consumer(ctx, events.StreamNotify, chatops.DeliveriesDurable); err == nil {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("notifier as %s: %v", access.Notifier, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the notifier never made its consumers")
		}
		time.Sleep(20 * time.Millisecond)
	}
	runID := events.RunIDForTrigger("confined", time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "started"), "/test", runID, time.Now(), events.RunStarted{Run: runID})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.open(access.Conductor, false).Bus.Append(ctx, "hello", e, nil); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := admin.Bus.JetStream().Stream(ctx, events.StreamNotify)
		if err == nil {
			if info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.NotifyOutcomeSubject("hello", runID))); err == nil && info.State.Subjects[events.NotifyOutcomeSubject("hello", runID)] == 1 && hits.Load() == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery outcome recorded (hook hit %d times)", hits.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := s.client(access.Notifier)
	c.cannotPublish(events.RunSubject("hello", runID))
	c.cannotPublish(events.TriggerSubject("hello"))
	c.cannotPublish(events.CmdSubject("approve"))
	c.cannotPublish("$JS.API.CONSUMER.MSG.NEXT." + events.StreamEvents + ".projector")
	c.cannotPublish("$JS.API.DIRECT.GET." + events.StreamEvents)
	c.cannotPublish("$KV.pipelines.hello")
}
