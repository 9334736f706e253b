package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// gantry run retry, over the CLI: a build that fails its first attempt
// fails the run; retrying its stage re-runs only that action and the same
// run ends Succeeded, through the stage after it.
func TestRunRetryFromTheCLI(t *testing.T) {
	e := newEnv(t)
	e.repo("flaky", map[string]string{
		"flaky.yml": `version: 0.2
phases:
  build:
    commands:
      - echo "attempt $GANTRY_ATTEMPT"
      - test "$GANTRY_ATTEMPT" != 1
`,
		"steady.yml": `version: 0.2
phases:
  build:
    commands:
      - echo steady
`})
	e.apply(`name: flaky
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: flaky, branch: main}
  - name: Build
    actions:
      - name: flaky
        type: build
        inputs: [source]
        configuration: {buildspec: flaky.yml}
      - name: steady
        type: build
        inputs: [source]
        configuration: {buildspec: steady.yml}
  - name: After
    actions:
      - name: after
        type: build
        inputs: [source]
        configuration: {buildspec: steady.yml}
`)
	for _, r := range []string{"conductor", "triggers"} {
		e.start(r, r)
	}
	e.start("source", "source", "--repos-dir", e.repos)
	e.start("build", "build", "--concurrency", "2")

	runID := e.startRun("flaky")
	if st := e.waitDone("flaky", runID, 2*time.Minute); st.Phase != run.Failed {
		t.Fatalf("first end: %s %s", st.Phase, st.Reason)
	}
	// Refused (the error, on stderr, is in the test log): After never started.
	if out, code := e.gantry("run", "retry", runID, "--stage", "After"); code == 0 {
		t.Errorf("retry of a stage that never started: exit 0, %s", out)
	}
	out, code := e.gantry("run", "retry", runID, "--stage", "Build")
	if code != 0 || !strings.Contains(out, "Running") {
		t.Fatalf("run retry: exit %d: %s", code, out)
	}
	st := e.waitFor("flaky", runID, 2*time.Minute, "success after the retry", func(st run.State, _ []events.Event) bool {
		return st.Phase == run.Succeeded || st.Phase == run.Failed && st.Reopened > 0 && st.Stage("Build").Attempt > 1
	})
	if st.Phase != run.Succeeded {
		t.Fatalf("after retry: %s %s", st.Phase, st.Reason)
	}
	if f, s := st.Action("Build", "flaky"), st.Action("Build", "steady"); f.Attempt != 2 || s.Attempt != 1 {
		t.Errorf("attempts: flaky %d (want 2), steady %d (want 1)", f.Attempt, s.Attempt)
	}
}
