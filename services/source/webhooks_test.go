package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/source"
)

// stack is an embedded server with the trigger intake and a conductor
// running, so a published trigger becomes a started run.
type stack struct {
	b   *bus.Bus
	v   *schemas.Validator
	kv  jetstream.KeyValue
	dec *source.Decider
}

func startStack(t *testing.T, ctx context.Context, defs ...events.Definition) *stack {
	t.Helper()
	b := natstest.Bus(t, natstest.Start(t).ClientURL())
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		if _, err := (source.Pipelines{KV: kv}).Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	cd, err := conductor.New(conductor.Options{Bus: b, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- (&source.Triggers{Bus: b, Log: zerolog.Nop(), Validator: v}).Run(runCtx) }()
	go func() { done <- cd.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done; <-done })
	return &stack{b: b, v: v, kv: kv, dec: &source.Decider{Bus: b, Validator: v}}
}

// runsOf counts the runs of a pipeline in the log.
func (s *stack) runsOf(t *testing.T, ctx context.Context, pipeline string) int {
	t.Helper()
	ids, err := s.b.RunIDs(ctx, pipeline)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// waitStarted polls until the run has a run.started event.
func (s *stack) waitStarted(t *testing.T, ctx context.Context, pipeline, run string) {
	t.Helper()
	for {
		evs, err := s.b.ReadRun(ctx, pipeline, run, 0)
		if err == nil {
			for _, e := range evs {
				if e.Type == events.TypeRunStarted {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run %s of %s did not start (events %d, err %v)", run, pipeline, len(evs), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func triggerCount(t *testing.T, ctx context.Context, b *bus.Bus) uint64 {
	t.Helper()
	st, err := b.JetStream().Stream(ctx, events.StreamTriggers)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sourceStage(repo string) []events.StageDef {
	return []events.StageDef{{Name: "Source", Actions: []events.ActionDef{{Name: "checkout", Type: "source", Pool: "default",
		RunOrder: 1, Outputs: []string{"source"}, Configuration: map[string]string{"repository": repo}}}}}
}

// TestWebhookStartsOneRun is the end-to-end path: a signed GitHub push
// (the documented payload) posted to a running source service starts a run
// of the pipeline whose trigger accepts it, records a filtered event for the
// one whose filter refuses it, and ignores a pipeline without triggers; the
// same delivery redelivered starts no second run; a forged one is refused
// with 401 and publishes nothing.
func TestWebhookStartsOneRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hello := events.Definition{Name: "hello", Stages: sourceStage("https://github.com/Codertocat/Hello-World.git"),
		Triggers: []events.TriggerDef{{Repository: "codertocat/hello-world", Branches: &events.GlobFilter{Includes: []string{"main"}},
			FilePaths: &events.GlobFilter{Includes: []string{"src/**"}}}}}
	docs := events.Definition{Name: "docs", Stages: sourceStage("https://github.com/Codertocat/Hello-World.git"),
		Triggers: []events.TriggerDef{{Repository: "github.com/Codertocat/Hello-World", Branches: &events.GlobFilter{Includes: []string{"docs/**"}}}}}
	other := events.Definition{Name: "other", Stages: sourceStage("repos/other")}
	s := startStack(t, ctx, hello, docs, other)

	secret := "It's a Secret to Everybody"
	hooks := &source.Webhooks{Decider: s.dec, Log: zerolog.Nop(),
		Secrets: source.WebhookSecrets{source.ForgeGitHub: {"codertocat/hello-world": secret}}}
	addr := make(chan net.Addr, 1)
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- hooks.Serve(srvCtx, "127.0.0.1:0", func(a net.Addr) { addr <- a }) }()
	defer func() { stopSrv(); <-served }()
	url := "http://" + (<-addr).String() + "/webhooks/github"

	body := readFixture(t, "github/push.json")
	post := func(delivery, sig string) (int, source.Reply) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep source.Reply
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			t.Fatalf("reply: %v", err)
		}
		return resp.StatusCode, rep
	}

	// Forged first: nothing may be published.
	if code, rep := post("f0rged", source.Sign([]byte("not the secret"), body)); code != http.StatusUnauthorized {
		t.Fatalf("forged delivery: status %d (%+v), want 401", code, rep)
	}
	if code, _ := post("unsigned", ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned delivery: status %d, want 401", code)
	}
	if n := triggerCount(t, ctx, s.b); n != 0 {
		t.Fatalf("refused deliveries published %d messages", n)
	}

	code, rep := post("72d3162e-cc78-11e3-81ab-4c9367dc0958", source.Sign([]byte(secret), body))
	if code != http.StatusAccepted || len(rep.Outcomes) != 2 {
		t.Fatalf("signed push: status %d, reply %+v; want 202 with outcomes for hello and docs", code, rep)
	}
	byName := map[string]source.Outcome{}
	for _, o := range rep.Outcomes {
		byName[o.Pipeline] = o
	}
	acc, fil := byName["hello"], byName["docs"]
	if !acc.Accepted || acc.Run == "" || !strings.Contains(acc.Reason, `"src/hello.c" matches include "src/**"`) {
		t.Errorf("hello: %+v, want accepted with a run, for src/hello.c", acc)
	}
	if fil.Accepted || fil.Run != "" || !strings.Contains(fil.Reason, `branch "main" matches no include of "docs/**"`) {
		t.Errorf("docs: %+v, want filtered for its branch", fil)
	}
	s.waitStarted(t, ctx, "hello", acc.Run)

	// Redelivered (GitHub's "Redeliver" keeps the delivery ID; a second
	// hook on the same repository sends another): the same run, no second.
	for _, id := range []string{"72d3162e-cc78-11e3-81ab-4c9367dc0958", "second-hook-delivery"} {
		code, again := post(id, source.Sign([]byte(secret), body))
		if code != http.StatusAccepted {
			t.Fatalf("redelivery %s: status %d", id, code)
		}
		for _, o := range again.Outcomes {
			if o.Pipeline == "hello" && o.Run != acc.Run {
				t.Errorf("redelivery %s named run %s, want %s", id, o.Run, acc.Run)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // a second run would be requested by now
	if n := s.runsOf(t, ctx, "hello"); n != 1 {
		t.Errorf("hello has %d runs, want 1", n)
	}
	if n := s.runsOf(t, ctx, "docs") + s.runsOf(t, ctx, "other"); n != 0 {
		t.Errorf("docs and other have %d runs, want none", n)
	}
	// Each decision is recorded once, saying why.
	for name, want := range map[string]string{"hello": events.TypeTriggerAccepted, "docs": events.TypeTriggerFiltered} {
		evs, err := source.ReadDecisions(ctx, s.b, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Type != want {
			t.Fatalf("%s decisions: %d events %v, want one %s", name, len(evs), evs, want)
		}
		switch p := evs[0].Payload.(type) {
		case events.TriggerAccepted:
			if p.Run != acc.Run || p.Change.Delivery != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || p.Change.Files != 2 {
				t.Errorf("accepted event %+v", p)
			}
		case events.TriggerFiltered:
			if p.Reason != fil.Reason || p.Change.Forge != "github" {
				t.Errorf("filtered event %+v", p)
			}
		}
	}
	// Following every pipeline's decisions sees both.
	var seen []string
	if err := source.WatchDecisions(ctx, s.b, "", func(e events.Event) bool {
		seen = append(seen, e.Type)
		return len(seen) < 2
	}); err != nil || len(seen) != 2 {
		t.Fatalf("WatchDecisions: %v, %v; want both decisions", seen, err)
	}
	evs, err := s.b.ReadRun(ctx, "hello", acc.Run, 0)
	if err != nil {
		t.Fatal(err)
	}
	req, ok := evs[0].Payload.(events.RunRequested)
	if !ok || req.Trigger.Kind != "webhook" || req.Trigger.Commit != "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c" || req.Trigger.Ref != "refs/heads/main" {
		t.Errorf("run.requested %+v, want the pushed commit and ref", evs[0].Payload)
	}
}
