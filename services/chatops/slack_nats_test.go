package chatops_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/chatops"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/source"
)

// TestSlashCommandsOnTheBus runs run, status and rollback for real (the
// trigger intake running) and approve against a stub responder on
// gantry.cmd.approve standing in for the conductor.
func TestSlashCommandsOnTheBus(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	v, err := schemas.New()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		t.Fatal(err)
	}
	def := events.Definition{Name: "hello", Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
		{Name: "compile", Type: "noop", Pool: "default", RunOrder: 1}}}}}
	if _, err := (source.Pipelines{KV: kv}).Put(ctx, def); err != nil {
		t.Fatal(err)
	}
	for _, r := range []func(context.Context) error{
		(&source.Triggers{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop(), Validator: v}).Run,
	} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = r(ctx) }()
	}
	// The stub conductor answers approve and remembers the request.
	got := make(chan command.Request, 1)
	sub, err := command.Serve(ctx, b.Conn(), command.Approve, "conductors", func(_ context.Context, req command.Request) command.Reply {
		got <- req
		return command.Reply{Run: req.Run, Pipeline: "hello", Stage: "Approve", Phase: run.Running}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	h, err := chatops.SlackHandler(chatops.Config{SigningSecret: secret, Users: users, BaseURL: "http://127.0.0.1:8080",
		Now: func() time.Time { return now }, Timeout: 30 * time.Second, Defer: time.Minute, Log: zerolog.Nop()}, chatops.BusDeps(b, v, zerolog.Nop()))
	if err != nil {
		t.Fatal(err)
	}

	code, resp := post(t, h, secret, now, form("UOPS", "run hello GREETING=hi"))
	if code != http.StatusOK || resp.ResponseType != chatops.InChannel {
		t.Fatalf("run: %d %+v", code, resp)
	}
	// The reply links the run it started: find it in the log.
	i := strings.Index(resp.Text, "/runs/")
	if i < 0 {
		t.Fatalf("run reply without a link: %q", resp.Text)
	}
	runID := resp.Text[i+len("/runs/"):]
	runID = runID[:strings.IndexByte(runID, '|')]
	var req events.RunRequested
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, err := b.ReadRun(ctx, "hello", runID, 0)
		if err == nil && len(evs) > 0 {
			req = evs[0].Payload.(events.RunRequested)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s was never requested (%v)", runID, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if req.Trigger.Actor != "slack:UOPS" || req.Variables["GREETING"] != "hi" {
		t.Errorf("run.requested trigger %+v variables %v", req.Trigger, req.Variables)
	}

	// status folds the pipeline's most recently active run.
	for {
		_, resp = post(t, h, secret, now, form("UVIEW", "status hello"))
		if strings.Contains(resp.Text, runID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed run %s: %q", runID, resp.Text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(resp.Text, "http://127.0.0.1:8080/runs/"+runID) || !strings.Contains(resp.Text, "• Build:") {
		t.Errorf("status %q", resp.Text)
	}

	_, resp = post(t, h, secret, now, form("UAPPR", "approve "+runID+" ship it"))
	select {
	case r := <-got:
		want := command.Request{Run: runID, Comment: "ship it", Actor: "slack:UAPPR"}
		if r != want {
			t.Fatalf("conductor got %+v, want %+v", r, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("approve never reached gantry.cmd.approve")
	}
	if resp.ResponseType != chatops.InChannel || !strings.Contains(resp.Text, "approved run") || !strings.Contains(resp.Text, "Approve") {
		t.Errorf("approve reply %+v", resp)
	}

	// A newer run is the one status shows.
	_, resp = post(t, h, secret, now, form("UADMIN", "run hello"))
	i = strings.Index(resp.Text, "/runs/")
	second := resp.Text[i+len("/runs/"):]
	second = second[:strings.IndexByte(second, '|')]
	for {
		_, resp = post(t, h, secret, now, form("UVIEW", "status hello"))
		if strings.Contains(resp.Text, second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed the newer run %s: %q", second, resp.Text)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// rollback: a group with a good and a failed deployment and a live agent.
	js := b.JetStream()
	if _, err := deploy.ApplyGroup(ctx, js, deploy.Group{Name: "web", Application: "shop", DeploymentConfig: "AllAtOnce"}); err != nil {
		t.Fatal(err)
	}
	agents, err := js.KeyValue(ctx, events.BucketAgents)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agents.Put(ctx, events.AgentKey("web", "h1"), []byte(`{"group":"web","host":"h1"}`)); err != nil {
		t.Fatal(err)
	}
	d, err := b.Deploys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []events.Payload{
		created("d-good", "v1"), events.DeploymentSucceeded{Deployment: "d-good", Group: "web"},
		created("d-bad", "v2"), events.DeploymentFailed{Deployment: "d-bad", Group: "web", Reason: "h1 failed"},
	} {
		id := reflect.ValueOf(p).FieldByName("Deployment").String()
		e, err := events.New(events.DeployID(id, p.EventType()), "/test", id, time.Now(), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Append(ctx, "web", e, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, resp = post(t, h, secret, now, form("UOPS", "rollback web"))
	if resp.ResponseType != chatops.InChannel || !strings.Contains(resp.Text, "rolled *web* back") || !strings.Contains(resp.Text, "shop/v1/app.tar.gz") {
		t.Fatalf("rollback reply %+v", resp)
	}
	states, err := deploy.List(ctx, b, "web")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, st := range states {
		if strings.Contains(resp.Text, "`"+st.ID()+"`") {
			found = st.Created.Revision.Key == "shop/v1/app.tar.gz"
			if st.Created.Actor != "slack:UOPS" {
				t.Errorf("rollback deployment's actor %q, want slack:UOPS", st.Created.Actor)
			}
		}
	}
	if len(states) != 3 || !found {
		t.Errorf("after the rollback the group has %d deployments, the reply's deploying v1: %v", len(states), found)
	}
}

func created(id, rev string) events.DeploymentCreated {
	return events.DeploymentCreated{Deployment: id, Group: "web", Application: "shop",
		Revision: events.ArtifactRef{Name: "app", Key: "shop/" + rev + "/app.tar.gz", SHA256: strings.Repeat("a", 64), Size: 10},
		Config:   events.DeploymentConfig{Name: "AllAtOnce", Type: "HOST_COUNT", Value: 0}, Hosts: []string{"h1"}}
}
