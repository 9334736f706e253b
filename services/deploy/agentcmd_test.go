package deploy_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/deployplan"
)

// TestAgentInstallsTheLoggedRevisionNotTheCommands: a forged command names
// a real deployment dispatched to the host but carries another revision;
// the agent installs what the deployment's created event names.
func TestAgentInstallsTheLoggedRevisionNotTheCommands(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
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
