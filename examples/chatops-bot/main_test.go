package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	grun "github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/deploy"
)

// botProc is the bot running as a process; lines is its output.
type botProc struct {
	mu    sync.Mutex
	lines []string
}

func (p *botProc) waitLine(t *testing.T, substr string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.Contains(l, substr) {
				p.mu.Unlock()
				return l
			}
		}
		out := strings.Join(p.lines, "\n")
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("the bot never said %q; it said:\n%s", substr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBot builds the bot with go build and runs it against url.
func startBot(t *testing.T, url string, args ...string) *botProc {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chatops-bot")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--nats", url}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &botProc{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = cmd.Wait()
	})
	p.waitLine(t, "chatops-bot ready")
	return p
}

// publishWaiting publishes a waiting approval as an approval action would.
func publishWaiting(t *testing.T, b *bus.Bus, pipeline, run, stage, action string, approvers ...string) {
	t.Helper()
	// As the approvals work writes it (events.ActionWaiting).
	data, _ := json.Marshal(map[string]any{"run": run, "stage": stage, "action": action, "attempt": 1,
		"instructions": "check the staging site", "approvers": approvers, "expires": time.Now().Add(time.Hour).Format(time.RFC3339)})
	env := events.Envelope{SpecVersion: events.SpecVersion, ID: events.RunID(run, "stage/"+stage+"/action/"+action+"/waiting"),
		Source: "/test", Type: WaitingType, Subject: run, Time: time.Now().UTC(), DataContentType: "application/json", Data: data}
	raw, _ := json.Marshal(env)
	if _, err := b.JetStream().PublishMsg(context.Background(), &nats.Msg{Subject: events.RunSubject(pipeline, run), Data: raw}); err != nil {
		t.Fatal(err)
	}
}

// TestBotApprovesAWaitingRun: the bot, a process, approves the waiting
// approval its rule matches through gantry.cmd.approve (a stub conductor
// answers) and leaves the one it does not.
func TestBotApprovesAWaitingRun(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	got := make(chan command.Request, 4)
	sub, err := command.Serve(context.Background(), b.Conn(), command.Approve, "conductors", func(_ context.Context, req command.Request) command.Reply {
		got <- req
		return command.Reply{Run: req.Run, Pipeline: req.Pipeline, Stage: req.Stage, Phase: "Running"}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	bot := startBot(t, srv.ClientURL(), "--approve", "webshop/Staging*", "--approve", "hello/*/gate", "--actor", "bot:test")

	other := events.RunIDForTrigger("other", time.Now().UnixMilli())
	publishWaiting(t, b, "webshop", other, "Production", "gate")
	bot.waitLine(t, "not approving webshop/Production/gate of run "+other)

	// A rule matches, but the approval names its approvers and not the bot.
	people := events.RunIDForTrigger("people-only", time.Now().UnixMilli())
	publishWaiting(t, b, "webshop", people, "StagingApproval", "sign-off", "slack:U012ABCDEF")
	bot.waitLine(t, "not approving webshop/StagingApproval/sign-off of run "+people+": bot:test is not among its approvers")

	runID := events.RunIDForTrigger("approve-me", time.Now().UnixMilli())
	publishWaiting(t, b, "webshop", runID, "StagingApproval", "sign-off", "slack:U012ABCDEF", "bot:test")
	select {
	case req := <-got:
		want := command.Request{Run: runID, Pipeline: "webshop", Stage: "StagingApproval", Action: "sign-off",
			Comment: "approved by chatops-bot rule webshop/Staging*", Actor: "bot:test"}
		if req != want {
			t.Fatalf("approve request\n got %+v\nwant %+v", req, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the bot never approved the waiting run")
	}
	bot.waitLine(t, "approved StagingApproval/sign-off of run "+runID)
	select {
	case req := <-got:
		t.Fatalf("a second approval: %+v", req)
	default:
	}
}

// TestBotRollsBackAFailedDeployment: asked to watch group web, the bot
// answers a failed deployment with a rollback deployment of the last good
// revision.
func TestBotRollsBackAFailedDeployment(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	ctx := context.Background()
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
	appendDeploy := func(id string, p events.Payload, fact string) {
		t.Helper()
		e, err := events.New(events.DeployID(id, fact), "/test", id, time.Now(), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := d.Append(ctx, "web", e, nil); err != nil {
			t.Fatal(err)
		}
	}
	rev := func(name string) events.ArtifactRef {
		return events.ArtifactRef{Name: "app", Key: "shop/" + name + "/app.tar.gz",
			SHA256: strings.Repeat("a", 64), Size: 10}
	}
	created := func(id, revName string) events.DeploymentCreated {
		return events.DeploymentCreated{Deployment: id, Group: "web", Application: "shop", Revision: rev(revName),
			Config: events.DeploymentConfig{Name: "AllAtOnce", Type: "HOST_COUNT", Value: 0}, Hosts: []string{"h1"}}
	}
	good, bad := "d-good", "d-bad"
	appendDeploy(good, created(good, "v1"), "created")
	appendDeploy(good, events.DeploymentSucceeded{Deployment: good, Group: "web"}, "succeeded")
	appendDeploy(bad, created(bad, "v2"), "created")

	bot := startBot(t, srv.ClientURL(), "--rollback", "web")
	appendDeploy(bad, events.DeploymentFailed{Deployment: bad, Group: "web", Reason: "h1 failed"}, "failed")
	line := bot.waitLine(t, "rolled web back after d-bad failed")
	if !strings.Contains(line, "shop/v1/app.tar.gz") {
		t.Errorf("rolled back to the wrong revision: %s", line)
	}
	states, err := deploy.List(ctx, b, "web")
	if err != nil {
		t.Fatal(err)
	}
	var rollbacks int
	for _, s := range states {
		if s.Created.RollbackOf == bad {
			rollbacks++
			if s.Created.Revision.Key != "shop/v1/app.tar.gz" {
				t.Errorf("rollback deploys %s", s.Created.Revision.Key)
			}
		}
	}
	if rollbacks != 1 {
		t.Fatalf("%d rollbacks of %s, want 1", rollbacks, bad)
	}
}

// TestBotApprovesARealRun: with a real conductor, a run of a pipeline
// with an approval stage waits; the bot, a process, approves it through
// gantry.cmd.approve, and the run goes on to succeed, the log naming the
// bot as the approver.
func TestBotApprovesARealRun(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	cd, err := conductor.New(conductor.Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	startBot(t, srv.ClientURL(), "--approve", "release/Gate/*", "--actor", "bot:test")

	def := events.Definition{Name: "release", Stages: []events.StageDef{{Name: "Gate", Actions: []events.ActionDef{
		{Name: "sign-off", Type: events.KindApproval, Pool: "default", RunOrder: 1, TimeoutSeconds: events.MinApprovalTimeoutSeconds,
			Configuration: map[string]string{"instructions": "the bot may approve", "approvers": "bot:test"}},
	}}}}
	runID := events.RunIDForTrigger("bot-real", time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "requested"), "/test", runID, time.Now(), events.RunRequested{
		Pipeline: def.Name, Run: runID, Revision: 1, Definition: def, Trigger: events.Trigger{ID: runID, Kind: "manual"}})
	if err != nil {
		t.Fatal(err)
	}
	zero := uint64(0)
	if _, _, err := b.Append(context.Background(), def.Name, e, &zero); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs, err := b.ReadRun(context.Background(), def.Name, runID, 0)
		if err != nil {
			t.Fatal(err)
		}
		st := grun.Fold(grun.State{}, evs...)
		if st.Done() {
			if st.Phase != grun.Succeeded {
				t.Fatalf("run %s: %s", st.Phase, st.Reason)
			}
			var by string
			for _, e := range evs {
				if p, ok := e.Payload.(events.ActionApproved); ok {
					by = p.Actor
				}
			}
			if by != "bot:test" {
				t.Fatalf("approved by %q, want bot:test", by)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run still %s after 60s", st.Phase)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
