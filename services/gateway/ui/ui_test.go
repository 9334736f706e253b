package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/lanes"
)

// fakeReader serves fixed states; runs are r0999 (newest) … r0000.
type fakeReader struct {
	runs  []run.State
	holds map[string]lanes.Hold
}

func (f fakeReader) Stages(_ context.Context, p string) (lanes.Stages, error) {
	if p != "app" {
		return lanes.Stages{}, fmt.Errorf("%w: pipeline %q", ErrNotFound, p)
	}
	return lanes.Stages{Pipeline: "app", ExecutionMode: "QUEUED", Stages: []lanes.StageRow{
		{Stage: "build", Transition: "enabled", In: []string{"r0999"}, Waiting: []string{"r0998"}},
		{Stage: "gate", Transition: "disabled", DisabledBy: "alice@laptop", Since: "2026-12-01T03:00:00Z", Reason: "<freeze>", In: []string{}, Waiting: []string{}},
	}}, nil
}

func (f fakeReader) Hold(_ context.Context, st run.State) (lanes.Hold, bool) {
	h, ok := f.holds[st.Run]
	return h, ok
}

func (f fakeReader) Pipelines(context.Context) ([]PipelineSummary, error) {
	return []PipelineSummary{{Name: "app", Revision: 3, Stages: 3, Latest: &f.runs[0], Runs: len(f.runs)}, {Name: "idle"}}, nil
}

func (f fakeReader) Runs(_ context.Context, p string, limit int, cursor string) (RunsPage, error) {
	pg := RunsPage{Total: len(f.runs)}
	start := 0
	for i, r := range f.runs {
		if r.Run == cursor {
			start = i + 1
		}
	}
	end := min(start+limit, len(f.runs))
	pg.Runs = f.runs[start:end]
	if end < len(f.runs) {
		pg.Next = f.runs[end-1].Run
	}
	return pg, nil
}

func (f fakeReader) Run(_ context.Context, id string) (run.State, error) {
	for _, r := range f.runs {
		if r.Run == id {
			return r, nil
		}
	}
	return run.State{}, fmt.Errorf("%w: run %q", ErrNotFound, id)
}

func (f fakeReader) Deployments(context.Context, string, int) ([]deploydecider.State, error) {
	return []deploydecider.State{{Created: events.DeploymentCreated{Deployment: "d1", Group: "web",
		Trigger: &events.DeploymentTrigger{Pipeline: "app", Run: "r0007", Stage: "deploy", Action: "ship", Attempt: 1}}, Phase: deploydecider.InProgress}}, nil
}

func (f fakeReader) Deployment(_ context.Context, id string) (deploydecider.State, error) {
	if id != "d1" {
		return deploydecider.State{}, ErrNotFound
	}
	return deploydecider.State{
		Created: events.DeploymentCreated{Deployment: "d1", Group: "web", Application: "shop", Revision: events.ArtifactRef{Name: "bundle.tgz"},
			Trigger: &events.DeploymentTrigger{Pipeline: "app", Run: "r0007", Stage: "deploy", Action: "ship"}},
		Phase: deploydecider.InProgress,
		Hosts: []*deploydecider.Host{{Name: "web-1", Status: "InProgress", Steps: []deploydecider.Step{
			{Event: "BeforeInstall", Status: "succeeded", Duration: 1.5},
			{Event: "ApplicationStart", Status: "Failed", ExitCode: 3, LogTail: "port <busy>"},
		}}},
	}, nil
}

func sampleRun(id string) run.State {
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	return run.State{
		Run: id, Pipeline: "app", Phase: run.Running, RequestedAt: t0, StartedAt: t0,
		Definition: events.Definition{Name: "app", Stages: []events.StageDef{
			{Name: "build", Actions: []events.ActionDef{{Name: "compile", Type: "build", RunOrder: 1}, {Name: "lint", Type: "build", RunOrder: 1}, {Name: "package", Type: "build", RunOrder: 2}}},
			{Name: "gate", Actions: []events.ActionDef{{Name: "ok", Type: "approval", RunOrder: 1}}},
			{Name: "deploy", Actions: []events.ActionDef{{Name: "ship", Type: "deploy", RunOrder: 1, Configuration: map[string]string{"group": "web"}}}},
		}},
		Stages: []run.Stage{
			{Name: "build", Phase: run.Succeeded, StartedAt: t0, EndedAt: t0.Add(3 * time.Second), Actions: []run.Action{
				{Name: "compile", Type: "build", RunOrder: 1, Phase: run.Succeeded, Outputs: []events.ArtifactRef{{Name: "bin", Size: 2048}}},
				{Name: "lint", Type: "build", RunOrder: 1, Phase: run.Succeeded},
				{Name: "package", Type: "build", RunOrder: 2, Phase: run.Succeeded},
			}},
			{Name: "gate", Phase: run.Running, Attempt: 1, StartedAt: t0.Add(3 * time.Second),
				Checks: []run.Check{{When: "beforeEntry", Rule: "no-alarms", Type: "NoActiveAlarm", Attempt: 1, Evaluated: true, Passed: true}}, Actions: []run.Action{{Name: "ok", Type: "approval", RunOrder: 1, Phase: run.Dispatched, Approval: &run.Approval{Instructions: "Ship <it>?"}}}},
		},
		Artifacts: map[string]events.ArtifactRef{"bin": {Name: "bin", Size: 2048, SHA256: "abcdef0123456789"}},
	}
}

func newTestServer(t *testing.T, auth func(context.Context, string) (string, error)) *httptest.Server {
	t.Helper()
	f := fakeReader{}
	for i := 999; i >= 0; i-- {
		f.runs = append(f.runs, sampleRun(fmt.Sprintf("r%04d", i)))
	}
	// r0007 got to its deploy stage, whose action made deployment d1.
	r7 := &f.runs[999-7]
	r7.Stages = append(r7.Stages, run.Stage{Name: "deploy", Phase: run.Running, Actions: []run.Action{{Name: "ship", Type: "deploy", RunOrder: 1, Phase: run.Running}}})
	// r0008 waits before the gate: its transition is disabled.
	f.holds = map[string]lanes.Hold{"r0008": {Run: "r0008", Stage: "gate", Disabled: &lanes.Transition{Actor: "alice@laptop", Reason: "<freeze>"}}}
	srv := httptest.NewServer(Handler(Config{Reader: f, Authenticate: auth, Now: func() time.Time { return time.Date(2026, 12, 1, 3, 1, 0, 0, time.UTC) }}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

func TestPages(t *testing.T) {
	srv := newTestServer(t, nil)
	c := srv.Client()
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"/ui/", 200, []string{`href="/ui/runs/r0999"`, "phase-Running", "1000 runs", "never ran"}},
		{"/ui/pipelines/app", 200, []string{"1000 runs in the log", "r0999", "r0950", `cursor=r0950`,
			"execution mode QUEUED", `data-act="disable" data-stage="build"`, `id="reason-build"`, `data-act="enable" data-stage="gate"`,
			"by alice@laptop since 2026-12-01T03:00:00Z: &lt;freeze&gt;", `waits for build`}},
		{"/ui/pipelines/app?limit=10&cursor=r0950", 200, []string{"r0949", "r0940", "cursor=r0940", "« Newest"}},
		{"/ui/pipelines/app?limit=x", 400, []string{"limit"}},
		{"/ui/runs/r0005", 200, []string{`data-stage="gate"`, `data-act="approve"`, `data-act="reject"`, "Ship &lt;it&gt;?", "beforeEntry no-alarms", `data-act="stop"`, `data-act="abandon"`, `aria-label="runOrder 2"`, `/api/v1/runs/r0005/artifacts/bin`, "dev.gantry.stage.started", "Roll back build"}},
		{"/ui/runs/r0007", 200, []string{`deployment <a href="/ui/deployments/d1">`}},
		{"/ui/runs/r0005/live", 200, []string{`data-phase="Running"`, `data-act="approve"`}},
		{"/ui/runs/r0008/live", 200, []string{`<p class="hold" role="status">waits to enter gate: the transition is disabled by alice@laptop: &lt;freeze&gt;</p>`}},
		{"/ui/runs/nope", 404, []string{"not found"}},
		{"/ui/deployments", 200, []string{`/ui/deployments/d1`}},
		{"/ui/deployments/d1", 200, []string{"web-1", "ApplicationStart", "port &lt;busy&gt;", `badge phase-Succeeded">Succeeded`, "bundle.tgz", `href="/ui/runs/r0007"`}},
		{"/ui/login?failed=1&next=/ui/runs/r0001", 200, []string{"That token is not valid.", `value="/ui/runs/r0001"`}},
		{"/ui/static/gantry.js", 200, []string{"EventSource"}},
		{"/ui/static/gantry.css", 200, []string{".phase-Succeeded"}},
	} {
		status, body, _ := get(t, c, srv.URL+tc.path)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.path, status, tc.status)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: body lacks %q", tc.path, w)
			}
		}
	}
	// The first history page holds exactly PageSize runs.
	_, body, _ := get(t, c, srv.URL+"/ui/pipelines/app")
	_, history, _ := strings.Cut(body, "<h2>History</h2>") // after the stages' links to their runs
	if n := strings.Count(history, `href="/ui/runs/`); n != 50 {
		t.Errorf("first page links %d runs, want 50", n)
	}
}

// TestPagesNeedAToken: without a token a page sends the browser to the
// sign-in form (which posts to the gateway's POST /ui/login and comes back);
// the token cookie or a bearer header lets it in; a wrong one does not.
func TestPagesNeedAToken(t *testing.T) {
	srv := newTestServer(t, func(_ context.Context, tok string) (string, error) {
		if tok == "good" {
			return "alice", nil
		}
		return "", errors.New("unknown token")
	})
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tc := range []struct {
		name   string
		set    func(*http.Request)
		status int
	}{
		{"no token", func(*http.Request) {}, http.StatusSeeOther},
		{"wrong cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: auth.CookieToken, Value: "bad"}) }, http.StatusSeeOther},
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: auth.CookieToken, Value: "good"}) }, http.StatusOK},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer good") }, http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/ui/runs/r0001?x=1", nil)
		tc.set(req)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, res.StatusCode, tc.status)
		}
		if tc.status == http.StatusSeeOther {
			if loc := res.Header.Get("Location"); loc != "/ui/login?next="+url.QueryEscape("/ui/runs/r0001?x=1") {
				t.Errorf("%s: sent to %q, want the sign-in form coming back to the run", tc.name, loc)
			}
		} else if !strings.Contains(string(body), "Signed in as <strong>alice</strong>") {
			t.Errorf("%s: the page does not name the caller", tc.name)
		}
	}
	// The form keeps where to go back to, but only on this site.
	for next, want := range map[string]string{"/ui/runs/r0001": `value="/ui/runs/r0001"`, "//evil.example/": `value="/ui/"`, "https://evil.example/": `value="/ui/"`} {
		status, body, _ := get(t, c, srv.URL+"/ui/login?next="+url.QueryEscape(next))
		if status != 200 || !strings.Contains(body, `action="/ui/login"`) || !strings.Contains(body, want) {
			t.Errorf("login form for next=%s: status %d, want the form with %s", next, status, want)
		}
	}
}

func TestLayout(t *testing.T) {
	st := sampleRun("r1")
	g := layout(st)
	if len(g.Columns) != 3 || len(g.Edges) != 2 || g.Edges[0] != (edge{"build", "gate"}) {
		t.Fatalf("sequential layout: %d columns, edges %v", len(g.Columns), g.Edges)
	}
	if b := g.Columns[0][0]; len(b.Groups) != 2 || len(b.Groups[0].Actions) != 2 || b.Groups[1].RunOrder != 2 {
		t.Errorf("build stage groups %+v: want runOrder 1 (two actions) then 2", b.Groups)
	}
	// A not-started stage shows its defined actions.
	if d := g.Columns[2][0]; d.Name != "deploy" || d.Phase != run.NotStarted || len(d.Groups) != 1 {
		t.Errorf("deploy stage %+v", d)
	}
}

func TestLayoutFollowsDependsOn(t *testing.T) {
	// dependsOn is read from the definition's JSON; a stand-in type carries it.
	st := run.State{}
	type stageWithDeps struct {
		events.StageDef
		DependsOn []string `json:"dependsOn,omitempty"`
	}
	deps := map[string][]string{"unit": {"build"}, "lint": {"build"}, "deploy": {"unit", "lint"}}
	for _, n := range []string{"build", "unit", "lint", "deploy"} {
		st.Definition.Stages = append(st.Definition.Stages, events.StageDef{Name: n})
	}
	cols := map[string]int{}
	// layout reads dependsOn through dependsOnOf, which the test points at the stand-in.
	g := layoutWith(st, func(sd events.StageDef) any { return stageWithDeps{sd, deps[sd.Name]} })
	for i, c := range g.Columns {
		for _, s := range c {
			cols[s.Name] = i
		}
	}
	if cols["build"] != 0 || cols["unit"] != 1 || cols["lint"] != 1 || cols["deploy"] != 2 {
		t.Errorf("columns %v: want build 0, unit and lint 1, deploy 2", cols)
	}
	if len(g.Edges) != 4 {
		t.Errorf("edges %v: want 4 following dependsOn", g.Edges)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 runs", 1: "1 run", 2: "2 runs", 1000: "1000 runs"} {
		if got := count(n, "run"); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
