package chatops_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/chatops"
)

// TestRetrySurvivesARestart: a delivery that failed is retried by the next
// notifier after the first one stopped: the retry is the server's
// redelivery, not a timer in the stopped process.
func TestRetrySurvivesARestart(t *testing.T) {
	slack := newHook(t, 500, 200)
	rules, err := chatops.ParseRules([]byte(`targets: [{name: team, kind: slack, url: "`+slack.srv.URL+`/hook"}]
rules: [{types: [dev.gantry.run.failed], targets: [team]}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	start := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		n := &chatops.Notifier{Bus: natstest.Bus(t, srv.ClientURL()), Rules: rules, Log: zerolog.Nop(),
			Backoff: func(int) time.Duration { return 3 * time.Second }}
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Run(ctx) }()
		return func() { cancel(); wg.Wait() }
	}
	stop := start()
	waitFor(t, "the notifier's consumers", func() bool {
		_, err := b.JetStream().Consumer(context.Background(), events.StreamNotify, chatops.DeliveriesDurable)
		return err == nil
	})
	runID := events.RunIDForTrigger("restart", time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "failed"), "/test", runID, time.Now(), events.RunFailed{Run: runID, Reason: "boom"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(context.Background(), "hello", e, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt", func() bool { bs, _ := slack.requests(); return len(bs) == 1 })
	waitFor(t, "its outcome", func() bool { return len(readOutcomes(t, b.JetStream(), "hello", runID)) == 1 })
	stop()
	if bs, _ := slack.requests(); len(bs) != 1 {
		t.Fatalf("%d attempts before the restart, want 1", len(bs))
	}
	defer start()()
	waitFor(t, "the retry by the second notifier", func() bool {
		for _, e := range readOutcomes(t, b.JetStream(), "hello", runID) {
			if d, ok := e.Payload.(events.NotificationDelivered); ok && d.Attempt == 2 {
				return true
			}
		}
		return false
	})
}
