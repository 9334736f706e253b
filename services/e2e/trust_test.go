package e2e_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/internal/proctest"
)

// An inline buildspec that prints a commit subject, a --var and a shell
// variable named like a run variable, run by a real build worker: the
// values reach the commands as environment variables only, so the quotes
// in them are data, never shell syntax, and the shell's own variable is
// the shell's.
const injectionPipeline = `name: inject
variables:
  LOCAL: from-the-run
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: inj, branch: main}
  - name: Build
    actions:
      - name: compile
        type: build
        inputs: [source]
        configuration:
          buildspec: |
            version: 0.2
            phases:
              build:
                commands:
                  - echo "subject=[$COMMIT_MESSAGE]"
                  - echo "var=[${X}]"
                  - LOCAL=from-the-shell; echo "local=[$LOCAL]"
`

func TestVariablesAreNeverSubstitutedIntoCommands(t *testing.T) {
	e := newEnv(t)
	const subject = `fix"; echo PWNED; echo "`
	const x = `x"; echo INJECTED; echo "`
	e.repoWithSubject("inj", subject, map[string]string{"README": "injection test\n"})
	e.services("30s")
	e.apply(injectionPipeline)
	runID := e.startRun("inject", "--var", "X="+x)
	st := e.waitDone("inject", runID, time.Minute)
	if st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", st.Phase, st.Reason)
	}
	out, code := e.gantry("logs", runID, "Build/compile")
	if code != 0 {
		t.Fatalf("logs exited %d: %s", code, out)
	}
	for _, want := range []string{"subject=[" + subject + "]", "var=[" + x + "]", "local=[from-the-shell]"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[len(f)-1] == "PWNED" || f[len(f)-1] == "INJECTED") {
			t.Errorf("an injected command ran: %q", line)
		}
	}
}

// A build that sleeps in a shell with a child of its own: `gantry run stop
// --abandon` ends the run Stopped and the worker kills the whole process
// group, child included.
const stopPipeline = `name: stopme
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
        configuration:
          buildspec: |
            version: 0.2
            phases:
              build:
                commands:
                  - sleep 300 & echo $! > "$PIDDIR/child.tmp" && mv "$PIDDIR/child.tmp" "$PIDDIR/child"; echo $$ > "$PIDDIR/shell.tmp" && mv "$PIDDIR/shell.tmp" "$PIDDIR/shell"; wait
  - name: After
    actions:
      - name: never
        type: build
        inputs: [source]
        configuration: {buildspec: check.yml}
`

func TestRunStopAbandonKillsTheBuild(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("30s")
	e.apply(stopPipeline)
	dir := t.TempDir()
	runID := e.startRun("stopme", "--var", "PIDDIR="+dir)
	var pids []int
	deadline := time.Now().Add(30 * time.Second)
	for len(pids) < 2 {
		pids = pids[:0]
		for _, f := range []string{"shell", "child"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the build did not start its processes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, code := e.gantry("run", "stop", runID, "--abandon", "--reason", "wrong branch")
	if code != 0 || !strings.Contains(out, "Stopping") {
		t.Fatalf("run stop exited %d: %s", code, out)
	}
	st := e.waitDone("stopme", runID, 15*time.Second)
	if a := st.Action("Build", "compile"); st.Phase != run.Stopped || a.Phase != run.Abandoned || st.Reason != "wrong branch" {
		t.Fatalf("run %s (%s), compile %s; want Stopped, Abandoned", st.Phase, st.Reason, a.Phase)
	}
	if a := st.Action("After", "never"); a.Phase != run.NotStarted {
		t.Fatalf("a stopped run dispatched %s", "After/never")
	}
	for _, pid := range pids {
		gone := time.Now().Add(10 * time.Second)
		for proctest.Alive(pid) {
			if time.Now().After(gone) {
				t.Fatalf("process %d of the abandoned build is still alive", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Stopping it again is refused: it has ended.
	if out, code := e.gantry("run", "stop", runID); code == 0 {
		t.Fatalf("stopping an ended run succeeded: %s", out)
	}
}
