package deploydecider

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deployplan"
)

var t0 = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

const dep = "d1"

func created(cfg events.DeploymentConfig, hosts ...string) events.Payload {
	return events.DeploymentCreated{Deployment: dep, Group: "g", Application: "app",
		Revision: events.ArtifactRef{Name: "app", Key: "p/r/app", SHA256: strings.Repeat("a", 64), Size: 1},
		Config:   cfg, Hosts: hosts}
}

var oneAtATime = events.DeploymentConfig{Name: "OneAtATime", Type: "MOST_CONCURRENCY", Value: 1}
var allAtOnce = events.DeploymentConfig{Name: "AllAtOnce", Type: "FLEET_PERCENT", Value: 0}

func ev(t *testing.T, seq uint64, p events.Payload) events.Event {
	t.Helper()
	e, err := events.New("x", "/test", dep, t0, p)
	if err != nil {
		t.Fatal(err)
	}
	e.Seq = seq
	return e
}

func hostOK(h string) events.Payload {
	return events.DeployHostSucceeded{Deployment: dep, Group: "g", Host: h}
}
func hostBad(h string) events.Payload {
	return events.DeployHostFailed{Deployment: dep, Group: "g", Host: h, Reason: "hook failed"}
}
func dispatched(h string) events.Payload {
	return events.DeployHostDispatched{Deployment: dep, Group: "g", Host: h}
}

// run folds the given events, then lets Decide drive until it waits, and
// returns the state and a summary of what Decide appended.
func run(t *testing.T, given []events.Payload, dead map[string]bool) (State, []string) {
	t.Helper()
	var s State
	seq := uint64(0)
	for _, p := range given {
		seq++
		s = Evolve(s, ev(t, seq, p))
	}
	var did []string
	for range 50 {
		out := Decide(s, Inputs{Now: t0, Dead: dead})
		if len(out) == 0 {
			return s, did
		}
		for _, e := range out {
			seq++
			e.Seq = seq
			s = Evolve(s, e)
			did = append(did, summary(e))
		}
	}
	t.Fatal("Decide did not settle")
	return s, did
}

func summary(e events.Event) string {
	switch p := e.Payload.(type) {
	case events.DeployHostDispatched:
		return "dispatch " + p.Host
	case events.DeployHostFailed:
		return "fail " + p.Host
	case events.DeploymentSucceeded:
		return "succeeded"
	case events.DeploymentFailed:
		return "failed"
	}
	return e.Type
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name      string
		given     []events.Payload
		dead      map[string]bool
		want      []string
		phase     Phase
		statuses  map[string]deployplan.HostStatus
		reasonHas string
	}{
		{name: "new deployment dispatches the first batch",
			given: []events.Payload{created(oneAtATime, "h1", "h2", "h3")},
			want:  []string{"dispatch h1"}, phase: InProgress},
		{name: "all at once dispatches every host",
			given: []events.Payload{created(allAtOnce, "h1", "h2", "h3")},
			want:  []string{"dispatch h1", "dispatch h2", "dispatch h3"}, phase: InProgress},
		{name: "waits while a host is in progress",
			given: []events.Payload{created(oneAtATime, "h1", "h2"), dispatched("h1")},
			want:  nil, phase: InProgress},
		{name: "next host after a success",
			given: []events.Payload{created(oneAtATime, "h1", "h2"), dispatched("h1"), hostOK("h1")},
			want:  []string{"dispatch h2"}, phase: InProgress},
		{name: "succeeds when every host succeeded",
			given: []events.Payload{created(oneAtATime, "h1", "h2"), dispatched("h1"), hostOK("h1"), dispatched("h2"), hostOK("h2")},
			want:  []string{"succeeded"}, phase: Succeeded},
		{name: "one at a time fails on the second host and skips the rest",
			given: []events.Payload{created(oneAtATime, "h1", "h2", "h3", "h4", "h5"), dispatched("h1"), hostOK("h1"), dispatched("h2"), hostBad("h2")},
			want:  []string{"failed"}, phase: Failed,
			statuses: map[string]deployplan.HostStatus{"h1": deployplan.Succeeded, "h2": deployplan.Failed,
				"h3": deployplan.Skipped, "h4": deployplan.Skipped, "h5": deployplan.Skipped},
			reasonHas: "1 of 5 hosts failed"},
		{name: "a dead agent fails its host and the deployment",
			given: []events.Payload{created(oneAtATime, "h1", "h2"), dispatched("h1")},
			dead:  map[string]bool{"h1": true},
			want:  []string{"fail h1", "failed"}, phase: Failed},
		{name: "a dead agent of a pending host changes nothing",
			given: []events.Payload{created(oneAtATime, "h1", "h2"), dispatched("h1")},
			dead:  map[string]bool{"h2": true},
			want:  nil, phase: InProgress},
		{name: "an impossible plan fails at once",
			given: []events.Payload{created(events.DeploymentConfig{Type: "HOST_COUNT", Value: 3}, "h1", "h2")},
			want:  []string{"failed"}, phase: Failed, reasonHas: "cannot plan"},
		{name: "stopped deployments decide nothing",
			given: []events.Payload{created(oneAtATime, "h1", "h2"), dispatched("h1"),
				events.DeploymentStopped{Deployment: dep, Group: "g", Reason: "by alice", Rollback: true}},
			want: nil, phase: Stopped,
			statuses: map[string]deployplan.HostStatus{"h1": deployplan.InProgress, "h2": deployplan.Skipped}},
		{name: "results after the end are ignored for pending hosts",
			given: []events.Payload{created(oneAtATime, "h1", "h2"),
				events.DeploymentStopped{Deployment: dep, Group: "g", Reason: "by alice"}, hostBad("h2")},
			want: nil, phase: Stopped,
			statuses: map[string]deployplan.HostStatus{"h1": deployplan.Skipped, "h2": deployplan.Skipped}},
		{name: "a repeated created is ignored",
			given: []events.Payload{created(oneAtATime, "h1"), dispatched("h1"), created(oneAtATime, "h9")},
			want:  nil, phase: InProgress},
		{name: "events before created are ignored",
			given: []events.Payload{dispatched("h1"), hostOK("h1")},
			want:  nil, phase: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, did := run(t, c.given, c.dead)
			if !reflect.DeepEqual(did, c.want) {
				t.Errorf("decided %q, want %q", did, c.want)
			}
			if s.Phase != c.phase {
				t.Errorf("phase %q, want %q", s.Phase, c.phase)
			}
			if c.statuses != nil && !reflect.DeepEqual(s.Statuses(), c.statuses) {
				t.Errorf("statuses %v, want %v", s.Statuses(), c.statuses)
			}
			if !strings.Contains(s.Reason, c.reasonHas) {
				t.Errorf("reason %q does not contain %q", s.Reason, c.reasonHas)
			}
		})
	}
}

func TestEvolveDoesNotChangeEarlierState(t *testing.T) {
	s1 := Evolve(State{}, ev(t, 1, created(oneAtATime, "h1", "h2")))
	before, _ := json.Marshal(s1)
	_ = Evolve(s1, ev(t, 2, dispatched("h1")))
	after, _ := json.Marshal(s1)
	if string(before) != string(after) {
		t.Fatalf("Evolve changed its input:\n%s\n%s", before, after)
	}
}

func TestDecideIsIdempotent(t *testing.T) {
	var s State
	s = Evolve(s, ev(t, 1, created(allAtOnce, "h1", "h2")))
	a, b := Decide(s, Inputs{Now: t0}), Decide(s, Inputs{Now: t0})
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two Decide calls on one state differ")
	}
	for _, e := range a {
		if !strings.HasPrefix(e.ID, "deploy/"+dep+"/host/") {
			t.Errorf("ID %q is not a host fact of the deployment", e.ID)
		}
	}
}

// TestEndSeqIsTheFinalEvent: EndSeq names the final event even when hosts'
// events follow it, and a second final event does not move it.
func TestEndSeqIsTheFinalEvent(t *testing.T) {
	end := map[string]events.Payload{
		"succeeded": events.DeploymentSucceeded{Deployment: dep, Group: "g"},
		"failed":    events.DeploymentFailed{Deployment: dep, Group: "g", Reason: "r"},
		"stopped":   events.DeploymentStopped{Deployment: dep, Group: "g", Reason: "r"},
	}
	for name, p := range end {
		t.Run(name, func(t *testing.T) {
			s := Fold(State{},
				ev(t, 3, created(allAtOnce, "h1", "h2")),
				ev(t, 5, dispatched("h1")),
				ev(t, 8, p),
				ev(t, 9, events.DeployHostLifecycle{Deployment: dep, Group: "g", Host: "h2", Event: "ValidateService", Status: events.StepSucceeded}),
				ev(t, 12, events.DeploymentFailed{Deployment: dep, Group: "g", Reason: "late"}))
			if s.EndSeq != 8 || s.LastSeq != 12 || s.CreatedSeq != 3 {
				t.Fatalf("CreatedSeq %d EndSeq %d LastSeq %d, want 3, 8 and 12", s.CreatedSeq, s.EndSeq, s.LastSeq)
			}
			if in := Evolve(State{}, ev(t, 1, created(allAtOnce, "h1"))); in.EndSeq != 0 {
				t.Fatalf("in progress: EndSeq %d", in.EndSeq)
			}
		})
	}
}

// TestRollbackInfoAfterTheEndOnly: the rollback service's answer counts
// only on an ended deployment, and the first answer stays.
func TestRollbackInfoAfterTheEndOnly(t *testing.T) {
	answer := func(rb, msg string) events.Payload {
		p := events.DeploymentRollback{Deployment: dep, Group: "g", Message: msg}
		if rb != "" {
			p.RollbackDeployment, p.Revision = rb, "p/r/app"
		}
		return p
	}
	s := Fold(State{},
		ev(t, 1, created(allAtOnce, "h1")),
		ev(t, 2, answer("early", "too early")))
	if s.RollbackInfo != nil {
		t.Fatalf("an answer before the end was kept: %+v", s.RollbackInfo)
	}
	s = Fold(s,
		ev(t, 3, events.DeploymentFailed{Deployment: dep, Group: "g", Reason: "r"}),
		ev(t, 4, answer("d2", "rolling back")),
		ev(t, 5, answer("", "second answer")))
	if ri := s.RollbackInfo; ri == nil || ri.Deployment != "d2" || ri.Revision != "p/r/app" || ri.Message != "rolling back" {
		t.Fatalf("rollback info %+v, want the first answer after the end", ri)
	}
}
