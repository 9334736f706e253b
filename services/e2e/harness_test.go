package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploy/deploytest"
	"github.com/gantry-ci/gantry/services/stack"
)

var gantryBin string

func TestMain(m *testing.M) {
	// Re-executed by a deployed test revision's ApplicationStart as its server.
	deploytest.MaybeServe()
	dir, err := os.MkdirTemp("", "gantry-e2e-bin-")
	if err != nil {
		panic(err)
	}
	gantryBin = filepath.Join(dir, "gantry")
	cmd := exec.Command("go", "build", "-o", gantryBin, "../cmd/gantry")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build gantry:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's world: a JetStream server, a git repository of test
// pipelines, and the gantry processes the test starts.
type env struct {
	t     *testing.T
	url   string
	bus   *bus.Bus
	repos string
	mu    sync.Mutex
	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	e := &env{t: t, url: srv.ClientURL(), bus: b, repos: t.TempDir()}
	t.Cleanup(e.stopAll)
	return e
}

// start runs `gantry args...` in the background as a named process.
func (e *env) start(name string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(gantryBin, args...)
	cmd.Env = append(os.Environ(), "NATS_URL="+e.url, "GANTRY_DATA_DIR="+e.t.TempDir())
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

// kill sends SIGKILL to the process's whole group: no cleanup runs.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (e *env) stopAll() {
	e.mu.Lock()
	procs := e.procs
	e.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
		if e.t.Failed() {
			e.t.Logf("--- output of %s ---\n%s", p.name, tail(p.out.String(), 4000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// gantry runs a CLI command to completion and returns its stdout and exit code.
func (e *env) gantry(args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(gantryBin, args...)
	cmd.Env = append(os.Environ(), "NATS_URL="+e.url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("gantry %v: %v", args, err)
	}
	if code != 0 {
		e.t.Logf("gantry %v exited %d: %s%s", args, code, out.String(), errb.String())
	}
	return out.String(), code
}

// repo makes a git repository named name under the repos directory with
// the given files committed on main.
func (e *env) repo(name string, files map[string]string) {
	e.t.Helper()
	e.repoWithSubject(name, "test", files)
}

// repoWithSubject is repo with the commit's message chosen by the test.
func (e *env) repoWithSubject(name, subject string, files map[string]string) {
	e.t.Helper()
	dir := filepath.Join(e.repos, name)
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, args := range [][]string{{"init", "--quiet", "--initial-branch=main"}, {"add", "--all"}, {"commit", "--quiet", "-m", subject}} {
		if err := stack.Git(ctx, dir, args...); err != nil {
			e.t.Fatal(err)
		}
	}
}

// apply writes a pipeline file and applies it with the CLI.
func (e *env) apply(yaml string) {
	e.t.Helper()
	f := filepath.Join(e.t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if _, code := e.gantry("pipeline", "apply", "-f", f); code != 0 {
		e.t.Fatal("pipeline apply failed")
	}
}

// startRun starts a run through the CLI and returns its ID.
func (e *env) startRun(pipeline string, extra ...string) string {
	e.t.Helper()
	out, code := e.gantry(append([]string{"run", "start", pipeline, "-o", "json"}, extra...)...)
	if code != 0 {
		e.t.Fatal("run start failed")
	}
	var r struct{ Run string }
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Run == "" {
		e.t.Fatalf("run start output %q: %v", out, err)
	}
	return r.Run
}

func (e *env) events(pipeline, runID string) []events.Event {
	e.t.Helper()
	evs, err := e.bus.ReadRun(context.Background(), pipeline, runID, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// waitFor polls the run's log until cond holds.
func (e *env) waitFor(pipeline, runID string, timeout time.Duration, what string, cond func(run.State, []events.Event) bool) run.State {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := e.events(pipeline, runID)
		st := run.Fold(run.State{}, evs...)
		if cond(st, evs) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s: %s did not happen within %s; state %s", runID, what, timeout, st.Phase)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) waitDone(pipeline, runID string, timeout time.Duration) run.State {
	e.t.Helper()
	return e.waitFor(pipeline, runID, timeout, "the end", func(st run.State, _ []events.Event) bool { return st.Done() })
}

// services starts one of each role as its own process.
func (e *env) services(ackWait string) map[string]*proc {
	ps := map[string]*proc{}
	for _, r := range []string{"conductor", "projector", "triggers"} {
		ps[r] = e.start(r, r)
	}
	ps["source"] = e.start("source", "source", "--repos-dir", e.repos, "--ack-wait", ackWait)
	ps["build"] = e.start("build", "build", "--name", "build-1", "--ack-wait", ackWait)
	ps["test"] = e.start("test", "test", "--ack-wait", ackWait)
	return ps
}

// deployServices starts the CD roles as processes.
func (e *env) deployServices() {
	for _, r := range []string{"deploy-service", "rollback-service", "deploy-worker"} {
		e.start(r, r)
	}
}

// agents starts n agent processes of a group, each with its own root and a
// free port label, and returns their ports; their services are stopped when
// the test ends.
func (e *env) agents(group string, n int) map[string]int {
	e.t.Helper()
	ports := map[string]int{}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s-%d", group, i)
		root := e.t.TempDir()
		port := e.agentsPorts(1)[0]
		ports[name] = port
		e.start("agent "+name, "agent", "--group", group, "--name", name, "--root", root,
			"--install-root", filepath.Join(root, "fs"), "--label", "port="+strconv.Itoa(port), "--heartbeat", "500ms")
		e.t.Cleanup(func() { stopPidFile(filepath.Join(root, "fs", "hello", "hello.pid")) })
	}
	return ports
}

// stopPidFile stops a service a deployment started in the background.
func stopPidFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
}

// get returns the body of a GET, trimmed.
func get(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// count counts events of a type whose ID contains idSuffix (a result's ID
// goes on with a tag of its lease).
func count(evs []events.Event, typ, idSuffix string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == typ && strings.Contains(ev.ID, idSuffix) {
			n++
		}
	}
	return n
}

// agentsPorts returns n free loopback ports.
func (e *env) agentsPorts(n int) []int {
	e.t.Helper()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	return out
}
