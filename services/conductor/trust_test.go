package conductor_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// forge publishes an action.succeeded for the attempt as a bus client that
// never saw the task would: the deterministic ID, a lease it made up.
func forge(t *testing.T, b *bus.Bus, pipeline string, ref events.ActionRef, id, lease string) {
	t.Helper()
	e, err := events.New(id, "/evil", ref.Run, time.Now(), events.ActionSucceeded{ActionRef: ref, Worker: "evil", Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(context.Background(), pipeline, e, nil); err != nil {
		t.Fatal(err)
	}
}

// dlqReasons returns the dead-letter reasons of messages from subject.
func dlqReasons(t *testing.T, b *bus.Bus, subject string) []string {
	t.Helper()
	ctx := context.Background()
	dlq, err := b.JetStream().Stream(ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for seq := uint64(1); ; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			return reasons
		}
		if m.Header.Get(bus.HeaderOrigSubject) == subject {
			reasons = append(reasons, m.Header.Get(bus.HeaderReason))
		}
	}
}

// A failing build with forged successes around it: one published before
// the dispatch under the real result's deterministic ID, one while the task
// runs. The run still fails, and both forgeries are in the DLQ with why.
func TestForgedResultsAreRefused(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	def := events.Definition{Name: "forged", Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
		{Name: "compile", Type: "failing", Pool: "default", RunOrder: 1}}}}}
	id := events.RunIDForTrigger("forged", time.Now().UnixMilli())
	ref := events.ActionRef{Run: id, Stage: "Build", Action: "compile", Attempt: 1}
	request(t, b, def, id)
	forge(t, b, def.Name, ref, events.ActionID(ref, "succeeded"), "") // before any dispatch

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, c.Run)
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "failing",
		Handler: worker.HandlerFunc(func(ctx context.Context, wt *worker.Task) (worker.Result, error) {
			// While the build runs, someone claims it succeeded.
			forge(t, b, def.Name, wt.Ref, events.ActionID(wt.Ref, "succeeded/x"), strings.Repeat("ab", 32))
			time.Sleep(200 * time.Millisecond)
			return worker.Result{}, errors.New("compile error")
		})})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)

	st := waitDone(t, b, def.Name, id, 20*time.Second)
	if st.Phase != run.Failed || !strings.Contains(st.Reason, "compile error") {
		t.Fatalf("run %s (%s), want it failed by the real result", st.Phase, st.Reason)
	}
	want := "action.succeeded for " + id + "/Build/compile attempt 1 does not carry the lease of the dispatched task"
	deadline := time.Now().Add(10 * time.Second)
	for {
		reasons := dlqReasons(t, b, events.RunSubject(def.Name, id))
		n := 0
		for _, r := range reasons {
			if strings.Contains(r, want) {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("DLQ reasons %q, want two saying %q", reasons, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A task of a kind nobody serves fails the run after its deadline, even
// when the conductor that dispatched it stopped and another started with
// no event left to deliver: the new one finds the open run in the log.
func TestDeadlineFailsUnservedTaskAcrossARestart(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	def := events.Definition{Name: "unserved", Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
		{Name: "compile", Type: "nobody", Pool: "default", RunOrder: 1, TimeoutSeconds: 1}}}}}
	id := events.RunIDForTrigger("unserved", time.Now().UnixMilli())
	request(t, b, def, id)
	opts := func() conductor.Options {
		return conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Grace: time.Second, Tick: 50 * time.Millisecond}
	}

	first, stopFirst := context.WithCancel(context.Background())
	var wg1 sync.WaitGroup
	c1, err := conductor.New(opts())
	if err != nil {
		t.Fatal(err)
	}
	start(t, first, &wg1, c1.Run)
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := b.ReadRun(context.Background(), def.Name, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if st := run.Fold(run.State{}, evs...); st.Action("Build", "compile") != nil && st.Action("Build", "compile").Phase == run.Dispatched {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task was not dispatched")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopFirst()
	wg1.Wait()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c2, err := conductor.New(opts())
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, c2.Run)
	st := waitDone(t, b, def.Name, id, 10*time.Second)
	want := "no result within 2s of dispatch (timeout 1s + grace 1s): is a worker of kind nobody pool default running?"
	if st.Phase != run.Failed || !strings.Contains(st.Reason, want) {
		t.Fatalf("run %s (%s), want failed with %q", st.Phase, st.Reason, want)
	}
	if a := st.Action("Build", "compile"); a.EndedAt.Sub(a.DispatchedAt) < 2*time.Second {
		t.Fatalf("the attempt failed %s after dispatch, before its deadline", a.EndedAt.Sub(a.DispatchedAt))
	}
}
