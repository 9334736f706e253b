package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploy/deploytest"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/deployplan"
)

// web is a deployment world: the CD services and n agents, all processes.
type web struct {
	*env
	group string
	ports map[string]int
	roots map[string]string
	procs map[string]*proc
}

func newWeb(t *testing.T, group, config string, n int, heartbeatTimeout string) *web {
	t.Helper()
	e := newEnv(t)
	e.start("deploy-service", "deploy-service", "--heartbeat-timeout", heartbeatTimeout)
	e.start("rollback-service", "rollback-service")
	e.start("projector", "projector")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	w := &web{env: e, group: group, ports: map[string]int{}, roots: map[string]string{}, procs: map[string]*proc{}}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("web-%d", i)
		root := t.TempDir()
		port := freePort(t)
		w.ports[name], w.roots[name] = port, root
		w.procs[name] = e.start("agent "+name, "agent", "--group", group, "--name", name, "--root", root,
			"--install-root", filepath.Join(root, "fs"), "--label", "port="+strconv.Itoa(port), "--label", "server="+self,
			"--heartbeat", "300ms")
		t.Cleanup(func() { stopPidFile(deploytest.PidFile(filepath.Join(root, "fs"))) })
	}
	f := filepath.Join(t.TempDir(), "group.yaml")
	doc := fmt.Sprintf(`name: %s
application: web
deploymentConfig: %s
healthCheck:
  url: http://127.0.0.1:{{.Labels.port}}/version
  expectedStatus: 200
  healthyThreshold: 1
  timeoutSeconds: 20
autoRollback:
  enabled: true
  events: [DEPLOYMENT_FAILURE]
`, group, config)
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, code := e.gantry("deploy", "group", "apply", "-f", f); code != 0 {
		t.Fatal("group apply failed")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, err := deploy.GetGroup(context.Background(), e.bus.JetStream(), group)
		if err != nil {
			t.Fatal(err)
		}
		live, err := deploy.Agents(context.Background(), e.bus.JetStream(), g, time.Minute, time.Now())
		if err == nil && len(live) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d agents registered", len(live), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return w
}

func freePort(t *testing.T) int {
	t.Helper()
	ports := (&env{t: t}).agentsPorts(1)
	return ports[0]
}

// revision stores a bundle serving version; before and validate are the
// bodies of the BeforeInstall and ValidateService scripts.
func (w *web) revision(version, before, validate string) events.ArtifactRef {
	w.t.Helper()
	store, err := artifact.OpenStore(context.Background(), w.bus.JetStream())
	if err != nil {
		w.t.Fatal(err)
	}
	rev := deploytest.Revision{Version: version, Before: before, Validate: validate}
	ref, err := rev.Store(context.Background(), store, w.t.TempDir(), "web", "build-"+version, "app")
	if err != nil {
		w.t.Fatal(err)
	}
	return ref
}

func (w *web) deploy(rev events.ArtifactRef) string {
	w.t.Helper()
	c, err := deploy.Create(context.Background(), w.bus, deploy.Request{Group: w.group, Revision: rev})
	if err != nil {
		w.t.Fatal(err)
	}
	return c.Deployment
}

func (w *web) waitDeployment(id string, within time.Duration) deploydecider.State {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := deploy.Load(context.Background(), w.bus, id)
		if err == nil && st.Phase != deploydecider.InProgress {
			return st
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("deployment %s did not end within %s", id, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *web) serves(host string) string {
	got, err := get(fmt.Sprintf("http://127.0.0.1:%d/version", w.ports[host]))
	if err != nil {
		return "unreachable"
	}
	return got
}

// Five agent processes: v1 deploys one at a time and every host serves it;
// v2's ValidateService fails on the second host, the deployment fails
// without touching hosts 3-5, and the automatic rollback restores v1 on the
// hosts it touched; every host answers v1 over HTTP at the end.
func TestDeployAndRollbackOnFiveAgentProcesses(t *testing.T) {
	w := newWeb(t, "web", "OneAtATime", 5, "10s")
	v1 := w.deploy(w.revision("v1", "true", "true"))
	if st := w.waitDeployment(v1, 60*time.Second); st.Phase != deploydecider.Succeeded {
		t.Fatalf("v1: %s %s", st.Phase, st.Reason)
	}
	for h := range w.ports {
		if got := w.serves(h); got != "v1" {
			t.Fatalf("after v1 %s serves %q", h, got)
		}
	}
	v2 := w.deploy(w.revision("v2", "true", `[ "$GANTRY_HOST" != web-2 ] || { echo "validation failed on $GANTRY_HOST" >&2; exit 3; }`))
	st := w.waitDeployment(v2, 60*time.Second)
	if st.Phase != deploydecider.Failed {
		t.Fatalf("v2: %s, want Failed", st.Phase)
	}
	want := map[string]deployplan.HostStatus{"web-1": deployplan.Succeeded, "web-2": deployplan.Failed,
		"web-3": deployplan.Skipped, "web-4": deployplan.Skipped, "web-5": deployplan.Skipped}
	for _, h := range st.Hosts {
		if h.Status != want[h.Name] {
			t.Fatalf("v2 host %s %s, want %s", h.Name, h.Status, want[h.Name])
		}
		if h.Status == deployplan.Skipped && len(h.Steps) > 0 {
			t.Fatalf("v2 touched %s: %+v", h.Name, h.Steps)
		}
	}
	// The rollback: a deployment of v1's revision recording v2 as what it rolls back.
	deadline := time.Now().Add(60 * time.Second)
	var rb deploydecider.State
	for {
		all, err := deploy.List(context.Background(), w.bus, "web")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range all {
			if d.Created.RollbackOf == v2 && d.Phase != deploydecider.InProgress {
				rb = d
			}
		}
		if rb.ID() != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rb.Phase != deploydecider.Succeeded {
		t.Fatalf("rollback of %s: %+v", v2, rb)
	}
	for h := range w.ports {
		if got := w.serves(h); got != "v1" {
			t.Fatalf("after the rollback %s serves %q, want v1", h, got)
		}
	}
	// What a user reads: the failed deployment names its rollback and the
	// host to look at; that host's view has the failing hook's output.
	out, code := w.gantry("deploy", "show", v2)
	for _, want := range []string{"rolled back by " + rb.ID(), "see what failed: gantry deploy show " + v2 + " --host web-2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("deploy show %s (exit %d) lacks %q:\n%s", v2, code, want, out)
		}
	}
	out, code = w.gantry("deploy", "show", v2, "--host", "web-2")
	for _, want := range []string{"ValidateService  failed    exit 3", "  | validation failed on web-2"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("deploy show %s --host web-2 (exit %d) lacks %q:\n%s", v2, code, want, out)
		}
	}
	// Every deployment and host state rebuilt from the log equals the live
	// projection.
	for range 50 { // the projector may still be catching up
		out, code = w.gantry("state", "rebuild", "--verify", "-o", "json")
		if code == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var rep struct {
		Deployments int
		Verified    bool
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || !rep.Verified || rep.Deployments != 3 {
		t.Fatalf("rebuild --verify: %d %s %v", code, out, err)
	}
}

// SIGKILL an agent process mid-hook: its host fails once its heartbeat is
// older than the timeout, the deployment ends by the minimum-healthy rule
// (AllAtOnce needs one healthy host: the other two deploy and it succeeds;
// the OneAtATime failure path is the five-agent test), and nothing waits
// forever.
func TestKilledAgentMidHook(t *testing.T) {
	w := newWeb(t, "kill", "AllAtOnce", 3, "3s")
	id := w.deploy(w.revision("v1", `[ "$GANTRY_HOST" != web-1 ] || sleep 20`, "true"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := deploy.Load(context.Background(), w.bus, id)
		if err == nil {
			if h := st.Host("web-1"); h != nil && len(h.Steps) > 0 && strings.Contains(fmt.Sprint(h.Steps), "BeforeInstall") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("web-1 never reached BeforeInstall")
		}
		time.Sleep(50 * time.Millisecond)
	}
	w.procs["web-1"].kill()
	start := time.Now()
	st := w.waitDeployment(id, 40*time.Second)
	h1 := st.Host("web-1")
	if h1.Status != deployplan.Failed || !strings.Contains(h1.Reason, "heartbeat") {
		t.Fatalf("web-1: %s %q, want failed for its heartbeat", h1.Status, h1.Reason)
	}
	if st.Phase != deploydecider.Succeeded || st.Host("web-2").Status != deployplan.Succeeded || st.Host("web-3").Status != deployplan.Succeeded {
		t.Fatalf("deployment %s (%s), want Succeeded on web-2 and web-3", st.Phase, st.Reason)
	}
	t.Logf("deployment ended %s after the agent was killed", time.Since(start).Round(time.Millisecond))
}
