package clustertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/conductor"
)

// ackWait is the build role's default --ack-wait: how long a task would sit
// with a worker that went away without handing it back.
const ackWait = 30 * time.Second

// TestSIGTERMDrainsWorker: a real `gantry build` process running a task
// gets SIGTERM; it kills the task's processes and hands the task back at
// once, and another `gantry build` redoes it well within AckWait. (The
// buildspec sleeps only in the worker started with SLOW=1.)
func TestSIGTERMDrainsWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gantry binary: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "gantry")
	build := exec.Command("go", "build", "-o", bin, "github.com/gantry-ci/gantry/services/cmd/gantry")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build gantry: %v\n%s", err, out)
	}
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = c.Run(ctx) })

	worker := func(name, slow string) *exec.Cmd {
		cmd := exec.Command(bin, "build", "--name", name, "--pass-env", "SLOW", "--work-dir", t.TempDir(), "--log-format", "json")
		cmd.Env = append(os.Environ(), "NATS_URL="+srv.ClientURL(), "SLOW="+slow)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	slow := worker("slow", "1")

	spec := "version: 0.2\nphases:\n  build:\n    commands:\n      - if [ \"$SLOW\" = 1 ]; then sleep 300; fi\n      - echo built\n"
	d := events.Definition{Name: "drain", Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
		{Name: "compile", Type: "build", Pool: "default", RunOrder: 1, Configuration: map[string]string{"buildspec": spec}}}}}}
	runID := events.RunIDForTrigger("drain", time.Now().UnixMilli())
	e, err := events.New(events.RunID(runID, "requested"), "/clustertest", runID, time.Now(), events.RunRequested{
		Pipeline: d.Name, Run: runID, Revision: 1, Definition: d, Trigger: events.Trigger{ID: runID, Kind: "manual"}})
	if err != nil {
		t.Fatal(err)
	}
	zero := uint64(0)
	if _, _, err := b.Append(ctx, d.Name, e, &zero); err != nil {
		t.Fatal(err)
	}
	fold := func() (run.State, []events.Event) {
		evs, err := b.ReadRun(ctx, d.Name, runID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return run.Fold(run.State{}, evs...), evs
	}
	// The slow worker has the task.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, evs := fold()
		started := false
		for _, e := range evs {
			if p, ok := e.Payload.(events.ActionStarted); ok && p.Worker == "slow" {
				started = true
			}
		}
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow worker never started the task")
		}
	}
	worker("fast", "0")
	time.Sleep(500 * time.Millisecond) // the fast worker is pulling

	sigterm := time.Now()
	if err := slow.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- slow.Wait() }()
	select {
	case err := <-exited:
		t.Logf("the slow worker exited %s after SIGTERM (%v)", time.Since(sigterm).Round(time.Millisecond), err)
	case <-time.After(ackWait):
		t.Fatal("the slow worker did not exit within AckWait of SIGTERM")
	}

	var st run.State
	var evs []events.Event
	for deadline := sigterm.Add(ackWait / 2); ; time.Sleep(100 * time.Millisecond) {
		if st, evs = fold(); st.Done() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not done %s after SIGTERM (AckWait %s): the task was not handed back", time.Since(sigterm), ackWait)
		}
	}
	elapsed := time.Since(sigterm)
	if st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", st.Phase, st.Reason)
	}
	var by string
	for _, e := range evs {
		if p, ok := e.Payload.(events.ActionSucceeded); ok {
			by = p.Worker
		}
	}
	if by != "fast" {
		t.Errorf("the task succeeded on %q, want the other worker", by)
	}
	t.Logf("task redone by %s %s after SIGTERM (AckWait %s)", by, elapsed.Round(time.Millisecond), ackWait)
}
