package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
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
}
