package gateway_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/stack"
)

const holdPipeline = `name: held
stages:
  - name: Build
    actions:
      - name: compile
        type: hold
  - name: Ship
    actions:
      - name: push
        type: hold
`

// stub answers every command verb in place of the conductors, recording
// what it was asked; a request whose Comment or Reason is "refuse" is
// refused.
type stub struct {
	mu   sync.Mutex
	got  map[string][]command.Request
	subs []func()
}

func newStub(t *testing.T, e *env) *stub {
	s := &stub{got: map[string][]command.Request{}}
	for _, verb := range command.Verbs {
		sub, err := command.Serve(context.Background(), e.conn.Bus.Conn(), verb, "stub", func(_ context.Context, req command.Request) command.Reply {
			s.mu.Lock()
			s.got[verb] = append(s.got[verb], req)
			s.mu.Unlock()
			if req.Comment == "refuse" || req.Reason == "refuse" {
				return command.Reply{Run: req.Run, Error: "refused by the stub"}
			}
			return command.Reply{Run: req.Run, Pipeline: req.Pipeline, Stage: req.Stage, Phase: run.Running}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	return s
}

func (s *stub) last(t *testing.T, verb string) command.Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got[verb]) == 0 {
		t.Fatalf("no %s request reached the stub", verb)
	}
	return s.got[verb][len(s.got[verb])-1]
}

func (s *stub) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.got {
		n += len(v)
	}
	return n
}

// TestCommandsReachTheBus: each command route sends one command.Request
// of the documented shape, naming the caller api:<token name>, and maps
// a refusal to 409, an unknown run, pipeline or stage to 404 and a
// malformed request to 400 without sending anything.
func TestCommandsReachTheBus(t *testing.T) {
	e := newEnv(t, stack.RoleTriggers, stack.RoleProjector)
	st := newStub(t, e)
	e.want(e.do("PUT", "/api/v1/pipelines/held", auth.Admin, holdPipeline), 200, "apply")
	r := e.do("POST", "/api/v1/pipelines/held/runs", auth.Operator, map[string]any{"variables": map[string]string{"V": "1"}, "id": "start-1"})
	e.want(r, 202, "start")
	var started gateway.Started
	r.json(t, &started)
	again := e.do("POST", "/api/v1/pipelines/held/runs", auth.Operator, map[string]any{"variables": map[string]string{"V": "1"}, "id": "start-1"})
	var second gateway.Started
	again.json(t, &second)
	if second.Run != started.Run {
		t.Errorf("the same start id named runs %s and %s", started.Run, second.Run)
	}
	id := started.Run
	e.eventually("the run to be requested", func() bool { return e.do("GET", "/api/v1/runs/"+id, auth.Viewer, nil).status == 200 })
	var state run.State
	e.do("GET", "/api/v1/runs/"+id, auth.Viewer, nil).json(t, &state)
	if state.Trigger.Actor != "api:operator" || state.Trigger.Kind != "api" || state.Variables["V"] != "1" {
		t.Errorf("run.requested trigger %+v variables %v, want actor api:operator, kind api, V=1", state.Trigger, state.Variables)
	}
	for _, c := range []struct {
		route, verb string
		role        auth.Role
		body        map[string]any
		want        command.Request
	}{
		{"/api/v1/runs/" + id + "/approve", command.Approve, auth.Approver,
			map[string]any{"stage": "Build", "action": "compile", "comment": "lgtm"},
			command.Request{Run: id, Pipeline: "held", Stage: "Build", Action: "compile", Comment: "lgtm", Actor: "api:approver"}},
		{"/api/v1/runs/" + id + "/reject", command.Reject, auth.Admin,
			map[string]any{"comment": "no"},
			command.Request{Run: id, Pipeline: "held", Comment: "no", Actor: "api:admin"}},
		{"/api/v1/runs/" + id + "/retry", command.Retry, auth.Operator,
			map[string]any{"stage": "Build", "all": true},
			command.Request{Run: id, Pipeline: "held", Stage: "Build", All: true, Actor: "api:operator"}},
		{"/api/v1/runs/" + id + "/stop", command.Stop, auth.Operator,
			map[string]any{"abandon": true, "reason": "enough"},
			command.Request{Run: id, Pipeline: "held", Abandon: true, Reason: "enough", Actor: "api:operator"}},
		{"/api/v1/pipelines/held/rollback", command.StageRollback, auth.Operator,
			map[string]any{"stage": "Ship", "to": id},
			command.Request{Pipeline: "held", Stage: "Ship", To: id, Actor: "api:operator"}},
		{"/api/v1/pipelines/held/stages/Ship/disable", command.StageDisable, auth.Operator,
			map[string]any{"reason": "freeze"},
			command.Request{Pipeline: "held", Stage: "Ship", Reason: "freeze", Actor: "api:operator"}},
		{"/api/v1/pipelines/held/stages/Ship/enable", command.StageEnable, auth.Operator, nil,
			command.Request{Pipeline: "held", Stage: "Ship", Actor: "api:operator"}},
	} {
		var body any
		if c.body != nil {
			body = c.body
		}
		r := e.do("POST", c.route, c.role, body)
		e.want(r, 200, c.route)
		var reply command.Reply
		r.json(t, &reply)
		if reply.Error != "" {
			t.Errorf("%s: reply %+v", c.route, reply)
		}
		if got := st.last(t, c.verb); got != c.want {
			t.Errorf("%s sent %+v, want %+v", c.route, got, c.want)
		}
	}
	// A refusal is 409 with the conductor's reason.
	r = e.do("POST", "/api/v1/runs/"+id+"/approve", auth.Approver, map[string]any{"comment": "refuse"})
	if r.status != 409 || !strings.Contains(string(r.body), "refused by the stub") {
		t.Errorf("refused approve: %d %s, want 409 with the reason", r.status, r.body)
	}
	before := st.count()
	for _, c := range []struct {
		path string
		body any
		want int
	}{
		{"/api/v1/runs/0197aaaa-0000-7000-8000-000000000000/approve", nil, 404},
		{"/api/v1/runs/" + id + "/approve", `{"stage": "Build", "typo": 1}`, 400},
		{"/api/v1/runs/" + id + "/approve", `not json`, 400},
		{"/api/v1/runs/" + id + "/retry", map[string]any{"stage": "a b"}, 400},
		{"/api/v1/runs/bad%20id/stop", nil, 400},
		{"/api/v1/pipelines/nope/rollback", map[string]any{"stage": "Ship"}, 404},
		{"/api/v1/pipelines/held/rollback", map[string]any{}, 400},
		{"/api/v1/pipelines/held/stages/Nope/disable", nil, 404},
		{"/api/v1/pipelines/nope/runs", nil, 404},
		{"/api/v1/pipelines/held/runs", map[string]any{"variables": map[string]string{"bad name": "x"}}, 400},
	} {
		r := e.do("POST", c.path, auth.Admin, c.body)
		if r.status != c.want {
			t.Errorf("POST %s %v: %d, want %d: %s", c.path, c.body, r.status, c.want, r.body)
		}
	}
	if n := st.count(); n != before {
		t.Errorf("%d requests reached the bus for refused calls", n-before)
	}
}
