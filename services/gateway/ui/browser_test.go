package ui_test

// The browser test: real headless Chromium, driven with chromedp, against
// the UI served over a live stack (embedded JetStream, conductor,
// projector, triggers, source and build workers). It skips only where no
// Chromium binary is installed (.ci/run installs Debian's chromium).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/gateway/ui"
	"github.com/gantry-ci/gantry/services/pipelinefile"
	"github.com/gantry-ci/gantry/services/source"
	"github.com/gantry-ci/gantry/services/stack"
)

// screenshot, when set, is where TestBrowserRunPage saves a PNG of the run
// page (docs/img/run-page.png is made with it; see docs/ui.md).
var screenshot = flag.String("screenshot", "", "save a PNG of the run page here")

const token = "browser-test-token"

// chromium finds a Chromium or Chrome binary, "" if there is none.
func chromium() string {
	if p := os.Getenv("GANTRY_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// liveStack starts JetStream and the services a build-and-approve pipeline
// needs, in this process, and returns the connection.
func liveStack(t *testing.T, ctx context.Context) (*stack.Conn, string) {
	t.Helper()
	srv := natstest.Start(t)
	conn, err := stack.Open(ctx, stack.Target{URL: srv.ClientURL()}, "ui-browser-test", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	repos := t.TempDir()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	var roles []stack.Role
	for _, name := range []string{stack.RoleConductor, stack.RoleProjector, stack.RoleTriggers, stack.RoleSource, stack.RoleBuild} {
		r, err := stack.NewRole(conn, name, log, stack.RoleOptions{ReposDir: repos, WorkDir: t.TempDir(), Concurrency: 2})
		if err != nil {
			t.Fatal(err)
		}
		roles = append(roles, r)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stack.RunRoles(rctx, roles) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("services: %v", err)
		}
	})
	return conn, repos
}

// seedRepo makes the git repository the pipeline checks out: a build that
// prints a line, then waits until the test opens the run's gate (a file
// named after the run in gates), so the page sees it running however
// slowly the browser starts on a loaded machine.
func seedRepo(t *testing.T, ctx context.Context, repos, gates string) {
	t.Helper()
	dir := filepath.Join(repos, "app")
	files := map[string]string{
		"build.yml": fmt.Sprintf(`version: 0.2
phases:
  build:
    commands:
      - echo "hello from the build"
      - for i in $(seq 600); do [ -e %q/"$RUN_GATE" ] && break; sleep 0.1; done
      - echo "build finished"
`, gates),
		"release.yml": `version: 0.2
phases:
  build:
    commands:
      - echo "released"
`,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "--quiet", "--initial-branch=main"}, {"add", "--all"}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "app"}} {
		if err := stack.Git(ctx, dir, args...); err != nil {
			t.Fatal(err)
		}
	}
}

const pipelineYAML = `name: webapp
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [src]
        configuration: {repository: app, branch: main}
  - name: Build
    actions:
      - name: compile
        type: build
        inputs: [src]
        configuration: {buildspec: build.yml, env.RUN_GATE: "#{pipeline.runId}"}
  - name: Approve
    actions:
      - name: go-live
        type: approval
        configuration: {instructions: "Ship it?"}
  - name: Release
    actions:
      - name: publish
        type: build
        inputs: [src]
        configuration: {buildspec: release.yml}
`

func TestBrowserRunPage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser and a live stack (about fifteen seconds)")
	}
	bin := chromium()
	if bin == "" {
		t.Skip("no Chromium binary found (install Debian's chromium, as .ci/run does, or set GANTRY_CHROMIUM)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, repos := liveStack(t, ctx)
	gates := t.TempDir()
	seedRepo(t, ctx, repos, gates)
	// openGate lets run id's build finish.
	openGate := func(id string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(gates, id), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	def, err := pipelinefile.Parse("pipeline.yaml", []byte(pipelineYAML))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := conn.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (source.Pipelines{KV: kv}).Put(ctx, def); err != nil {
		t.Fatal(err)
	}

	// The real gateway, with the UI mounted as the gateway mounts it.
	token, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tokens := auth.Static(auth.Entry{Name: "tester", Roles: []auth.Role{auth.Operator, auth.Approver}, SHA256: auth.Hash(token)})
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	gw, err := gateway.New(gateway.Options{Bus: conn.Bus, Validator: conn.Validator, Tokens: tokens, Log: log, Insecure: true,
		UI: ui.Handler(ui.Config{Reader: ui.BusReader{Bus: conn.Bus}, Authenticate: ui.TokenCheck(tokens), Log: log})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithCancel(ctx)
	gdone := make(chan error, 1)
	go func() { gdone <- gw.Run(gctx, ln) }()
	defer func() {
		gcancel()
		if err := <-gdone; err != nil {
			t.Errorf("gateway: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	runID, err := source.Publish(ctx, conn.Bus.JetStream(), conn.Validator, source.Trigger{
		ID: fmt.Sprintf("browser-%d", time.Now().UnixNano()), Pipeline: "webapp", Kind: "manual", Actor: "browser test"})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the run's log exists, so the page has something to draw.
	waitUntil(t, ctx, "the run to be requested", func() bool {
		_, err := conn.Bus.FindRun(ctx, runID)
		return err == nil
	})

	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1400, 900))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	// Sign in with the token, then open the run page while the run runs.
	runURL := base + "/ui/runs/" + runID
	// A wrong token first: the gateway sends the browser back to the form.
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/ui/runs/"+runID),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "gantry_wrong"),
		chromedp.Submit(chromedp.CSS(`#token`)),
		chromedp.WaitVisible(chromedp.CSS(`p.error`)),
	); err != nil {
		t.Fatalf("sign in with a wrong token: %v", err)
	}
	if msg, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("p.error").textContent`)); err != nil || msg != "That token is not valid." {
		t.Errorf("after a wrong token the page says %q (%v)", msg, err)
	}
	if err := chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), token),
		chromedp.Submit(chromedp.CSS(`#token`)),
		chromedp.WaitVisible(chromedp.CSS(`#graph`)),
	); err != nil {
		t.Fatalf("sign in and open %s: %v", runURL, err)
	}
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != runURL {
		t.Fatalf("after sign-in the browser is at %q (%v), want the run page %s", loc, err, runURL)
	}
	// A marker on the window: if the page reloaded, it is gone.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.gantryNoReload = 42`)); err != nil {
		t.Fatal(err)
	}
	// When the page first showed each stage and run status, in the
	// browser's clock (this machine's): compared with the events' times
	// at the end, it is how far the page lags the log.
	// What the page shows already is noted as 0: no update to time.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.gantrySeen = {};
		const gantryNote = at => {
			const note = k => { if (!(k in window.gantrySeen)) window.gantrySeen[k] = at(); };
			document.querySelectorAll("section.stage").forEach(s => note(s.dataset.stage + "=" + s.dataset.phase));
			const h = document.querySelector(".run-head");
			if (h) note("run=" + h.dataset.phase);
		};
		gantryNote(() => 0);
		new MutationObserver(() => gantryNote(Date.now)).observe(document, {subtree: true, childList: true, attributes: true});
		true`)); err != nil {
		t.Fatal(err)
	}
	noReload := func() {
		t.Helper()
		if v, err := chromedp.Run(bctx, chromedp.Evaluate[int](`window.gantryNoReload || 0`)); err != nil || v != 42 {
			t.Fatalf("the page reloaded (marker %d, %v); updates must come without a reload", v, err)
		}
	}
	phase := func(sel string) string {
		p, _ := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset.phase || ""`, sel)))
		return p
	}
	// show says what the page and the log say, for a wait that timed out.
	show := func(id string) func() string {
		return func() string {
			dctx := context.WithoutCancel(bctx)
			page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("section.stage")).map(s => s.dataset.stage + "=" + s.dataset.phase).join(" ") +
				" | live=" + (document.getElementById("run") || {dataset: {}}).dataset.live + " | " + (document.getElementById("conn") || {}).textContent + " | flash=" + (document.getElementById("flash") || {}).textContent`))
			evs, _ := conn.Bus.ReadRun(context.Background(), "webapp", id, 0)
			st := run.Fold(run.State{}, evs...)
			var log []string
			for _, s := range st.Stages {
				log = append(log, s.Name+"="+string(s.Phase))
			}
			html, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`(document.getElementById("graph") || document.body).outerHTML.slice(0, 3000)`))
			return fmt.Sprintf("(page: %s; log: run %s, %s)\npage html: %s", page, st.Phase, strings.Join(log, " "), html)
		}
	}
	// Each stage's status changes on the page as the run goes; record what
	// the Build stage shows, polling the DOM only.
	var seen []string
	waitShowing(t, ctx, "the Build stage to show Running", func() bool {
		p := phase(`section.stage[data-stage="Build"]`)
		if len(seen) == 0 || seen[len(seen)-1] != p {
			seen = append(seen, p)
		}
		return p == "Running"
	}, func() string { return fmt.Sprintf("(Build showed %q) %s", seen, show(runID)()) })
	noReload()
	if live, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("run").dataset.live || ""`)); err != nil || live != "sse" {
		t.Errorf("the page follows the run with %q (%v), want its SSE", live, err)
	}

	// Open the compile action's live log and see a line arrive.
	if err := click(ctx, bctx, `li.action[data-stage="Build"][data-action="compile"] button.select`); err != nil {
		t.Fatal(err)
	}
	waitShowing(t, ctx, "a line in the live log of Build/compile", func() bool {
		text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("log-lines").textContent`))
		return strings.Contains(text, "hello from the build")
	}, show(runID))
	openGate(runID)
	waitShowing(t, ctx, "the Build stage to show Succeeded", func() bool {
		p := phase(`section.stage[data-stage="Build"]`)
		if seen[len(seen)-1] != p {
			seen = append(seen, p)
		}
		return p == "Succeeded"
	}, show(runID))
	waitShowing(t, ctx, "the log pane to say the action ended", func() bool {
		st, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("log-state").textContent`))
		return st == "ended: Succeeded"
	}, show(runID))
	if seen[0] == "Succeeded" {
		t.Errorf("the Build stage was Succeeded at first paint (%v): nothing changed live", seen)
	}
	noReload()

	// The approval waits; approve it with the button on the action.
	approve := `li.action[data-stage="Approve"][data-action="go-live"] button[data-act="approve"]`
	if err := chromedp.Do(bctx,
		chromedp.WaitVisible(chromedp.CSS(approve)),
		chromedp.SendKeys(chromedp.CSS(`#comment-Approve-go-live`), "looks good"),
	); err != nil {
		t.Fatalf("approve button: %v", err)
	}
	if *screenshot != "" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := click(ctx, bctx, approve); err != nil {
		t.Fatal(err)
	}
	waitShowing(t, ctx, "the run to show Succeeded after the approval", func() bool {
		if p := phase(`.run-head`); p == "Failed" || p == "Stopped" {
			flash, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("flash").textContent`))
			t.Fatalf("the run ended %s (page says %q)", p, flash)
		}
		return phase(`.run-head`) == "Succeeded" && phase(`section.stage[data-stage="Release"]`) == "Succeeded"
	}, func() string {
		flash, _ := chromedp.Run(context.WithoutCancel(bctx), chromedp.Evaluate[string](`document.getElementById("flash").textContent`))
		return fmt.Sprintf("(run %q, Approve %q, page says %q)", phase(`.run-head`), phase(`section.stage[data-stage="Approve"]`), flash)
	})
	logLag(t, ctx, bctx, conn, runID)
	noReload()
	// The approval names its caller and comment in the log.
	evs, err := conn.Bus.ReadRun(ctx, "webapp", runID, 0)
	if err != nil {
		t.Fatal(err)
	}
	approved := 0
	for _, e := range evs {
		a, ok := e.Payload.(events.ActionApproved)
		if p, isPtr := e.Payload.(*events.ActionApproved); isPtr {
			a, ok = *p, true
		}
		if ok {
			approved++
			if a.Actor != "api:tester" || a.Comment != "looks good" || a.Stage != "Approve" || a.Action != "go-live" {
				t.Errorf("approval %+v: want Approve/go-live by api:tester with the comment", a)
			}
		}
	}
	if approved != 1 {
		t.Errorf("%d approvals in the log, want 1", approved)
	}

	// A second run, stopped with the Stop button while it builds.
	run2, err := source.Publish(ctx, conn.Bus.JetStream(), conn.Validator, source.Trigger{
		ID: fmt.Sprintf("browser-stop-%d", time.Now().UnixNano()), Pipeline: "webapp", Kind: "manual", Actor: "browser test"})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the second run to be requested", func() bool {
		_, err := conn.Bus.FindRun(ctx, run2)
		return err == nil
	})
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/ui/runs/"+run2)); err != nil {
		t.Fatal(err)
	}
	waitShowing(t, ctx, "the second run's Build stage to show Running", func() bool {
		return phase(`section.stage[data-stage="Build"]`) == "Running"
	}, show(run2))
	if err := click(ctx, bctx, `button[data-act="stop"]`); err != nil {
		t.Fatal(err)
	}
	// The stop is recorded while the build still runs (its gate is shut):
	// the run shows Stopping, then the build may finish.
	waitShowing(t, ctx, "the second run to show Stopping", func() bool {
		return phase(`.run-head`) == "Stopping"
	}, show(run2))
	openGate(run2)
	waitShowing(t, ctx, "the second run to show Stopped", func() bool {
		return phase(`.run-head`) == "Stopped"
	}, func() string {
		flash, _ := chromedp.Run(context.WithoutCancel(bctx), chromedp.Evaluate[string](`document.getElementById("flash").textContent`))
		return fmt.Sprintf("(run %q, page says %q)", phase(`.run-head`), flash)
	})
	if p := phase(`section.stage[data-stage="Approve"]`); p != "Pending" {
		t.Errorf("after the stop the Approve stage shows %q, want Pending (never started)", p)
	}

	// The pipeline's page disables the transition into Release with a
	// reason, shows who did it, and enables it again.
	transition := func() string {
		v, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.querySelector('#stages tr[data-stage="Release"]') || {dataset: {}}).dataset.transition || ""`))
		return v
	}
	if err := chromedp.Do(bctx,
		chromedp.Navigate(base+"/ui/pipelines/webapp"),
		chromedp.WaitVisible(chromedp.CSS(`#reason-Release`)),
		chromedp.SendKeys(chromedp.CSS(`#reason-Release`), "release freeze"),
	); err != nil {
		t.Fatalf("the pipeline page's stages: %v", err)
	}
	if err := click(ctx, bctx, `#stages button[data-act="disable"][data-stage="Release"]`); err != nil {
		t.Fatal(err)
	}
	waitShowing(t, ctx, "the Release transition to show disabled", func() bool { return transition() == "disabled" }, func() string {
		text, _ := chromedp.Run(context.WithoutCancel(bctx), chromedp.Evaluate[string](`(document.getElementById("stages") || document.body).innerText`))
		return text
	})
	if text, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector('#stages tr[data-stage="Release"]').innerText`)); !strings.Contains(text, "by api:tester") || !strings.Contains(text, "release freeze") {
		t.Errorf("the disabled Release row says %q, want who (api:tester) and why", text)
	}
	if err := click(ctx, bctx, `#stages button[data-act="enable"][data-stage="Release"]`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the Release transition to show enabled", func() bool { return transition() == "enabled" })

	// Sign out: the run page asks for a token again.
	if err := chromedp.Do(bctx,
		chromedp.Click(chromedp.CSS(`header.top form button`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.Navigate(runURL),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
	); err != nil {
		t.Fatalf("sign out: %v", err)
	}
}

// logLag reports how long after each stage's and the run's status event
// the page showed it (the UI should follow within a second). It is a
// measurement, logged for the record, not a pass/fail bound: timing
// goals live in benchmarks.
func logLag(t *testing.T, ctx, bctx context.Context, conn *stack.Conn, runID string) {
	t.Helper()
	seen, err := chromedp.Run(bctx, chromedp.Evaluate[map[string]int64](`window.gantrySeen`))
	if err != nil {
		t.Errorf("read the page's timings: %v", err)
		return
	}
	evs, err := conn.Bus.ReadRun(ctx, "webapp", runID, 0)
	if err != nil {
		t.Errorf("read the run: %v", err)
		return
	}
	var lags []string
	var worst time.Duration
	for _, e := range evs {
		var key string
		switch p := e.Payload.(type) {
		case events.StageStarted:
			key = p.Stage + "=Running"
		case events.StageSucceeded:
			key = p.Stage + "=Succeeded"
		case events.RunSucceeded:
			key = "run=Succeeded"
		default:
			continue
		}
		at, ok := seen[key]
		if !ok || at == 0 {
			continue // never shown while watched, or shown already when the watch began
		}
		lag := time.UnixMilli(at).Sub(e.Time)
		worst = max(worst, lag)
		lags = append(lags, fmt.Sprintf("%s %dms", key, lag.Milliseconds()))
	}
	if len(lags) == 0 {
		t.Errorf("the page showed none of the run's status events while watched (seen %v)", seen)
		return
	}
	t.Logf("live update lag (page shown minus event time): worst %dms; %s", worst.Milliseconds(), strings.Join(lags, ", "))
}

// click clicks the element sel selects like a person would (a mouse event
// at its place). The run page swaps its live part when an event arrives,
// which can replace the element between finding it and clicking it; then
// the click is tried again on the new one.
func click(ctx, bctx context.Context, sel string) error {
	var err error
	for range 20 {
		if err = chromedp.Do(bctx, chromedp.Click(chromedp.CSS(sel))); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("click %s: %w", sel, err)
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	waitShowing(t, ctx, what, cond, func() string { return "" })
}

// waitShowing is waitUntil that says what show returns when it times out.
// It gives up 30 s before ctx ends, while the browser (which ends with
// ctx) can still say what it shows.
func waitShowing(t *testing.T, ctx context.Context, what string, cond func() bool, show func() string) {
	t.Helper()
	wctx := ctx
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
		defer cancel()
	}
	for !cond() {
		select {
		case <-wctx.Done():
			t.Fatalf("timed out waiting for %s %s", what, show())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
