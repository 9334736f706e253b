package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// gatedPipeline: the Gate stage enters only if its Command rule, run by a
// real test worker on the source, passes; then a person approves it.
const gatedPipeline = `name: gated
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: app, branch: main}
  - name: Gate
    beforeEntry:
      result: FAIL
      rules:
        - name: has-input
          type: Command
          configuration:
            command: test -f input.txt && grep -q hello input.txt
            input: source
    actions:
      - name: sign-off
        type: approval
        timeoutSeconds: 3600
        configuration:
          instructions: Read input.txt, then approve.
          url: https://example.com/review
`

// gatedFail: its Command rule fails, which fails the stage before entry.
const gatedFail = `name: gated-fail
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: app, branch: main}
  - name: Gate
    beforeEntry:
      result: FAIL
      rules:
        - name: has-missing
          type: Command
          configuration:
            command: test -f missing.txt
            input: source
    actions:
      - name: sign-off
        type: approval
`

// TestApproveAndRejectThroughTheCLI: gantry approve and gantry reject
// end to end, each service its own process, after a Command rule ran on
// a real test worker; run show tells how to answer.
func TestApproveAndRejectThroughTheCLI(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("30s")
	e.apply(gatedPipeline)
	e.apply(gatedFail)

	waitApproval := func(id string) {
		e.waitFor("gated", id, time.Minute, "the approval waits", func(st run.State, _ []events.Event) bool {
			a := st.Action("Gate", "sign-off")
			return a != nil && a.Waiting()
		})
	}
	ok := e.startRun("gated")
	waitApproval(ok)
	show, code := e.gantry("run", "show", ok)
	for _, want := range []string{"approval Gate/sign-off waits until", "instructions: Read input.txt, then approve.",
		"review: https://example.com/review", "gantry approve " + ok + " --stage Gate --action sign-off", "✔ beforeEntry rule has-input"} {
		if code != 0 || !strings.Contains(show, want) {
			t.Fatalf("run show (exit %d) lacks %q:\n%s", code, want, show)
		}
	}
	if out, code := e.gantry("approve", ok, "--comment", "read it, fine"); code != 0 || !strings.Contains(out, "approved: run "+ok) {
		t.Fatalf("approve exited %d: %s", code, out)
	}
	st := e.waitDone("gated", ok, time.Minute)
	if st.Phase != run.Succeeded {
		t.Fatalf("approved run %s: %s", st.Phase, st.Reason)
	}
	evs := e.events("gated", ok)
	var approved events.ActionApproved
	var task events.Task
	var ran events.ActionSucceeded
	for _, ev := range evs {
		switch p := ev.Payload.(type) {
		case events.ActionApproved:
			approved = p
		case events.ActionDispatched:
			if p.Task.Action == "beforeEntry-has-input" {
				task = p.Task
			}
		case events.ActionSucceeded:
			if p.Action == "beforeEntry-has-input" {
				ran = p
			}
		}
	}
	if approved.Comment != "read it, fine" || !strings.Contains(approved.Actor, "@") {
		t.Fatalf("action.approved = %+v: want the comment and the CLI's user@host", approved)
	}
	if task.Kind != "test" || ran.Worker == "" {
		t.Fatalf("the Command rule's task %+v was not run by a test worker (result %+v)", task, ran)
	}
	// The refusal's text ("run already ended") goes to stderr, which
	// the harness logs; the conductor tests check the texts.
	if out, code := e.gantry("approve", ok); code == 0 {
		t.Fatalf("a second approve of an ended run exited 0: %s", out)
	}

	no := e.startRun("gated")
	waitApproval(no)
	if out, code := e.gantry("reject", no, "--stage", "Gate", "--comment", "not today"); code != 0 || !strings.Contains(out, "rejected: run "+no) {
		t.Fatalf("reject exited %d: %s", code, out)
	}
	st = e.waitDone("gated", no, time.Minute)
	if st.Phase != run.Failed || !strings.Contains(st.Reason, "rejected by") || !strings.Contains(st.Reason, "not today") {
		t.Fatalf("rejected run %s: %s", st.Phase, st.Reason)
	}

	bad := e.startRun("gated-fail")
	st = e.waitDone("gated-fail", bad, time.Minute)
	if st.Phase != run.Failed || !strings.Contains(st.Reason, "beforeEntry rule has-missing (Command) did not pass") {
		t.Fatalf("run with a failing Command rule %s: %s", st.Phase, st.Reason)
	}
	if a := st.Action("Gate", "sign-off"); a.Phase != run.NotStarted {
		t.Fatalf("the approval behind a failed condition was reached: %s", a.Phase)
	}
}
