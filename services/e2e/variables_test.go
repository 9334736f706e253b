package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// A variable exported by one build reaches a later build's commands
// through env.TAG: "#{Version.APP_VERSION}", and a hostile value (quotes,
// ;, $(...), backticks, a #{...} of its own) stays data: the later build
// sees it byte for byte in $TAG and none of its commands ran.
func TestExportedVariableReachesALaterBuildAsData(t *testing.T) {
	hostile := `1.2"; touch pwned; $(touch pwned2); ` + "`touch pwned3`" + ` '$HOME' #{Version.APP_VERSION}`
	e := newEnv(t)
	e.repo("vars", map[string]string{
		"hostile.txt": hostile + "\n",
		"version.yml": `version: 0.2
env:
  exported-variables: [APP_VERSION]
phases:
  build:
    commands:
      - export APP_VERSION="$(cat hostile.txt)"
`,
		"use.yml": `version: 0.2
env:
  exported-variables: [SEEN]
phases:
  build:
    commands:
      - echo "tag is $TAG"
      - test "$TAG" = "$(cat hostile.txt)"
      - test ! -e pwned && test ! -e pwned2 && test ! -e pwned3
      - export SEEN="$TAG"
`})
	e.apply(`name: vars
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: vars, branch: main}
  - name: Build
    actions:
      - name: version
        type: build
        namespace: Version
        inputs: [source]
        configuration: {buildspec: version.yml}
  - name: Package
    actions:
      - name: use
        type: build
        inputs: [source]
        configuration:
          buildspec: use.yml
          env.TAG: "#{Version.APP_VERSION}"
`)
	for _, r := range []string{"conductor", "triggers"} {
		e.start(r, r)
	}
	e.start("source", "source", "--repos-dir", e.repos)
	e.start("build", "build")

	runID := e.startRun("vars")
	st := e.waitDone("vars", runID, 2*time.Minute)
	if st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s %s", runID, st.Phase, st.Reason)
	}
	if got := st.Action("Build", "version").Variables["APP_VERSION"]; got != hostile {
		t.Fatalf("exported APP_VERSION = %q, want %q", got, hostile)
	}
	if got := st.Action("Package", "use").Variables["SEEN"]; got != hostile {
		t.Errorf("the later build saw TAG = %q, want %q", got, hostile)
	}
	// The dispatched task carries the resolved value in its configuration;
	// its buildspec is untouched.
	for _, ev := range e.events("vars", runID) {
		if d, ok := ev.Payload.(events.ActionDispatched); ok && d.Task.Action == "use" {
			if d.Task.Configuration["env.TAG"] != hostile || strings.Contains(d.Task.Configuration["buildspec"], "1.2") {
				t.Errorf("dispatched configuration %v", d.Task.Configuration)
			}
		}
	}
}
