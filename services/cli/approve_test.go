package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// run show draws a waiting approval with what to do, and the condition
// rules of a stage with their verdicts.
func TestRenderRunShowsApprovalsAndConditions(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st := run.State{Run: "r1", Pipeline: "p", Phase: run.Running, StartedAt: now, Stages: []run.Stage{
		{Name: "Staging", Phase: run.Skipped, Attempt: 1, Actions: []run.Action{{Name: "d", Type: "deploy"}},
			Checks: []run.Check{{When: events.BeforeEntry, Rule: "window", Attempt: 1, Evaluated: true, Reason: "outside the window"}}},
		{Name: "Gate", Phase: run.Running, Attempt: 1, Actions: []run.Action{{Name: "sign-off", Type: events.KindApproval, Phase: run.Running,
			Attempt: 1, Approval: &run.Approval{Instructions: "check staging", URL: "https://x.example", Approvers: []string{"alice", "bob"},
				Expires: "2026-12-03T12:00:00Z"}},
			{Name: "qa", Type: events.KindApproval, Phase: run.Succeeded, Attempt: 1,
				Approval: &run.Approval{Decision: "approved", Actor: "api:alice", Comment: "looks fine\nreally"}}},
			Checks: []run.Check{{When: events.BeforeEntry, Rule: "smoke", Attempt: 1, Evaluated: true, Passed: true, Reason: "command \"true\" succeeded"},
				{When: events.OnSuccess, Rule: "again", Attempt: 1, Task: run.Running}}},
	}}
	var b strings.Builder
	renderRun(&b, st, now)
	out := b.String()
	for _, want := range []string{
		"↷ Staging", "✘ beforeEntry rule window: outside the window",
		"✔ beforeEntry rule smoke: command \"true\" succeeded", "▶ onSuccess rule again: command Running",
		"approval Gate/sign-off waits until 2026-12-03T12:00:00Z", "instructions: check staging", "review: https://x.example",
		"approvers: alice, bob", "answer: gantry approve r1 --stage Gate --action sign-off",
		"approval Gate/qa approved by api:alice: looks fine\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run show lacks %q:\n%s", want, out)
		}
	}
}

// events tail and run watch describe approvals, condition verdicts and
// skipped stages in words, not by their type.
func TestDescribeGates(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ref := events.ActionRef{Run: "r1", Stage: "Gate", Action: "ok", Attempt: 1}
	for _, tt := range []struct {
		p    events.Payload
		want string
	}{
		{events.ActionWaiting{ActionRef: ref, Instructions: "ship v2?", Expires: "2026-12-03T12:00:00Z"}, "approval Gate/ok waits until 2026-12-03T12:00:00Z: ship v2?"},
		{events.ActionApproved{ActionRef: ref, Actor: "api:alice", Comment: "fine"}, "approval Gate/ok approved by api:alice: fine"},
		{events.ActionRejected{ActionRef: ref, Actor: "slack:U1"}, "approval Gate/ok rejected by slack:U1"},
		{events.ConditionEvaluated{Run: "r1", Stage: "Prod", Attempt: 1, When: events.BeforeEntry, Rule: "window", Type: "DeploymentWindow", Reason: "outside"},
			"stage Prod beforeEntry rule window (DeploymentWindow) failed: outside"},
		{events.StageSkipped{Run: "r1", Stage: "Prod", Attempt: 1, Reason: "rule window failed"}, "stage Prod skipped: rule window failed"},
	} {
		e, err := events.New("id", "/test", "r1", at, tt.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := describe(e); !strings.HasSuffix(got, " "+tt.want) {
			t.Errorf("describe(%T) = %q, want it to end %q", tt.p, got, tt.want)
		}
	}
}
