package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/stack"
	"github.com/gantry-ci/gantry/services/worker"
)

const livePipeline = `name: live
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration:
          repository: app
          branch: main
  - name: Hold
    actions:
      - name: wait
        type: hold
`

// TestLiveRun runs a real pipeline (conductor, projector, triggers and a
// source worker): the run's events arrive over SSE as they happen, the
// source artifact downloads with its digest checked, a live log line of a
// running action arrives over SSE, and a stop through the API records the
// caller and ends the run and the log stream.
func TestLiveRun(t *testing.T) {
	e := newEnv(t, stack.RoleConductor, stack.RoleProjector, stack.RoleTriggers, stack.RoleSource)
	ctx0 := context.Background()
	e.repo("app", map[string]string{"README": "hello\n", "main.go": "package main\n"})
	e.want(e.do("PUT", "/api/v1/pipelines/live", auth.Admin, livePipeline), 200, "apply")
	var doc gateway.PipelineDoc
	e.do("GET", "/api/v1/pipelines/live", auth.Viewer, nil).json(t, &doc)
	if doc.Revision == 0 || len(doc.Definition.Stages) != 2 {
		t.Fatalf("pipeline %+v", doc)
	}
	r := e.do("POST", "/api/v1/pipelines/live/runs", auth.Operator, nil)
	e.want(r, 202, "start")
	var started gateway.Started
	r.json(t, &started)
	id := started.Run
	e.eventually("the run to exist", func() bool { return e.do("GET", "/api/v1/runs/"+id, auth.Viewer, nil).status == 200 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := e.stream(ctx, "/api/v1/runs/"+id+"/events", auth.Viewer, "")
	first := e.next(evs, "run.requested", func(ev sseEvent) bool { return ev.event != ":" })
	if first.event != events.TypeRunRequested || first.id == "" {
		t.Fatalf("first event %+v, want run.requested with an id", first)
	}
	var env events.Envelope
	if err := json.Unmarshal([]byte(first.data), &env); err != nil || env.Type != first.event || env.Subject != id {
		t.Fatalf("data %q is not the CloudEvent (%v)", first.data, err)
	}
	e.next(evs, "the hold action dispatched", func(ev sseEvent) bool {
		return ev.event == events.TypeActionDispatched && strings.Contains(ev.data, `"wait"`)
	})
	e.next(evs, "a keep-alive comment", func(ev sseEvent) bool { return ev.event == ":" })

	// The source artifact: listed, and downloaded with a matching digest.
	var arts []events.ArtifactRef
	e.do("GET", "/api/v1/runs/"+id+"/artifacts", auth.Viewer, nil).json(t, &arts)
	if len(arts) != 1 || arts[0].Name != "source" {
		t.Fatalf("artifacts %+v, want source", arts)
	}
	dl := e.do("GET", "/api/v1/runs/"+id+"/artifacts/source", auth.Viewer, nil)
	e.want(dl, 200, "download")
	sum := sha256.Sum256(dl.body)
	if got := hex.EncodeToString(sum[:]); got != arts[0].SHA256 || dl.header.Get("X-Gantry-SHA256") != got ||
		int64(len(dl.body)) != arts[0].Size || dl.header.Get("Content-Length") != strconv.FormatInt(arts[0].Size, 10) {
		t.Errorf("download: %d bytes sha256 %s, header %s, ref %+v", len(dl.body), got, dl.header.Get("X-Gantry-SHA256"), arts[0])
	}
	e.want(e.do("GET", "/api/v1/runs/"+id+"/artifacts/nope", auth.Viewer, nil), 404, "missing artifact")
	// An object altered in the store is refused, not served.
	obs, err := e.conn.Bus.JetStream().ObjectStore(ctx0, events.BucketArtifacts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx0, arts[0].Key, []byte("not the archive")); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/api/v1/runs/"+id+"/artifacts/source", auth.Viewer, nil); r.status != 500 ||
		!strings.Contains(string(r.body), "digest") || r.header.Get("X-Gantry-SHA256") != "" {
		t.Errorf("altered artifact: %d %s %v", r.status, r.body, r.header)
	}

	// An ended action's log: archived text, and over SSE its lines then end.
	var act gateway.ActionDoc
	e.do("GET", "/api/v1/runs/"+id+"/actions/Source/checkout", auth.Viewer, nil).json(t, &act)
	if act.Phase != run.Succeeded || act.Stage != "Source" || act.Name != "checkout" {
		t.Fatalf("action %+v", act)
	}
	logs := e.do("GET", "/api/v1/runs/"+id+"/actions/Source/checkout/logs", auth.Viewer, nil)
	e.want(logs, 200, "archived log")
	ended := e.stream(ctx, "/api/v1/runs/"+id+"/actions/Source/checkout/logs", auth.Viewer, "")
	e.next(ended, "end of an ended action's log", func(ev sseEvent) bool { return ev.event == "end" })
	e.want(e.do("GET", "/api/v1/runs/"+id+"/actions/Source/nope", auth.Viewer, nil), 404, "missing action")

	// A running action's log, live: a line a worker publishes arrives.
	lines := e.stream(ctx, "/api/v1/runs/"+id+"/actions/Hold/wait/logs", auth.Viewer, "")
	m := &nats.Msg{Subject: events.LogSubject(id, "Hold", "wait"), Data: []byte("still holding"), Header: nats.Header{}}
	m.Header.Set(worker.HeaderPhase, "build")
	e.eventually("a live log line", func() bool {
		if err := e.conn.Bus.Conn().PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-lines:
			return ev.event == "line" && ev.data == "[build] still holding"
		default:
			return false
		}
	})

	// Stop for real: the conductor records the caller; the run ends.
	r = e.do("POST", "/api/v1/runs/"+id+"/stop", auth.Operator, map[string]any{"abandon": true, "reason": "test over"})
	e.want(r, 200, "stop")
	var reply command.Reply
	r.json(t, &reply)
	if reply.Run != id {
		t.Errorf("stop reply %+v", reply)
	}
	stopping := e.next(evs, "run.stopping", func(ev sseEvent) bool { return ev.event == events.TypeRunStopping })
	var se struct {
		Data events.RunStopping `json:"data"`
	}
	if err := json.Unmarshal([]byte(stopping.data), &se); err != nil || se.Data.Actor != "api:operator" || se.Data.Reason != "test over" {
		t.Errorf("run.stopping %s (%v), want actor api:operator", stopping.data, err)
	}
	e.next(lines, "end of the live log", func(ev sseEvent) bool { return ev.event == "end" })
	e.next(evs, "the run to end", func(ev sseEvent) bool { return ev.event == events.TypeRunStopped })
	if r := e.do("POST", "/api/v1/runs/"+id+"/stop", auth.Operator, nil); r.status != 409 {
		t.Errorf("stopping an ended run: %d, want 409", r.status)
	}

	// Resuming after Last-Event-ID starts after that sequence.
	resumed := e.stream(ctx, "/api/v1/runs/"+id+"/events", auth.Viewer, stopping.id)
	after := e.next(resumed, "an event after the resume point", func(ev sseEvent) bool { return ev.event != ":" })
	a, _ := strconv.ParseUint(after.id, 10, 64)
	s, _ := strconv.ParseUint(stopping.id, 10, 64)
	if a <= s {
		t.Errorf("resumed at %s after Last-Event-ID %s", after.id, stopping.id)
	}

	// The JSON form is the whole log as CloudEvents.
	var all []events.Envelope
	e.do("GET", "/api/v1/runs/"+id+"/events", auth.Viewer, nil).json(t, &all)
	if len(all) < 5 || all[0].Type != events.TypeRunRequested {
		t.Errorf("events: %d, first %+v", len(all), all)
	}

	// The gateway stopping ends open streams.
	e.stopGateway()
	if err := <-e.gatewayDone; err != nil {
		t.Errorf("gateway run: %v", err)
	}
	e.gatewayDone <- nil // for the cleanup
	for range resumed {
	}
}
