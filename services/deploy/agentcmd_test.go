package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploy/deploytest"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/deployplan"
	"github.com/gantry-ci/gantry/services/internal/proctest"
)

// TestAgentInstallsTheLoggedRevisionNotTheCommands: a forged command names
// a real deployment dispatched to the host but carries another revision;
// the agent installs what the deployment's created event names.
func TestAgentInstallsTheLoggedRevisionNotTheCommands(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", true) // the health check waits until the app answers
	a := w.startAgent("h1", nil)
	waitAgents(t, w, 1)
	w.stopService() // no real command goes out: only the forged one arrives
	v1 := w.bundle("v1", "exit 0", "exit 0", 0)
	evil := w.bundle("evil", "exit 0", "exit 0", 0)
	id := w.create(v1)
	deploys, err := w.bus.Deploys(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := events.New(events.DeployHostID(id, "h1", "dispatched"), "/test", id, time.Now(),
		events.DeployHostDispatched{Deployment: id, Group: "web", Host: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := deploys.Append(w.ctx, "web", d, nil); err != nil {
		t.Fatal(err)
	}
	forged := agent.Command{Deployment: id, Group: "web", Host: "h1", Application: "shop", Revision: evil}
	data, err := json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.bus.JetStream().Publish(w.ctx, events.AgentSubject("web", "h1"), data); err != nil {
		t.Fatal(err)
	}
	st := w.until(id, "h1 ends", 30*time.Second, func(st deploydecider.State) bool {
		h := st.Host("h1")
		return h != nil && h.Status.Ended()
	})
	if h := st.Host("h1"); h.Status != deployplan.Succeeded {
		t.Fatalf("h1 %s: %s", h.Status, h.Reason)
	}
	if got := w.serves(a); got != "v1" {
		t.Errorf("h1 serves %q, want v1 (the logged revision), not the command's", got)
	}
}

// TestAgentDeadLettersMisaddressedCommandWithReason: a well-formed command
// for another host is refused with a reason that says so (it read "<nil>").
func TestAgentDeadLettersMisaddressedCommandWithReason(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
	w.startAgent("h1", nil)
	waitAgents(t, w, 1)
	data, err := json.Marshal(agent.Command{Deployment: "d1", Group: "web", Host: "h2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.bus.JetStream().Publish(w.ctx, events.AgentSubject("web", "h1"), data); err != nil {
		t.Fatal(err)
	}
	dlq, err := w.bus.JetStream().Stream(w.ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := dlq.GetLastMsgForSubject(w.ctx, events.DLQSubject(events.StreamAgents))
		if err == nil {
			reason := m.Header.Get(bus.HeaderReason)
			if strings.Contains(reason, "<nil>") || !strings.Contains(reason, "web/h2") {
				t.Fatalf("dead letter reason %q, want one naming the wrong host", reason)
			}
			return
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the misaddressed command was not dead-lettered")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentStopOnExitStopsTheApplication: an agent with StopOnExit (the
// local hosts of `gantry dev`) runs the current revision's ApplicationStop
// when it stops, so the app it started does not outlive it.
func TestAgentStopOnExitStopsTheApplication(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
	root := t.TempDir()
	port := freePort(t)
	a, err := agent.New(agent.Options{Bus: w.bus, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Group: "web", Name: "h1", Root: root, InstallRoot: filepath.Join(root, "fs"),
		Labels:    map[string]string{"port": strconv.Itoa(port), "server": serverBin},
		Heartbeat: 200 * time.Millisecond, AckWait: 3 * time.Second, StopOnExit: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	ta := &testAgent{name: "h1", root: root, port: port}
	t.Cleanup(func() { cancel(); <-done; killServer(ta) })
	waitAgents(t, w, 1)
	id := w.create(w.bundle("v1", "exit 0", "exit 0", 0))
	if st := w.wait(id, 30*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("%s: %s", st.Phase, st.Reason)
	}
	b, err := os.ReadFile(deploytest.PidFile(filepath.Join(root, "fs")))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !proctest.Alive(pid) {
		t.Fatalf("the app (pid %d) is not running after the deployment", pid)
	}
	cancel()
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for proctest.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the app (pid %d) outlived its agent", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
