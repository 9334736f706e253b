package conductor_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natsd"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// clock is a test clock every service of the test reads.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock(t time.Time) *clock    { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func approvalDef(timeout int) events.Definition {
	return events.Definition{Name: "gated", Stages: []events.StageDef{
		{Name: "Build", Actions: []events.ActionDef{{Name: "b", Type: "noop", Pool: "default", RunOrder: 1}}},
		{Name: "Gate", Actions: []events.ActionDef{{Name: "sign-off", Type: events.KindApproval, Pool: "default", RunOrder: 1,
			TimeoutSeconds: timeout, Configuration: map[string]string{"instructions": "check staging"}}}},
		{Name: "Deploy", Actions: []events.ActionDef{{Name: "d", Type: "noop", Pool: "default", RunOrder: 1}}},
	}}
}

// services is one generation of the test's services: a conductor and a
// noop worker on their own connections to the server at url.
type services struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startServices(t *testing.T, url string, clk *clock) *services {
	ctx, cancel := context.WithCancel(context.Background())
	s := &services{cancel: cancel}
	c, err := conductor.New(conductor.Options{Bus: newBus(t, url), Log: zerolog.Nop(), Now: clk.now, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &s.wg, c.Run)
	w, err := worker.New(worker.Options{Bus: newBus(t, url), Log: zerolog.Nop(), Kind: "noop",
		Handler: worker.HandlerFunc(func(ctx context.Context, t *worker.Task) (worker.Result, error) { return worker.Result{}, nil })})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &s.wg, w.Run)
	return s
}

func (s *services) stop() { s.cancel(); s.wg.Wait() }

func waitState(t *testing.T, b *bus.Bus, pipeline, runID, what string, cond func(run.State) bool) run.State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := b.ReadRun(context.Background(), pipeline, runID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := run.Fold(run.State{}, evs...); cond(st) {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("run %s: %s did not happen", runID, what)
	return run.State{}
}

func waiting(st run.State) bool {
	a := st.Action("Gate", "sign-off")
	return a != nil && a.Waiting()
}

// An approval nobody answers fails its run at its timeout, counted from
// the log, even though every service and the NATS server itself were
// stopped and started again while it waited, and no event of the run
// arrives after the restart. The services' clock is moved instead of
// sleeping five minutes.
func TestApprovalTimesOutAcrossARestartOfEverything(t *testing.T) {
	dir := t.TempDir()
	srv, err := natsd.Start(natsd.Options{DataDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(time.Now())
	b := newBus(t, srv.ClientURL())
	svc := startServices(t, srv.ClientURL(), clk)
	def := approvalDef(events.MinApprovalTimeoutSeconds)
	id := events.RunIDForTrigger("approval-timeout", time.Now().UnixMilli())
	request(t, b, def, id)
	st := waitState(t, b, def.Name, id, "the approval waits", waiting)
	expires := st.Action("Gate", "sign-off").Approval.Expires

	// Everything stops, the server too; five minutes pass.
	svc.stop()
	srv.Shutdown()
	clk.add(5*time.Minute + time.Second)
	srv, err = natsd.Start(natsd.Options{DataDir: dir, Port: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	b = newBus(t, srv.ClientURL())
	if st := waitState(t, b, def.Name, id, "the log survives", func(run.State) bool { return true }); !waiting(st) {
		t.Fatalf("after the restart the approval is %s, want it still waiting", st.Action("Gate", "sign-off").Phase)
	}
	svc = startServices(t, srv.ClientURL(), clk)
	defer svc.stop()

	final := waitDone(t, b, def.Name, id, 30*time.Second)
	a := final.Action("Gate", "sign-off")
	if final.Phase != run.Failed || a.Phase != run.Failed || !strings.Contains(a.Reason, "approval timed out") ||
		!strings.Contains(final.Reason, "stage Gate failed") {
		t.Fatalf("run %s (%s), approval %s (%s); want both failed by the timeout", final.Phase, final.Reason, a.Phase, a.Reason)
	}
	if d := final.Action("Deploy", "d"); d.Phase != run.NotStarted {
		t.Fatalf("Deploy ran after a timed-out approval: %s", d.Phase)
	}
	if a.EndedAt.Before(clk.now().Add(-time.Minute)) {
		t.Fatalf("the approval failed at %s, before its expiry %s", a.EndedAt, expires)
	}
}

// Approve and reject through the command subjects: the answer is an event
// with the actor and comment; what is not waiting is refused with why.
func TestApproveAndRejectCommands(t *testing.T) {
	srv := natstest.Start(t)
	clk := newClock(time.Now())
	b := newBus(t, srv.ClientURL())
	svc := startServices(t, srv.ClientURL(), clk)
	defer svc.stop()
	cmd := command.Client{Conn: b.Conn()}
	ctx := context.Background()
	def := approvalDef(0)

	ok := events.RunIDForTrigger("approve", time.Now().UnixMilli())
	request(t, b, def, ok)
	waitState(t, b, def.Name, ok, "the approval waits", waiting)
	if _, err := cmd.Do(ctx, command.Approve, command.Request{Run: ok, Stage: "Build", Actor: "alice"}); err == nil ||
		!strings.Contains(err.Error(), "no approval waiting in stage Build") {
		t.Fatalf("approve of the wrong stage: %v", err)
	}
	// An approval is nobody's task: nothing was published for it.
	tasks, err := b.JetStream().Stream(ctx, events.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := tasks.Info(ctx, jetstream.WithSubjectFilter(events.TaskSubject(events.KindApproval, ">")))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 0 {
		t.Fatalf("approval tasks were published: %v", info.State.Subjects)
	}
	reply, err := cmd.Do(ctx, command.Approve, command.Request{Run: ok, Actor: "alice", Comment: "staging is fine"})
	if err != nil || reply.Stage != "Gate" {
		t.Fatalf("approve: %+v %v", reply, err)
	}
	final := waitDone(t, b, def.Name, ok, 30*time.Second)
	if final.Phase != run.Succeeded {
		t.Fatalf("approved run %s: %s", final.Phase, final.Reason)
	}
	evs, _ := b.ReadRun(ctx, def.Name, ok, 0)
	var approved *events.ActionApproved
	for _, e := range evs {
		if p, is := e.Payload.(events.ActionApproved); is {
			approved = &p
		}
	}
	if approved == nil || approved.Actor != "alice" || approved.Comment != "staging is fine" {
		t.Fatalf("action.approved = %+v", approved)
	}
	if _, err := cmd.Do(ctx, command.Reject, command.Request{Run: ok, Actor: "bob"}); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Fatalf("reject after the end: %v", err)
	}

	no := events.RunIDForTrigger("reject", time.Now().UnixMilli())
	request(t, b, def, no)
	waitState(t, b, def.Name, no, "the approval waits", waiting)
	if _, err := cmd.Do(ctx, command.Reject, command.Request{Run: no, Stage: "Gate", Action: "sign-off", Actor: "bob", Comment: "error rate is up"}); err != nil {
		t.Fatal(err)
	}
	final = waitDone(t, b, def.Name, no, 30*time.Second)
	if final.Phase != run.Failed || !strings.Contains(final.Reason, "rejected by bob: error rate is up") {
		t.Fatalf("rejected run %s: %s", final.Phase, final.Reason)
	}
}

// Two approvals waiting at once: one not named is refused with the names.
func TestApproveNamesWhichWhenSeveralWait(t *testing.T) {
	srv := natstest.Start(t)
	clk := newClock(time.Now())
	b := newBus(t, srv.ClientURL())
	svc := startServices(t, srv.ClientURL(), clk)
	defer svc.stop()
	def := events.Definition{Name: "two", Stages: []events.StageDef{{Name: "Gate", Actions: []events.ActionDef{
		{Name: "qa", Type: events.KindApproval, Pool: "default", RunOrder: 1},
		{Name: "security", Type: events.KindApproval, Pool: "default", RunOrder: 1, Configuration: map[string]string{"approvers": "sec-team"}},
	}}}}
	id := events.RunIDForTrigger("two", time.Now().UnixMilli())
	request(t, b, def, id)
	waitState(t, b, def.Name, id, "both wait", func(st run.State) bool {
		return st.Action("Gate", "qa").Waiting() && st.Action("Gate", "security").Waiting()
	})
	cmd := command.Client{Conn: b.Conn()}
	ctx := context.Background()
	_, err := cmd.Do(ctx, command.Approve, command.Request{Run: id, Actor: "alice"})
	if err == nil || !strings.Contains(err.Error(), "--stage Gate --action qa or --stage Gate --action security") {
		t.Fatalf("approve without a name: %v", err)
	}
	if _, err := cmd.Do(ctx, command.Approve, command.Request{Run: id, Action: "security", Actor: "alice"}); err == nil ||
		!strings.Contains(err.Error(), "alice may not approve Gate/security (approvers: sec-team)") {
		t.Fatalf("approve by a non-approver: %v", err)
	}
	for _, r := range []command.Request{{Run: id, Action: "qa", Actor: "alice"}, {Run: id, Action: "security", Actor: "sec-team"}} {
		if _, err := cmd.Do(ctx, command.Approve, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cmd.Do(ctx, command.Approve, command.Request{Run: id, Action: "qa", Actor: "alice"}); err == nil ||
		!(strings.Contains(err.Error(), "already approved by alice") || strings.Contains(err.Error(), "already ended")) {
		t.Fatalf("second approve: %v", err)
	}
	if st := waitDone(t, b, def.Name, id, 30*time.Second); st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", st.Phase, st.Reason)
	}
}
