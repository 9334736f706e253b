package deploy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploy/deploytest"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/deployplan"
	"github.com/gantry-ci/gantry/services/internal/proctest"
	"github.com/gantry-ci/gantry/services/rollback"
	"github.com/gantry-ci/gantry/services/worker"
)

// serverBin is this test binary, which deploytest.MaybeServe turns into
// the file server the test revisions' ApplicationStart hook runs.
var serverBin string

func TestMain(m *testing.M) {
	deploytest.MaybeServe()
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	serverBin = exe
	os.Exit(m.Run())
}

// world is one test's server, services and agents.
type world struct {
	t      *testing.T
	ctx    context.Context
	bus    *bus.Bus
	store  *artifact.Store
	agents map[string]*testAgent
	wg     sync.WaitGroup

	heartbeatTimeout time.Duration
	stopService      func()
	stopRollback     func()
}

// startRollback runs a rollback service until the returned stop is called
// or the test ends.
func (w *world) startRollback() (stop func()) {
	log := zerolog.New(zerolog.NewTestWriter(w.t)).Level(zerolog.WarnLevel)
	rb := &rollback.Service{Bus: w.bus, Log: log}
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	w.wg.Go(func() { defer close(done); _ = rb.Run(ctx) })
	return func() { cancel(); <-done }
}

// startService runs a deploy service until the returned stop is called or
// the test ends.
func (w *world) startService() (stop func()) {
	w.t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(w.t)).Level(zerolog.WarnLevel)
	svc, err := deploy.New(deploy.Options{Bus: w.bus, Log: log, HeartbeatTimeout: w.heartbeatTimeout, CheckEvery: 200 * time.Millisecond})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	w.wg.Go(func() { defer close(done); _ = svc.Run(ctx) })
	return func() { cancel(); <-done }
}

type testAgent struct {
	name, root string
	port       int
	cancel     context.CancelFunc
	done       chan struct{}
}

func newWorld(t *testing.T, heartbeatTimeout time.Duration) *world {
	t.Helper()
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	nc, err := bus.Connect(srv.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(nc, codec)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(ctx, bus.Config{}); err != nil {
		t.Fatal(err)
	}
	store, err := artifact.OpenStore(ctx, b.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: ctx, bus: b, store: store, agents: map[string]*testAgent{}}
	w.heartbeatTimeout = heartbeatTimeout
	w.stopService = w.startService()
	w.stopRollback = w.startRollback()
	t.Cleanup(func() {
		cancel()
		for _, a := range w.agents {
			a.cancel()
			<-a.done
			killServer(a)
		}
		w.wg.Wait()
		nc.Close()
	})
	return w
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (w *world) startAgent(name string, labels map[string]string) *testAgent {
	w.t.Helper()
	root := w.t.TempDir()
	port := freePort(w.t)
	all := map[string]string{"port": strconv.Itoa(port), "server": serverBin}
	for k, v := range labels {
		all[k] = v
	}
	a, err := agent.New(agent.Options{Bus: w.bus, Log: zerolog.New(zerolog.NewTestWriter(w.t)).Level(zerolog.WarnLevel),
		Group: "web", Name: name, Root: root, Labels: all, InstallRoot: filepath.Join(root, "fs"),
		Heartbeat: 200 * time.Millisecond, AckWait: 3 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	ta := &testAgent{name: name, root: root, port: port, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(ta.done); _ = a.Run(ctx) }()
	w.agents[name] = ta
	return ta
}

// killServer stops the test HTTP server a deployment left running.
func killServer(a *testAgent) {
	b, err := os.ReadFile(deploytest.PidFile(filepath.Join(a.root, "fs")))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// bundle stores a revision whose /healthz answers version. validate is the
// ValidateService script's body; before the BeforeInstall script's.
func (w *world) bundle(version, before, validate string, beforeTimeout int) events.ArtifactRef {
	w.t.Helper()
	rev := deploytest.Revision{Version: version, Before: before, Validate: validate, BeforeTimeout: beforeTimeout}
	ref, err := rev.Store(w.ctx, w.store, w.t.TempDir(), "shop", "build-"+version, "app")
	if err != nil {
		w.t.Fatal(err)
	}
	return ref
}

func (w *world) applyGroup(cfg string, health bool) {
	w.t.Helper()
	g := deploy.Group{Name: "web", Application: "shop", DeploymentConfig: cfg,
		AutoRollback: deploy.AutoRollback{Enabled: true, Events: []string{deploy.RollbackOnFailure}}}
	if health {
		g.HealthCheck = &events.HealthCheck{URL: "http://127.0.0.1:{{.Labels.port}}/healthz", ExpectedStatus: 200, HealthyThreshold: 1, TimeoutSeconds: 30}
	}
	if _, err := deploy.ApplyGroup(w.ctx, w.bus.JetStream(), g); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) create(rev events.ArtifactRef) string {
	w.t.Helper()
	c, err := deploy.Create(w.ctx, w.bus, deploy.Request{Group: "web", Revision: rev})
	if err != nil {
		w.t.Fatal(err)
	}
	return c.Deployment
}

// createWhenFree creates a deployment, waiting for the one in progress on
// the group to end if there is one.
func (w *world) createWhenFree(req deploy.Request) events.DeploymentCreated {
	w.t.Helper()
	for {
		c, err := deploy.Create(w.ctx, w.bus, req)
		var busy *deploy.BusyError
		if errors.As(err, &busy) {
			w.wait(busy.Active, 30*time.Second)
			continue
		}
		if err != nil {
			w.t.Fatal(err)
		}
		return c
	}
}

// until polls a deployment until ok holds and returns that state; what
// names the awaited condition in the failure.
func (w *world) until(id, what string, within time.Duration, ok func(deploydecider.State) bool) deploydecider.State {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := deploy.Load(w.ctx, w.bus, id)
		if err != nil && !errors.Is(err, bus.ErrNoDeployment) {
			w.t.Fatal(err)
		}
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("deployment %s: %s did not happen within %s: %+v", id, what, within, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wait polls a deployment until it ends.
func (w *world) wait(id string, within time.Duration) deploydecider.State {
	w.t.Helper()
	return w.until(id, "its end", within, func(st deploydecider.State) bool { return st.Phase.Ended() })
}

// waitStep waits until a host's latest lifecycle event is event.
func (w *world) waitStep(id, host, event string) {
	w.t.Helper()
	w.until(id, host+" in "+event, 15*time.Second, func(st deploydecider.State) bool {
		h := st.Host(host)
		return h != nil && len(h.Steps) > 0 && h.Steps[len(h.Steps)-1].Event == event
	})
}

// rollbackInfo waits for the rollback service's answer on a deployment.
func (w *world) rollbackInfo(id string) deploydecider.RollbackInfo {
	w.t.Helper()
	return *w.until(id, "a rollback answer", 15*time.Second, func(st deploydecider.State) bool { return st.RollbackInfo != nil }).RollbackInfo
}

func (w *world) serves(a *testAgent) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", a.port))
	if err != nil {
		return "down: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func waitAgents(t *testing.T, w *world, n int) {
	t.Helper()
	g, err := deploy.GetGroup(w.ctx, w.bus.JetStream(), "web")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := deploy.Agents(w.ctx, w.bus.JetStream(), g, time.Minute, time.Now())
		if err == nil && len(as) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d agents registered, want %d", len(as), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDeployRollbackFiveAgents(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("OneAtATime", true)
	hosts := []string{"h1", "h2", "h3", "h4", "h5"}
	for _, h := range hosts {
		labels := map[string]string{}
		if h == "h2" {
			labels["badv2"] = "yes"
		}
		w.startAgent(h, labels)
	}
	waitAgents(t, w, 5)
	v1 := w.bundle("v1", "true", "exit 0", 10)
	v2 := w.bundle("v2", "true", `if [ "${GANTRY_LABEL_BADV2:-}" = yes ]; then echo "v2 does not validate here"; exit 3; fi`, 10)

	d1 := w.create(v1)
	st := w.wait(d1, 90*time.Second)
	t.Logf("v1 took %s", st.Ended.Sub(st.Started))
	for _, h := range st.Hosts {
		for _, s := range h.Steps {
			if s.Duration > 0.3 {
				t.Logf("%s %s %s %.2fs", h.Name, s.Event, s.Status, s.Duration)
			}
		}
	}
	if st.Phase != deploydecider.Succeeded {
		t.Fatalf("v1: %s: %s; hosts %+v", st.Phase, st.Reason, st.Statuses())
	}
	for _, h := range hosts {
		if got := w.serves(w.agents[h]); got != "v1" {
			t.Errorf("after v1, %s serves %q", h, got)
		}
	}

	d2 := w.create(v2)
	st = w.wait(d2, 90*time.Second)
	if st.Phase != deploydecider.Failed {
		t.Fatalf("v2: %s, want Failed", st.Phase)
	}
	want := map[string]deployplan.HostStatus{"h1": deployplan.Succeeded, "h2": deployplan.Failed,
		"h3": deployplan.Skipped, "h4": deployplan.Skipped, "h5": deployplan.Skipped}
	for h, s := range want {
		if got := st.Host(h).Status; got != s {
			t.Errorf("v2: %s is %s, want %s", h, got, s)
		}
	}
	for _, h := range []string{"h3", "h4", "h5"} {
		if n := len(st.Host(h).Steps); n != 0 {
			t.Errorf("v2 touched %s: %d lifecycle events", h, n)
		}
	}
	var failedStep *deploydecider.Step
	for i, s := range st.Host("h2").Steps {
		if s.Status == events.StepFailed {
			failedStep = &st.Host("h2").Steps[i]
		}
	}
	if failedStep == nil || failedStep.Event != "ValidateService" || failedStep.ExitCode != 3 || !strings.Contains(failedStep.LogTail, "does not validate") {
		t.Errorf("h2's failed step: %+v", failedStep)
	}

	// The rollback service redeploys v1.
	var rb deploydecider.State
	deadline := time.Now().Add(10 * time.Second)
	for rb.Phase == "" {
		all, err := deploy.List(w.ctx, w.bus, "web")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if s.Created.RollbackOf == d2 {
				rb = s
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no rollback deployment was created")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rb.Created.Revision != v1 {
		t.Errorf("rollback deploys %s, want v1 %s", rb.Created.Revision.Key, v1.Key)
	}
	st = w.wait(rb.ID(), 120*time.Second)
	if st.Phase != deploydecider.Succeeded {
		t.Fatalf("rollback: %s: %s", st.Phase, st.Reason)
	}
	for _, h := range hosts {
		if got := w.serves(w.agents[h]); got != "v1" {
			t.Errorf("after the rollback, %s serves %q", h, got)
		}
	}
	// A rollback is never rolled back, and there is exactly one.
	all, err := deploy.List(w.ctx, w.bus, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("%d deployments in the group, want 3 (v1, v2, rollback)", len(all))
	}
	// The failed deployment says which deployment rolled it back.
	if ri := w.rollbackInfo(d2); ri.Deployment != rb.ID() || ri.Revision != v1.Key {
		t.Errorf("v2's rollback info %+v, want deployment %s revision %s", ri, rb.ID(), v1.Key)
	}
}

// TestRollbackOutcomesAreRecorded: a first deployment that fails has
// nothing to roll back to; a rollback that fails is reported on itself and
// not rolled back; both answers are events on the deployments.
func TestRollbackOutcomesAreRecorded(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("OneAtATime", false)
	a := w.startAgent("h1", nil)
	waitAgents(t, w, 1)

	d0 := w.create(w.bundle("v0", "exit 0", "exit 3", 0))
	if st := w.wait(d0, 30*time.Second); st.Phase != deploydecider.Failed {
		t.Fatalf("v0: %s, want Failed", st.Phase)
	}
	if ri := w.rollbackInfo(d0); ri.Deployment != "" || !strings.Contains(ri.Message, "nothing to roll back to") {
		t.Errorf("first failure: %+v, want nothing to roll back to", ri)
	}

	// v1 validates only while the host has no file named broken.
	v1 := w.bundle("v1", "exit 0", `if [ -e "$GANTRY_BUNDLE_DIR/../../broken" ]; then echo host is broken; exit 4; fi`, 0)
	v1vars := map[string]string{"VERSION": "1.0.0"}
	c1, err := deploy.Create(w.ctx, w.bus, deploy.Request{Group: "web", Revision: v1, Variables: v1vars})
	if err != nil {
		t.Fatal(err)
	}
	d1 := c1.Deployment
	if st := w.wait(d1, 30*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("v1: %s: %s", st.Phase, st.Reason)
	}
	if err := os.WriteFile(filepath.Join(a.root, "broken"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d2 := w.create(w.bundle("v2", "exit 0", "exit 3", 0))
	if st := w.wait(d2, 30*time.Second); st.Phase != deploydecider.Failed {
		t.Fatalf("v2: %s, want Failed", st.Phase)
	}
	ri := w.rollbackInfo(d2)
	if ri.Deployment == "" || ri.Revision != v1.Key {
		t.Fatalf("v2's rollback: %+v, want a deployment of %s", ri, v1.Key)
	}
	st := w.wait(ri.Deployment, 30*time.Second)
	if st.Phase != deploydecider.Failed {
		t.Fatalf("the rollback: %s, want Failed (the host is broken)", st.Phase)
	}
	if !maps.Equal(st.Created.Variables, v1vars) {
		t.Errorf("the rollback deploys v1 with variables %v, want v1's %v", st.Created.Variables, v1vars)
	}
	if rri := w.rollbackInfo(ri.Deployment); rri.Deployment != "" || !strings.Contains(rri.Message, "not rolled back again") {
		t.Errorf("the failed rollback's answer: %+v", rri)
	}
	all, err := deploy.List(w.ctx, w.bus, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Errorf("%d deployments, want 4 (v0, v1, v2, the rollback): a failed rollback was retried", len(all))
	}
}

func TestDeadAgentFailsItsHost(t *testing.T) {
	w := newWorld(t, time.Second)
	w.applyGroup("OneAtATime", false)
	w.startAgent("h1", nil)
	w.startAgent("h2", nil)
	waitAgents(t, w, 2)
	slow := w.bundle("slow", "echo $$ > \"$GANTRY_BUNDLE_DIR/../sleeper.pid\"; sleep 60", "exit 0", 120)
	id := w.create(slow)
	// Wait until h1 is inside BeforeInstall, then kill its agent.
	w.waitStep(id, "h1", "BeforeInstall")
	a := w.agents["h1"]
	a.cancel()
	<-a.done
	start := time.Now()
	st := w.wait(id, 15*time.Second)
	if st.Phase != deploydecider.Failed {
		t.Fatalf("%s, want Failed", st.Phase)
	}
	h := st.Host("h1")
	if h.Status != deployplan.Failed || !strings.Contains(h.Reason, "heartbeat") {
		t.Errorf("h1: %s %q", h.Status, h.Reason)
	}
	t.Logf("deployment failed %s after the agent died", time.Since(start).Round(100*time.Millisecond))
	// The hook's process group was killed with the agent.
	if b, err := os.ReadFile(filepath.Join(a.root, "revisions", "sleeper.pid")); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid > 0 && proctest.Alive(pid) {
			t.Errorf("the hook %d still runs", pid)
		}
	}
}

func TestBadBundlesAreRefused(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
	w.startAgent("h1", nil)
	waitAgents(t, w, 1)
	good := w.bundle("v1", "true", "exit 0", 10)
	altered := good
	altered.SHA256 = strings.Repeat("0", 64)

	// A tarball with a ../ path, stored as is.
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("pwned")
	_ = tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	_, _ = tw.Write(body)
	_ = tw.Close()
	_ = gz.Close()
	obj, err := w.store.Put(w.ctx, events.ArtifactKey("shop", events.ActionRef{Run: "evil", Stage: "build", Action: "build", Attempt: 1}, "u1", "app"), &buf)
	if err != nil {
		t.Fatal(err)
	}
	evil := obj.Ref("app")

	for _, c := range []struct {
		name string
		ref  events.ArtifactRef
		want string
	}{
		{"altered digest", altered, "digest mismatch"},
		{"path escaping the bundle", evil, "unsafe path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := w.wait(w.create(c.ref), 20*time.Second)
			if st.Phase != deploydecider.Failed {
				t.Fatalf("%s, want Failed", st.Phase)
			}
			h := st.Host("h1")
			if h.Status != deployplan.Failed || !strings.Contains(h.Reason, c.want) {
				t.Errorf("h1: %s %q, want a reason with %q", h.Status, h.Reason, c.want)
			}
			var saw bool
			for _, s := range h.Steps {
				if s.Event == "DownloadBundle" && s.Status == events.StepFailed && strings.Contains(s.LogTail, c.want) {
					saw = true
				}
			}
			if !saw {
				t.Errorf("no failed DownloadBundle event with %q: %+v", c.want, h.Steps)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(w.agents["h1"].root), "evil")); err == nil {
				t.Error("the bundle wrote outside the revision directory")
			}
		})
	}
}

func TestPipelineDeployAction(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", true)
	w.startAgent("h1", nil)
	w.startAgent("h2", nil)
	waitAgents(t, w, 2)
	// The good revision validates only with the run's variable.
	good := w.bundle("v7", "true", `test "$VERSION" = 7.0.1 || { echo "VERSION is '$VERSION'"; exit 5; }`, 10)
	bad := w.bundle("v8", "true", "echo nope; exit 1", 10)

	wk, err := worker.New(worker.Options{Bus: w.bus, Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Kind: deploy.TaskKind, Pool: "default", Handler: &deploy.Action{Bus: w.bus}, WorkDir: t.TempDir(), AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.wg.Go(func() { _ = wk.Run(w.ctx) })

	slow := w.bundle("slow", "sleep 2", "exit 0", 10)
	for _, c := range []struct {
		name     string
		rev      events.ArtifactRef
		succeeds bool
		busy     bool // another deployment is in progress on the group
	}{{"waits for the deployment in progress", good, true, true}, {"succeeds with its deployment", good, true, false}, {"fails with its deployment", bad, false, false}} {
		t.Run(c.name, func(t *testing.T) {
			var blocker string
			if c.busy {
				blocker = w.create(slow)
				w.waitStep(blocker, "h1", "BeforeInstall")
			}
			run := events.RunIDForTrigger(c.name, time.Now().UnixMilli())
			task := events.Task{ID: events.TaskID(run, "Prod", "deploy", 1), Pipeline: "shop", Run: run, Stage: "Prod",
				Action: "deploy", Attempt: 1, Kind: deploy.TaskKind, Pool: "default",
				Configuration: map[string]string{"group": "web"}, Inputs: []events.ArtifactRef{c.rev},
				Variables: map[string]string{"VERSION": "7.0.1", "GANTRY_RUN_ID": run}}
			data, err := json.Marshal(task)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.bus.PublishTask(w.ctx, task, data); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
			defer cancel()
			var result events.Payload
			err = w.bus.WatchRun(ctx, "shop", run, func(e events.Event) bool {
				switch e.Payload.(type) {
				case events.ActionSucceeded, events.ActionFailed:
					result = e.Payload
					return false
				}
				return true
			})
			if err != nil {
				t.Fatalf("watch the run: %v", err)
			}
			id := deploy.DeploymentIDForTask(task)
			st, err := deploy.Load(w.ctx, w.bus, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.Created.Trigger == nil || st.Created.Trigger.Run != run || st.Created.Trigger.Action != "deploy" {
				t.Errorf("deployment trigger %+v", st.Created.Trigger)
			}
			if v := st.Created.Variables; v["VERSION"] != "7.0.1" || v["GANTRY_RUN_ID"] != run {
				t.Errorf("deployment variables %v, want the task's", v)
			}
			if blocker != "" {
				b, err := deploy.Load(w.ctx, w.bus, blocker)
				if err != nil {
					t.Fatal(err)
				}
				if b.Phase != deploydecider.Succeeded || st.CreatedSeq < b.EndSeq {
					t.Errorf("the action's deployment was created at %d, the one in progress (%s) ended at %d: want after it", st.CreatedSeq, b.Phase, b.EndSeq)
				}
			}
			switch p := result.(type) {
			case events.ActionSucceeded:
				if !c.succeeds || p.Variables["DEPLOYMENT_ID"] != id || st.Phase != deploydecider.Succeeded {
					t.Errorf("action succeeded with %v; deployment %s", p.Variables, st.Phase)
				}
			case events.ActionFailed:
				if c.succeeds || !strings.Contains(p.Reason, "deployment failed") {
					t.Errorf("action failed: %s", p.Reason)
				}
			}
		})
	}
}

func TestAlarmStopsDeploymentAndRollsBack(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	g := deploy.Group{Name: "web", Application: "shop", DeploymentConfig: "OneAtATime", Alarms: []string{"error-rate"},
		AutoRollback: deploy.AutoRollback{Enabled: true, Events: []string{deploy.RollbackOnAlarm}}}
	if _, err := deploy.ApplyGroup(w.ctx, w.bus.JetStream(), g); err != nil {
		t.Fatal(err)
	}
	w.startAgent("h1", nil)
	w.startAgent("h2", nil)
	waitAgents(t, w, 2)
	v1 := w.bundle("v1", "true", "exit 0", 10)
	if st := w.wait(w.create(v1), 60*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("v1: %s %s", st.Phase, st.Reason)
	}
	slow := w.bundle("slow", "sleep 2", "exit 0", 30)
	id := w.create(slow)
	// An alarm the group does not list changes nothing.
	if err := deploy.RaiseAlarm(w.ctx, w.bus, deploy.Alarm{Group: "web", Name: "disk", Reason: "disk full"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := deploy.RaiseAlarm(w.ctx, w.bus, deploy.Alarm{Group: "web", Name: "error-rate", Reason: "5xx above 5%"}); err != nil {
		t.Fatal(err)
	}
	st := w.wait(id, 15*time.Second)
	t.Logf("stopped after %s", st.Ended.Sub(st.Started))
	if st.Phase != deploydecider.Stopped || !st.Rollback || !strings.Contains(st.Reason, "error-rate") {
		t.Fatalf("%s rollback=%v %q, want Stopped by the error-rate alarm with rollback", st.Phase, st.Rollback, st.Reason)
	}
	if got := st.Host("h2").Status; got != deployplan.Skipped {
		t.Errorf("h2 is %s, want Skipped", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		all, err := deploy.List(w.ctx, w.bus, "web")
		if err != nil {
			t.Fatal(err)
		}
		var rb *deploydecider.State
		for i := range all {
			if all[i].Created.RollbackOf == id {
				rb = &all[i]
			}
		}
		if rb != nil && rb.Phase.Ended() {
			t.Logf("rollback took %s", rb.Ended.Sub(rb.Started))
			if rb.Phase != deploydecider.Succeeded || rb.Created.Revision != v1 {
				t.Fatalf("rollback %s of %s", rb.Phase, rb.Created.Revision.Key)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no finished rollback")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, h := range []string{"h1", "h2"} {
		// h1's hook was still running when the deployment stopped; the
		// rollback waits for it, then both hosts serve v1.
		deadline := time.Now().Add(10 * time.Second)
		for w.serves(w.agents[h]) != "v1" && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if got := w.serves(w.agents[h]); got != "v1" {
			t.Errorf("%s serves %q after the rollback", h, got)
		}
	}
	// Stopping an ended deployment is refused.
	if err := deploy.Stop(w.ctx, w.bus, id, "again", false); !errors.Is(err, deploy.ErrEnded) {
		t.Errorf("Stop of an ended deployment: %v, want ErrEnded", err)
	}
}

// TestRestartedServiceFailsDeadHost: the deploy service and an agent die
// mid-deployment; a new deploy service learns the deployment from the log
// and fails the dead agent's host, though no new event arrives.
func TestRestartedServiceFailsDeadHost(t *testing.T) {
	w := newWorld(t, time.Second)
	w.applyGroup("OneAtATime", false)
	w.startAgent("h1", nil)
	w.startAgent("h2", nil)
	waitAgents(t, w, 2)
	id := w.create(w.bundle("slow", "sleep 60", "exit 0", 120))
	w.waitStep(id, "h1", "BeforeInstall")
	w.stopService()
	a := w.agents["h1"]
	a.cancel()
	<-a.done
	time.Sleep(2 * time.Second) // the heartbeat expires with no service watching
	w.stopService = w.startService()
	st := w.wait(id, 20*time.Second)
	if st.Phase != deploydecider.Failed || st.Host("h1").Status != deployplan.Failed {
		t.Fatalf("%s, h1 %s, want both failed", st.Phase, st.Host("h1").Status)
	}
}

// TestRefusedMessageDoesNotWedgeDeployment: a message that is not an event
// lands on a deployment's subject before the service decides anything. The
// service dead-letters it and must still append its decisions after it
// (expecting the subject's real tip, not its last event), and a stop must
// still land.
func TestRefusedMessageDoesNotWedgeDeployment(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
	w.startAgent("h1", nil)
	w.startAgent("h2", nil)
	waitAgents(t, w, 2)
	w.stopService()
	id := w.create(w.bundle("v1", "exit 0", "exit 0", 0))
	if _, err := w.bus.JetStream().Publish(w.ctx, events.DeploySubject("web", id), []byte(`{"not":"an event"}`)); err != nil {
		t.Fatal(err)
	}
	w.stopService = w.startService()
	if st := w.wait(id, 20*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("%s, want Succeeded: %+v", st.Phase, st)
	}
	dlq, err := w.bus.JetStream().Stream(w.ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetLastMsgForSubject(w.ctx, events.DLQSubject(events.StreamDeploys))
	if err != nil {
		t.Fatalf("the refused message is not in the dead-letter stream: %v", err)
	}
	if m.Header.Get(bus.HeaderOrigSubject) != events.DeploySubject("web", id) || m.Header.Get(bus.HeaderReason) == "" {
		t.Errorf("dead letter headers %v", m.Header)
	}

	// A stop behind a refused message: the second deployment sleeps in
	// BeforeInstall; garbage lands on its subject; Stop must still append.
	id2 := w.create(w.bundle("slow", "sleep 30", "exit 0", 60))
	w.waitStep(id2, "h1", "BeforeInstall")
	w.stopService()
	if _, err := w.bus.JetStream().Publish(w.ctx, events.DeploySubject("web", id2), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if err := deploy.Stop(w.ctx, w.bus, id2, "test stops it", false); err != nil {
		t.Fatalf("stop behind a refused message: %v", err)
	}
	w.stopService = w.startService()
	if st := w.wait(id2, 20*time.Second); st.Phase != deploydecider.Stopped {
		t.Fatalf("%s, want Stopped", st.Phase)
	}
}

// TestIgnoreApplicationStopFailures: a host whose installed revision's
// ApplicationStop script is broken fails every deployment, unless the
// deployment ignores ApplicationStop failures; then the failed step is
// recorded and the host goes on.
func TestIgnoreApplicationStopFailures(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
	a := w.startAgent("h1", nil)
	waitAgents(t, w, 1)
	d1 := w.create(w.bundle("v1", "exit 0", "exit 0", 0))
	if st := w.wait(d1, 30*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("v1: %s: %s", st.Phase, st.Reason)
	}
	// Someone broke the stop script of the revision the host runs.
	if err := os.WriteFile(filepath.Join(a.root, "revisions", d1, "scripts", "stop.sh"), []byte("#!/bin/sh\necho cannot stop >&2\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v2 := w.bundle("v2", "exit 0", "exit 0", 0)
	d2 := w.create(v2)
	st := w.wait(d2, 30*time.Second)
	if st.Phase != deploydecider.Failed || !strings.Contains(st.Host("h1").Reason, "ApplicationStop") {
		t.Fatalf("v2 without the flag: %s, h1 %q; want Failed at ApplicationStop", st.Phase, st.Host("h1").Reason)
	}
	// d2's failure races this deployment: the rollback service may roll d2
	// back first (that rollback fails at the same ApplicationStop), or see
	// this newer deployment and not roll back. Either way this one runs
	// after, as a pipeline's deploy action does, and the group ends on v2.
	c := w.createWhenFree(deploy.Request{Group: "web", Revision: v2, IgnoreApplicationStopFailures: true})
	st = w.wait(c.Deployment, 30*time.Second)
	if st.Phase != deploydecider.Succeeded {
		t.Fatalf("v2 ignoring ApplicationStop failures: %s: %s", st.Phase, st.Reason)
	}
	var stop *deploydecider.Step
	for i, s := range st.Host("h1").Steps {
		if s.Event == "ApplicationStop" && s.Status != events.StepStarted {
			stop = &st.Host("h1").Steps[i]
		}
	}
	if stop == nil || stop.Status != events.StepFailed || stop.ExitCode != 7 || !strings.Contains(stop.LogTail, "cannot stop") {
		t.Errorf("the ignored ApplicationStop step: %+v, want failed with exit 7 and its output", stop)
	}
	if got := w.serves(a); got != "v2" {
		t.Errorf("h1 serves %q, want v2", got)
	}
	// v2's stop script works, so a rollback to v1 needs no flag; break it
	// too and roll back by hand with the flag, as `gantry rollback
	// --to D1 --ignore-application-stop-failures` does.
	if err := os.WriteFile(filepath.Join(a.root, "revisions", c.Deployment, "scripts", "stop.sh"), []byte("#!/bin/sh\nexit 9\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rb, err := rollback.Rollback(w.ctx, w.bus, rollback.Request{Group: "web", To: d1, IgnoreApplicationStopFailures: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := w.wait(rb.Deployment, 30*time.Second); st.Phase != deploydecider.Succeeded || !st.Created.IgnoreApplicationStopFailures || st.Created.RollbackOf != d1 {
		t.Fatalf("rollback to v1 ignoring ApplicationStop failures: %s %q, created %+v", st.Phase, st.Reason, st.Created)
	}
	if got := w.serves(a); got != "v1" {
		t.Errorf("after the rollback h1 serves %q, want v1", got)
	}
}

// TestRefusedAlarmSaysWhy: an alarm naming an invalid group goes to the
// dead-letter stream with a reason that names the problem (it read
// "unreadable alarm: <nil>").
func TestRefusedAlarmSaysWhy(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	// The alarm consumer delivers new alarms only: wait for it.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := w.bus.JetStream().Consumer(w.ctx, events.StreamAlarms, deploy.DurableAlarms); err == nil {
			break
		} else if time.Since(start) > 10*time.Second {
			t.Fatalf("no alarm consumer: %v", err)
		}
	}
	if _, err := w.bus.JetStream().Publish(w.ctx, events.AlarmSubject("web"), []byte(`{"group":"no such group!"}`)); err != nil {
		t.Fatal(err)
	}
	dlq, err := w.bus.JetStream().Stream(w.ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := dlq.GetLastMsgForSubject(w.ctx, events.DLQSubject(events.StreamAlarms))
		if err == nil {
			reason := m.Header.Get(bus.HeaderReason)
			if strings.Contains(reason, "<nil>") || !strings.Contains(reason, `"no such group!"`) {
				t.Fatalf("dead letter reason %q: want one naming the invalid group", reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused alarm is not in the dead-letter stream: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOldFailureDoesNotRollBackOverNewer is the rollback race of issue 7:
// a deployment fails, a newer one starts, and only then does the rollback
// service handle the failure (it lagged, or the failure was redelivered).
// Rolling back to the last known good would undo the newer deployment (the
// rollback ran after it and the group ended on the old revision); the
// failure must be answered instead, and the group stay on the newer
// revision. While the newer one runs, no other deployment may start on the
// group.
func TestOldFailureDoesNotRollBackOverNewer(t *testing.T) {
	w := newWorld(t, 5*time.Second)
	w.applyGroup("AllAtOnce", false)
	a := w.startAgent("h1", nil)
	waitAgents(t, w, 1)
	v0 := w.bundle("v0", "exit 0", "exit 0", 0)
	d0 := w.create(v0)
	if st := w.wait(d0, 30*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("v0: %s: %s", st.Phase, st.Reason)
	}
	w.stopRollback()
	d1 := w.create(w.bundle("v1", "exit 0", "exit 3", 0))
	if st := w.wait(d1, 30*time.Second); st.Phase != deploydecider.Failed {
		t.Fatalf("v1: %s, want Failed", st.Phase)
	}
	d2 := w.create(w.bundle("v2", "sleep 2", "exit 0", 30))
	w.waitStep(d2, "h1", "BeforeInstall")
	// Serialised: nothing else starts while d2 runs, and the refusal names it.
	_, err := deploy.Create(w.ctx, w.bus, deploy.Request{Group: "web", Revision: v0})
	var busy *deploy.BusyError
	if !errors.As(err, &busy) || busy.Active != d2 || !errors.Is(err, deploy.ErrGroupBusy) || !strings.Contains(err.Error(), d2) {
		t.Fatalf("a deployment while %s runs: %v, want ErrGroupBusy naming it", d2, err)
	}
	w.stopRollback = w.startRollback() // handles d1's failure now
	ri := w.rollbackInfo(d1)
	if ri.Deployment != "" || !strings.Contains(ri.Message, "not rolled back") || !strings.Contains(ri.Message, d2) {
		t.Errorf("d1's rollback answer: %+v, want no rollback because of the newer %s", ri, d2)
	}
	if st := w.wait(d2, 30*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("v2: %s: %s", st.Phase, st.Reason)
	}
	// Give a wrong rollback time to be created and to run.
	time.Sleep(time.Second)
	all, err := deploy.List(w.ctx, w.bus, "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range all {
		if st.Created.RollbackOf != "" {
			t.Errorf("rollback %s of %s to %s was created over the newer %s", st.ID(), st.Created.RollbackOf, st.Created.Revision.Key, d2)
		}
	}
	if st := w.wait(all[len(all)-1].ID(), 30*time.Second); st.Phase != deploydecider.Succeeded {
		t.Errorf("last deployment %s: %s", st.ID(), st.Phase)
	}
	if got := w.serves(a); got != "v2" {
		t.Errorf("h1 serves %q, want v2, the newest deployment", got)
	}
}
