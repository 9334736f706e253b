package chatops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/chatops"
)

// hook is an HTTP server standing in for Slack or a webhook receiver: it
// answers the statuses in turn (the last one forever) and keeps every request.
type hook struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	ctypes   []string
	srv      *httptest.Server
}

func newHook(t *testing.T, statuses ...int) *hook {
	h := &hook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		n := len(h.bodies)
		h.bodies = append(h.bodies, b)
		h.ctypes = append(h.ctypes, r.Header.Get("Content-Type"))
		code := h.statuses[min(n, len(h.statuses)-1)]
		h.mu.Unlock()
		w.WriteHeader(code)
		_, _ = w.Write([]byte(http.StatusText(code)))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) requests() ([][]byte, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.bodies...), append([]string(nil), h.ctypes...)
}

// syncBuffer is a log sink safe for the notifier's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The secret part of a Slack webhook URL is its path.
const secretPath = "/services/T000/B000/s3cr3tXXXX"

func TestNotifications(t *testing.T) {
	slack := newHook(t, 500, 200)
	ce := newHook(t, 202)
	broken := newHook(t, 503)
	refused := newHook(t, 404)
	rulesDoc := `baseURL: http://gantry.test:8080
targets:
  - {name: team-slack, kind: slack, urlEnv: SLACK_HOOK}
  - {name: audit, kind: cloudevents, url: "` + ce.srv.URL + `/events"}
  - {name: broken, kind: slack, url: "` + broken.srv.URL + secretPath + `"}
  - {name: gone, kind: cloudevents, url: "` + refused.srv.URL + secretPath + `"}
rules:
  - pipelines: [hello]
    types: [dev.gantry.run.failed, dev.gantry.run.succeeded]
    targets: [team-slack, audit]
  - pipelines: ["hel*"]
    types: ["dev.gantry.run.*"]
    targets: [broken, gone, team-slack]
  - pipelines: [other]
    types: ["dev.gantry.*"]
    targets: [audit]
`
	rules, err := chatops.ParseRules([]byte(rulesDoc), func(k string) (string, bool) {
		if k == "SLACK_HOOK" {
			return slack.srv.URL + secretPath, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	n := &chatops.Notifier{Bus: natstest.Bus(t, srv.ClientURL()), Rules: rules, Log: zerolog.New(logs),
		MaxAttempts: 3, Backoff: func(int) time.Duration { return 50 * time.Millisecond }}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := n.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("notifier: %v", err)
		}
	}()
	waitFor(t, "the notifier's consumer", func() bool {
		_, err := b.JetStream().Consumer(ctx, events.StreamEvents, chatops.EventsDurable)
		return err == nil
	})

	runID := events.RunIDForTrigger("notify-test", time.Now().UnixMilli())
	for _, p := range []events.Payload{
		events.RunStarted{Run: runID}, // matches only the second rule
		events.RunFailed{Run: runID, Stage: "Build", Reason: "action compile failed: exit status 2\nmore"},
	} {
		e, err := events.New(events.RunID(runID, strings.TrimPrefix(p.EventType(), "dev.gantry.run.")), "/test", runID, time.Now(), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Append(ctx, "hello", e, nil); err != nil {
			t.Fatal(err)
		}
	}

	// Slack: run.started (500, then 200) and run.failed: one message each
	// delivered, the first after a retry. Order between the two is free.
	waitFor(t, "slack deliveries", func() bool { bs, _ := slack.requests(); return len(bs) >= 3 })
	bodies, ctypes := slack.requests()
	var failedMsg chatops.WebhookMessage
	for i, raw := range bodies {
		var m chatops.WebhookMessage
		if err := json.Unmarshal(raw, &m); err != nil || ctypes[i] != "application/json" {
			t.Fatalf("slack got %q (%s): %v", raw, ctypes[i], err)
		}
		if strings.Contains(m.Text, "failed in stage Build") {
			failedMsg = m
		}
	}
	link := "<http://gantry.test:8080/runs/" + runID + "|" + runID + ">"
	if want := ":x: *hello* run " + link + ": failed in stage Build\n> action compile failed: exit status 2"; failedMsg.Text != want {
		t.Errorf("slack message\n got %q\nwant %q", failedMsg.Text, want)
	}
	if len(failedMsg.Blocks) != 1 || failedMsg.Blocks[0].Text.Type != "mrkdwn" || failedMsg.Blocks[0].Text.Text != failedMsg.Text {
		t.Errorf("slack blocks %+v", failedMsg.Blocks)
	}

	// CloudEvents: only run.failed, as the log holds it, in structured mode.
	waitFor(t, "the cloudevent", func() bool { bs, _ := ce.requests(); return len(bs) >= 1 })
	ceBodies, ceTypes := ce.requests()
	var env events.Envelope
	if err := json.Unmarshal(ceBodies[0], &env); err != nil {
		t.Fatal(err)
	}
	if ceTypes[0] != "application/cloudevents+json" || env.Type != events.TypeRunFailed || env.ID != events.RunID(runID, "failed") ||
		env.SpecVersion != "1.0" || env.Subject != runID {
		t.Errorf("cloudevent %s: %+v", ceTypes[0], env)
	}

	// The outcomes: every attempt is an event on the run's outcome subject.
	type key struct {
		target, event string
		attempt       int
	}
	outcomes := map[key]events.Payload{}
	waitFor(t, "the outcome events", func() bool {
		for _, e := range readOutcomes(t, b.JetStream(), "hello", runID) {
			switch p := e.Payload.(type) {
			case events.NotificationDelivered:
				outcomes[key{p.Target, p.OfType, p.Attempt}] = p
			case events.NotificationFailed:
				outcomes[key{p.Target, p.OfType, p.Attempt}] = p
			}
		}
		_, done := outcomes[key{"broken", events.TypeRunFailed, 3}]
		_, done2 := outcomes[key{"broken", events.TypeRunStarted, 3}]
		// 6 per event: broken 3, gone 1, team-slack 1 or 2, audit 1 (failed only).
		return done && done2 && len(outcomes) >= 12
	})
	// team-slack: one 500 then delivered, for whichever event came first.
	var retried int
	for _, typ := range []string{events.TypeRunStarted, events.TypeRunFailed} {
		if f, ok := outcomes[key{"team-slack", typ, 1}].(events.NotificationFailed); ok {
			retried++
			if f.StatusCode != 500 || !f.Retry || f.Kind != chatops.KindSlack {
				t.Errorf("first attempt: %+v", f)
			}
			if d, ok := outcomes[key{"team-slack", typ, 2}].(events.NotificationDelivered); !ok || d.StatusCode != 200 {
				t.Errorf("after the 500: %#v", outcomes[key{"team-slack", typ, 2}])
			}
		} else if d, ok := outcomes[key{"team-slack", typ, 1}].(events.NotificationDelivered); !ok || d.StatusCode != 200 {
			t.Errorf("team-slack %s: %#v", typ, outcomes[key{"team-slack", typ, 1}])
		}
	}
	if retried != 1 {
		t.Errorf("%d slack deliveries were retried, want 1", retried)
	}
	if d, ok := outcomes[key{"audit", events.TypeRunFailed, 1}].(events.NotificationDelivered); !ok || d.StatusCode != 202 || d.Kind != chatops.KindCloudEvents {
		t.Errorf("audit: %#v", outcomes[key{"audit", events.TypeRunFailed, 1}])
	}
	if _, ok := outcomes[key{"audit", events.TypeRunStarted, 1}]; ok {
		t.Error("run.started went to audit, which no rule sends it to")
	}
	// broken: 503 three times, the last final.
	for i, wantRetry := range []bool{true, true, false} {
		f, ok := outcomes[key{"broken", events.TypeRunFailed, i + 1}].(events.NotificationFailed)
		if !ok || f.StatusCode != 503 || f.Retry != wantRetry {
			t.Errorf("broken attempt %d: %#v", i+1, outcomes[key{"broken", events.TypeRunFailed, i + 1}])
		}
	}
	if _, ok := outcomes[key{"broken", events.TypeRunFailed, 4}]; ok {
		t.Error("a fourth attempt past MaxAttempts 3")
	}
	// gone: a 404 is final at once.
	if f, ok := outcomes[key{"gone", events.TypeRunFailed, 1}].(events.NotificationFailed); !ok || f.StatusCode != 404 || f.Retry {
		t.Errorf("gone: %#v", outcomes[key{"gone", events.TypeRunFailed, 1}])
	}
	if _, ok := outcomes[key{"gone", events.TypeRunFailed, 2}]; ok {
		t.Error("a 404 was retried")
	}
	if bs, _ := refused.requests(); len(bs) != 2 {
		t.Errorf("the 404 target got %d requests, want 2 (one per event)", len(bs))
	}

	// The log has the outcomes too, and no webhook URL in clear anywhere.
	out := logs.String()
	for _, want := range []string{`"message":"notification delivered"`, `"message":"notification failed"`, `"target":"team-slack"`, `"run":"` + runID} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	for _, e := range readOutcomes(t, b.JetStream(), "hello", runID) {
		if strings.Contains(string(e.Data), "s3cr3t") {
			t.Errorf("outcome event shows the webhook URL: %s", e.Data)
		}
	}
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("log shows the webhook URL:\n%s", out)
	}
}

func readOutcomes(t *testing.T, js jetstream.JetStream, pipeline, runID string) []events.Event {
	t.Helper()
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	out, err := chatops.Outcomes(context.Background(), js, codec, pipeline, runID)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestParseRulesRefuses(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	for doc, want := range map[string]string{
		"targets: [{name: a, kind: email, url: 'https://x'}]":          `targets[0].kind: "email"`,
		"targets: [{name: a, kind: slack}]":                            "targets[0]: give exactly one of url, urlEnv, urlFile",
		"targets: [{name: a, kind: slack, urlEnv: NOPE}]":              "targets[0].urlEnv: environment variable NOPE is not set",
		"targets: [{name: a, kind: slack, url: 'ftp://h/secret'}]":     "ftp://h/***",
		"targets: [{name: 'a b', kind: slack, url: 'https://x'}]":      `targets[0].name "a b"`,
		"rules: [{types: [dev.gantry.run.failed], targets: [nobody]}]": `rules[0].targets[0]: no target named "nobody"`,
		"rules: [{targets: []}]":                                       "rules[0].types: name at least one event type",
		"rules: [{types: ['[bad'], targets: []}]":                      `rules[0].types[0]: bad glob "[bad"`,
		"rules: [{types: [build.finished], targets: []}]":              `"build.finished" is not a Gantry event type`,
		"baseURL: gantry.example.com":                                  `baseURL "gantry.example.com"`,
		"channels: []":                                                 "unknown field",
	} {
		_, err := chatops.ParseRules([]byte(doc), env)
		if err == nil || !errors.Is(err, chatops.ErrBadRules) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %q", doc, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error shows the URL: %v", doc, err)
		}
	}
}

func TestRulesMatch(t *testing.T) {
	r, err := chatops.ParseRules([]byte(`targets:
  - {name: a, kind: slack, url: "https://hooks.example.com/a"}
  - {name: b, kind: cloudevents, url: "https://ce.example.com/b"}
rules:
  - {types: [dev.gantry.run.failed], targets: [a]}
  - {pipelines: ["web-*"], types: ["dev.gantry.stage.*", dev.gantry.run.failed], targets: [b, a]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(ts []chatops.Target) string {
		var s []string
		for _, t := range ts {
			s = append(s, t.Name)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct{ pipeline, typ, want string }{
		{"hello", events.TypeRunFailed, "a"},
		{"web-shop", events.TypeRunFailed, "a,b"},
		{"web-shop", events.TypeStageFailed, "b,a"},
		{"hello", events.TypeStageFailed, ""},
		{"web-shop", events.TypeRunSucceeded, ""},
	} {
		if got := names(r.Match(tc.pipeline, tc.typ)); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.pipeline, tc.typ, got, tc.want)
		}
	}
	if got := chatops.MaskURL("https://hooks.slack.com/services/T0/B0/XYZ?x=1"); got != "https://hooks.slack.com/***" {
		t.Errorf("MaskURL: %s", got)
	}
}
