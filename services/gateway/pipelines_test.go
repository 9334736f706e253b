package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/lanes"
	"github.com/gantry-ci/gantry/services/stack"
)

// TestPipelineFiles: validate answers every problem with line:column and
// field path; apply refuses an invalid file or one whose name is not the
// path's, stores a valid one as a new revision, and the list shows it.
func TestPipelineFiles(t *testing.T) {
	e := newEnv(t)
	bad := "name: held\nstages:\n  - name: Build\n    actions:\n      - name: compile\n        type: hold\n        runOrder: zero\n        colour: red\n"
	var v gateway.Validation
	r := e.do("POST", "/api/v1/pipelines/validate", auth.Viewer, bad)
	e.want(r, 200, "validate")
	r.json(t, &v)
	if v.Valid || len(v.Problems) != 2 {
		t.Fatalf("validate: %+v, want two problems", v)
	}
	for _, p := range v.Problems {
		if p.Line < 7 || p.Column == 0 || !strings.Contains(p.Path, "stages[0].actions[0]") || !strings.HasPrefix(p.Error, "pipeline.yaml:") {
			t.Errorf("problem %+v lacks line:column or field path", p)
		}
	}
	e.do("POST", "/api/v1/pipelines/validate", auth.Viewer, holdPipeline).json(t, &v)
	if !v.Valid || v.Pipeline != "held" || len(v.Problems) != 0 {
		t.Errorf("validate a good file: %+v", v)
	}
	r = e.do("PUT", "/api/v1/pipelines/held", auth.Admin, bad)
	if r.status != 400 || !strings.Contains(string(r.body), "held.yaml:7:") {
		t.Errorf("apply a bad file: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/api/v1/pipelines/other", auth.Admin, holdPipeline); r.status != 400 || !strings.Contains(string(r.body), "names pipeline") {
		t.Errorf("apply under another name: %d %s", r.status, r.body)
	}
	e.want(e.do("GET", "/api/v1/pipelines/held", auth.Viewer, nil), 404, "nothing applied")
	var a1, a2 gateway.Applied
	e.do("PUT", "/api/v1/pipelines/held", auth.Admin, holdPipeline).json(t, &a1)
	e.do("PUT", "/api/v1/pipelines/held", auth.Admin, holdPipeline).json(t, &a2)
	if a1.Stages != 2 || a2.Revision <= a1.Revision {
		t.Errorf("applied %+v then %+v", a1, a2)
	}
	var list []gateway.PipelineSummary
	e.do("GET", "/api/v1/pipelines", auth.Viewer, nil).json(t, &list)
	if len(list) != 1 || list[0].Pipeline != "held" || list[0].Revision != a2.Revision || strings.Join(list[0].Stages, ",") != "Build,Ship" {
		t.Errorf("list %+v", list)
	}
	// Without a conductor a command has no one to answer it.
	if r := e.do("POST", "/api/v1/pipelines/held/stages/Ship/disable", auth.Operator, nil); r.status != 503 {
		t.Errorf("a command nobody serves: %d %s, want 503", r.status, r.body)
	}
}

// webGroup is a deployment group document as `gantry deploy group apply -f`
// takes it.
const webGroup = `name: web
application: shop
selector: {role: web}
deploymentConfig: HalfAtATime
healthCheck: {url: "http://127.0.0.1:{{.Labels.port}}/healthz", expectedStatus: 200}
autoRollback: {enabled: true, events: [DEPLOYMENT_FAILURE]}
`

// TestGroupRoutes: PUT applies a group document (YAML or JSON) and GET
// reads it back with its live agents; a document naming another group, or
// with problems, is refused with each problem's line and field and
// nothing stored; an unknown group is a 404.
func TestGroupRoutes(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/api/v1/groups/web", auth.Viewer, nil)
	e.want(r, 404, "a group never applied")
	var nf struct{ Error, Hint string }
	r.json(t, &nf)
	if !strings.Contains(nf.Error, "deployment group not found: web") || !strings.Contains(nf.Hint, "GET /api/v1/groups") {
		t.Errorf("404 body %s does not say which group or what to do", r.body)
	}

	var a1 gateway.GroupApplied
	r = e.do("PUT", "/api/v1/groups/web", auth.Admin, webGroup)
	e.want(r, 200, "apply")
	r.json(t, &a1)
	if a1.Group != "web" || a1.Revision == 0 {
		t.Errorf("applied %+v", a1)
	}
	// Two agents of the group, one matching the selector; the group shows
	// only that one, as a deployment would target.
	ctx := context.Background()
	agents, err := e.conn.Bus.JetStream().KeyValue(ctx, events.BucketAgents)
	if err != nil {
		t.Fatal(err)
	}
	for host, role := range map[string]string{"h1": "web", "h2": "db"} {
		hb, _ := json.Marshal(agent.Info{Group: "web", Host: host, Labels: map[string]string{"role": role}})
		if _, err := agents.Put(ctx, events.AgentKey("web", host), hb); err != nil {
			t.Fatal(err)
		}
	}
	var g gateway.GroupDoc
	e.do("GET", "/api/v1/groups/web", auth.Viewer, nil).json(t, &g)
	if g.Name != "web" || g.Application != "shop" || g.DeploymentConfig != "HalfAtATime" || g.Selector["role"] != "web" ||
		g.HealthCheck == nil || g.HealthCheck.ExpectedStatus != 200 || !g.RollsBackOn(deploy.RollbackOnFailure) {
		t.Errorf("GET after PUT: %+v", g)
	}
	if len(g.Agents) != 1 || g.Agents[0].Host != "h1" {
		t.Errorf("live agents %+v, want h1 only", g.Agents)
	}

	// The same document as JSON, with another configuration, is the next
	// revision.
	doc := map[string]any{"name": "web", "application": "shop", "selector": map[string]string{"role": "web"},
		"deploymentConfig": "OneAtATime", "autoRollback": map[string]any{"enabled": false}}
	var a2 gateway.GroupApplied
	e.do("PUT", "/api/v1/groups/web", auth.Admin, doc).json(t, &a2)
	if a2.Revision <= a1.Revision {
		t.Errorf("applied %+v then %+v", a1, a2)
	}

	if r := e.do("PUT", "/api/v1/groups/other", auth.Admin, webGroup); r.status != 400 ||
		!strings.Contains(string(r.body), `the document names group \"web\", the path \"other\"`) {
		t.Errorf("apply under another name: %d %s", r.status, r.body)
	}
	bad := strings.Replace(webGroup, "expectedStatus: 200", "expectedStatus: 42", 1)
	bad = strings.Replace(bad, "DEPLOYMENT_FAILURE", "ON_FAILURE", 1)
	r = e.do("PUT", "/api/v1/groups/web", auth.Admin, bad)
	e.want(r, 400, "apply an invalid document")
	var refused struct {
		Error    string
		Problems []gateway.Problem
	}
	r.json(t, &refused)
	if len(refused.Problems) != 2 ||
		refused.Problems[0].Line != 5 || refused.Problems[0].Path != "healthCheck.expectedStatus" ||
		refused.Problems[1].Line != 6 || refused.Problems[1].Path != "autoRollback.events[0]" ||
		!strings.Contains(refused.Error, "web.yaml:5:") || !strings.Contains(refused.Error, "web.yaml:6:") {
		t.Errorf("invalid document: %s, want both problems with line and field", r.body)
	}
	r = e.do("PUT", "/api/v1/groups/web", auth.Admin, strings.Replace(webGroup, "selector:", "selectr:", 1))
	if r.status != 400 || !strings.Contains(string(r.body), "web.yaml:3:1: selectr: unknown field") {
		t.Errorf("unknown field: %d %s", r.status, r.body)
	}
	e.want(e.do("PUT", "/api/v1/groups/web", auth.Admin, ""), 400, "an empty document")
	e.want(e.do("PUT", "/api/v1/groups/a%20b", auth.Admin, webGroup), 400, "a bad group name")

	// Nothing refused was stored: the group is still the JSON revision.
	e.do("GET", "/api/v1/groups/web", auth.Viewer, nil).json(t, &g)
	if g.DeploymentConfig != "OneAtATime" || g.AutoRollback.Enabled {
		t.Errorf("after refused applies the group is %+v, want the last applied", g)
	}
	var list []gateway.GroupDoc
	e.do("GET", "/api/v1/groups", auth.Viewer, nil).json(t, &list)
	if len(list) != 1 || list[0].Name != "web" || len(list[0].Agents) != 1 {
		t.Errorf("list %+v", list)
	}
}

// TestDeploymentRoutes: groups list with their agents, deployments list
// and show, and a group rollback with nothing to roll back to.
func TestDeploymentRoutes(t *testing.T) {
	e := newEnv(t)
	grp := deploy.Group{Name: "web", Application: "shop", Selector: map[string]string{"role": "web"}, DeploymentConfig: "AllAtOnce"}
	if _, err := deploy.ApplyGroup(context.Background(), e.conn.Bus.JetStream(), grp); err != nil {
		t.Fatal(err)
	}
	var groups []gateway.GroupDoc
	e.do("GET", "/api/v1/groups", auth.Viewer, nil).json(t, &groups)
	if len(groups) != 1 || groups[0].Name != "web" || groups[0].Agents == nil {
		t.Errorf("groups %+v", groups)
	}
	if r := e.do("GET", "/api/v1/deployments?group=web", auth.Viewer, nil); r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("deployments: %d %s", r.status, r.body)
	}
	e.want(e.do("GET", "/api/v1/deployments/0197aaaa-0000-7000-8000-000000000000", auth.Viewer, nil), 404, "unknown deployment")
	e.want(e.do("POST", "/api/v1/groups/web/rollback", auth.Operator, nil), 409, "rollback with no good revision")
	e.want(e.do("POST", "/api/v1/groups/nope/rollback", auth.Operator, nil), 404, "rollback of an unknown group")
	e.want(e.do("GET", "/api/v1/deployments?group=a%20b", auth.Viewer, nil), 400, "bad group")

	// A succeeded deployment to roll back to: an agent's heartbeat, a
	// created deployment and its success, appended as the deploy service
	// and an agent would.
	ctx := context.Background()
	js := e.conn.Bus.JetStream()
	agents, err := js.KeyValue(ctx, events.BucketAgents)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := json.Marshal(agent.Info{Group: "web", Host: "h1", Labels: map[string]string{"role": "web"}})
	if _, err := agents.Put(ctx, events.AgentKey("web", "h1"), hb); err != nil {
		t.Fatal(err)
	}
	rev := events.ArtifactRef{Name: "app", Key: "p/r/app", SHA256: strings.Repeat("ab", 32), Size: 10}
	first, err := deploy.Create(ctx, e.conn.Bus, deploy.Request{Group: "web", Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.conn.Bus.Deploys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := events.New(events.DeployID(first.Deployment, "succeeded"), "test", first.Deployment, time.Now(),
		events.DeploymentSucceeded{Deployment: first.Deployment, Group: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Append(ctx, "web", ok, nil); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/api/v1/groups/web/rollback", auth.Operator, map[string]any{"to": first.Deployment})
	e.want(r, 202, "rollback")
	var rb gateway.Rolledback
	r.json(t, &rb)
	if rb.Revision != rev || rb.Group != "web" {
		t.Errorf("rollback %+v", rb)
	}
	var st struct {
		Created events.DeploymentCreated `json:"created"`
		Hosts   []struct{ Name string }  `json:"hosts"`
	}
	e.do("GET", "/api/v1/deployments/"+rb.Deployment, auth.Viewer, nil).json(t, &st)
	if st.Created.Actor != "api:operator" || st.Created.Deployment != rb.Deployment || len(st.Hosts) != 1 {
		t.Errorf("the rollback deployment %+v does not name its caller api:operator", st)
	}
	var list []struct {
		Created events.DeploymentCreated `json:"created"`
	}
	e.do("GET", "/api/v1/deployments?group=web", auth.Viewer, nil).json(t, &list)
	if len(list) != 2 || list[0].Created.Deployment != rb.Deployment {
		t.Errorf("deployments, newest first: %+v", list)
	}
	e.want(e.do("POST", "/api/v1/groups/web/rollback", auth.Operator, nil), 409, "rollback while one is in progress")
}

// TestStageTransitions: a transition disabled through the API by a real
// conductor reads back from GET /pipelines/{pipeline}/stages with who
// disabled it and why, and a run started meanwhile waits there; enabling
// it lets the run in.
func TestStageTransitions(t *testing.T) {
	e := newEnv(t, stack.RoleConductor, stack.RoleTriggers, stack.RoleProjector)
	e.want(e.do("PUT", "/api/v1/pipelines/held", auth.Admin, holdPipeline), 200, "apply")
	stages := func() lanes.Stages {
		var s lanes.Stages
		r := e.do("GET", "/api/v1/pipelines/held/stages", auth.Viewer, nil)
		e.want(r, 200, "stages")
		r.json(t, &s)
		return s
	}
	s := stages()
	if s.ExecutionMode != events.ModeSuperseded || len(s.Stages) != 2 || s.Stages[0].Stage != "Build" || s.Stages[1].Transition != "enabled" {
		t.Fatalf("stages of a fresh pipeline: %+v", s)
	}
	e.want(e.do("POST", "/api/v1/pipelines/held/stages/Build/disable", auth.Operator, map[string]any{"reason": "freeze"}), 200, "disable")
	s = stages()
	if b := s.Stages[0]; b.Transition != "disabled" || b.DisabledBy != "api:operator" || b.Reason != "freeze" || b.Since == "" {
		t.Fatalf("after disable, Build is %+v", b)
	}
	var started gateway.Started
	r := e.do("POST", "/api/v1/pipelines/held/runs", auth.Operator, nil)
	e.want(r, 202, "start")
	r.json(t, &started)
	e.eventually("the run to wait before Build", func() bool {
		w := stages().Stages[0].Waiting
		return len(w) == 1 && w[0] == started.Run
	})
	e.want(e.do("POST", "/api/v1/pipelines/held/stages/Build/enable", auth.Operator, nil), 200, "enable")
	e.eventually("the run to enter Build", func() bool {
		b := stages().Stages[0]
		return b.Transition == "enabled" && len(b.Waiting) == 0 && len(b.In) == 1 && b.In[0] == started.Run
	})
	if r := e.do("GET", "/api/v1/pipelines/nope/stages", auth.Viewer, nil); r.status != 404 {
		t.Errorf("stages of an unknown pipeline: %d %s, want 404", r.status, r.body)
	}
}
