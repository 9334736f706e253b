package e2e_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/artifact"
)

// startWithEnv is start with extra variables in the process's environment.
func (e *env) startWithEnv(extra []string, name string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(gantryBin, args...)
	cmd.Env = append(append(os.Environ(), "NATS_URL="+e.url, "GANTRY_DATA_DIR="+e.t.TempDir()), extra...)
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

// gantryStdin runs a CLI command with stdin and returns its output and code.
func (e *env) gantryStdin(stdin string, args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(gantryBin, args...)
	cmd.Env = append(os.Environ(), "NATS_URL="+e.url)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("gantry %v: %v", args, err)
	}
	return string(out), 0
}

// A build that prints its secrets and its whole environment: the values
// are *** in `gantry logs`, the archived log and the live log stream, and
// appear in no event and no task message; the worker's NATS_CREDS and other
// variables never reach the build. A reference to a secret nobody stored
// fails its action with a message naming it.
func TestSecretsStayOutOfLogsEventsAndBuilds(t *testing.T) {
	const (
		tokenValue = "npm_S3cr3tV4lue-e2e"
		fileValue  = "file-s3cret-0xC0FFEE"
		credsValue = "/etc/worker-only/nats.creds"
		cloudValue = "worker-host-cloud-key-123"
	)
	e := newEnv(t)
	secretsDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(secretsDir, "signing.key"), []byte(fileValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Every task message as it is published, before a worker takes it.
	var (
		tasksMu sync.Mutex
		tasks   []*nats.Msg
	)
	sub, err := e.bus.Conn().Subscribe(events.SubjectTasksAll, func(m *nats.Msg) {
		tasksMu.Lock()
		defer tasksMu.Unlock()
		tasks = append(tasks, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	e.repo(appRepo, map[string]string{"buildspec.yml": `version: 0.2
env:
  secrets:
    SIGNING_KEY: file:` + filepath.Join(secretsDir, "signing.key") + `
  exported-variables: [LEAKED, SAFE]
phases:
  build:
    commands:
      - echo "token=$NPM_TOKEN"
      - echo "key=$SIGNING_KEY"
      - env | sort
      - test -z "${NATS_CREDS:-}" && test -z "${NATS_URL:-}" && test -z "${CLOUD_KEY:-}"
      - case "$TMPDIR" in "$GANTRY_WORKSPACE"/*) echo tmpdir-in-workspace;; esac
      - export LEAKED="x-$NPM_TOKEN" SAFE=kept
`,
		// A test whose failure message quotes the secret: the report is an event.
		"testspec.yml": `version: 0.2
phases:
  build:
    commands:
      - mkdir -p reports
      - printf '<testsuite name="s" tests="1" failures="1"><testcase name="t"><failure message="bad token %s">x</failure></testcase></testsuite>\n' "$NPM_TOKEN" > reports/junit.xml
reports:
  unit:
    files: ["reports/*.xml"]
`})
	e.apply(`name: secrets
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: app, branch: main}
  - name: Build
    actions:
      - name: compile
        type: build
        inputs: [source]
        secrets: {NPM_TOKEN: npm-token}
      - name: missing
        type: build
        inputs: [source]
        secrets: {OTHER: never-stored}
      - name: unit
        type: test
        inputs: [source]
        configuration: {buildspec: testspec.yml}
        secrets: {NPM_TOKEN: npm-token}
`)
	if out, code := e.gantryStdin(tokenValue+"\n", "secret", "set", "npm-token"); code != 0 {
		t.Fatalf("secret set: %s", out)
	}
	for _, r := range []string{"conductor", "triggers"} {
		e.start(r, r)
	}
	e.start("source", "source", "--repos-dir", e.repos)
	// The worker itself has credentials and host secrets in its environment
	// (--creds= keeps it connecting without auth to the test server).
	e.startWithEnv([]string{"NATS_CREDS=" + credsValue, "CLOUD_KEY=" + cloudValue},
		"build", "build", "--creds=", "--secrets-dir", secretsDir, "--concurrency", "2")
	e.start("test", "test")

	runID := e.startRun("secrets")
	st := e.waitDone("secrets", runID, time.Minute)
	compile, missing := st.Action("Build", "compile"), st.Action("Build", "missing")
	if compile == nil || compile.Phase != run.Succeeded {
		t.Fatalf("compile: %+v (run %s: %s)", compile, st.Phase, st.Reason)
	}
	if v := compile.Variables; v["SAFE"] != "kept" || v["LEAKED"] != "" {
		t.Errorf("exported variables %v: LEAKED holds the secret and must be left out", v)
	}
	if unit := st.Action("Build", "unit"); unit == nil || unit.Report == nil || len(unit.Report.Failures) != 1 ||
		unit.Report.Failures[0].Message != "bad token ***" {
		t.Errorf("test report: %+v", unit)
	}
	if missing == nil || missing.Phase != run.Failed ||
		!strings.Contains(missing.Reason, "secret never-stored (for OTHER): secret not found") ||
		!strings.Contains(missing.Reason, "gantry secret set never-stored") {
		t.Fatalf("missing secret: %+v", missing)
	}

	leaks := []string{tokenValue, fileValue, credsValue, cloudValue}
	noLeak := func(where, text string) {
		t.Helper()
		for _, v := range leaks {
			if strings.Contains(text, v) {
				t.Errorf("%s holds %q:\n%s", where, v, tail(text, 3000))
			}
		}
	}

	// gantry logs (the archived log, through the CLI).
	out, code := e.gantry("logs", runID, "Build/compile")
	if code != 0 {
		t.Fatalf("logs: %s", out)
	}
	noLeak("gantry logs", out)
	for _, want := range []string{"token=***", "key=***", "NPM_TOKEN=***", "SIGNING_KEY=***", "tmpdir-in-workspace", "secrets: NPM_TOKEN, SIGNING_KEY"} {
		if !strings.Contains(out, want) {
			t.Errorf("gantry logs lacks %q:\n%s", want, tail(out, 3000))
		}
	}
	for _, never := range []string{"NATS_CREDS=", "NATS_URL=", "CLOUD_KEY="} {
		if strings.Contains(out, never) {
			t.Errorf("the build saw the worker's %s:\n%s", never, tail(out, 3000))
		}
	}

	ctx := context.Background()
	js := e.bus.JetStream()
	// The archived log object itself.
	obs, err := js.ObjectStore(ctx, events.BucketArtifacts)
	if err != nil {
		t.Fatal(err)
	}
	store := artifact.NewStore(js, obs)
	r, _, err := store.Open(ctx, compile.Log.Key)
	if err != nil {
		t.Fatal(err)
	}
	archived, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	noLeak("the archived log", string(archived))
	if !strings.Contains(string(archived), "token=***") {
		t.Errorf("the archived log lacks token=***")
	}

	// Every message of the event log, the live log stream, and the tasks.
	for _, stream := range []string{events.StreamEvents, events.StreamLogs} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info(ctx)
		n := 0
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			n++
			noLeak(stream+" "+m.Subject, string(m.Data))
		}
		if n == 0 {
			t.Errorf("%s is empty", stream)
		}
	}
	var sawRef bool
	tasksMu.Lock()
	defer tasksMu.Unlock()
	for _, m := range tasks {
		noLeak("task "+m.Subject, string(m.Data))
		sawRef = sawRef || strings.Contains(string(m.Data), `"NPM_TOKEN":"npm-token"`)
	}
	if !sawRef {
		t.Errorf("no task message carried the reference NPM_TOKEN: npm-token (%d tasks seen)", len(tasks))
	}
}
