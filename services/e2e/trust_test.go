package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events/run"
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
