package run_test

import (
	"encoding/json"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

const leaseKey = "key"

func gatesDef() events.Definition {
	return events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{{Name: "ok", Type: events.KindApproval, Pool: "default", RunOrder: 1}},
			BeforeEntry: &events.Condition{Result: events.ResultSkip, Rules: []events.Rule{
				{Name: "smoke", Type: events.RuleCommand, Configuration: map[string]string{"command": "true"}}}}},
	}}
}

func gLease(action string, attempt int) string {
	return events.LeaseToken([]byte(leaseKey), events.TaskID(id, "A", action, attempt))
}

func gDispatch(action, kind string, attempt int) events.ActionDispatched {
	return events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, "A", action, attempt), Run: id, Stage: "A", Action: action,
		Attempt: attempt, Kind: kind, Pool: "default", LeaseHash: events.LeaseHash(gLease(action, attempt))}}
}

func gRef(action string, attempt int) events.ActionRef {
	return events.ActionRef{Run: id, Stage: "A", Action: action, Attempt: attempt}
}

// foldAll folds payloads after run.requested and run.started.
func foldAll(t *testing.T, ps ...events.Payload) run.State {
	t.Helper()
	all := append([]events.Payload{events.RunRequested{Pipeline: "p", Run: id, Revision: 1, Definition: gatesDef(),
		Trigger: events.Trigger{ID: "t", Kind: "manual"}}, events.RunStarted{Run: id}}, ps...)
	s := run.State{}
	for i, p := range all {
		s = run.Evolve(s, e(t, i+1, p))
	}
	return s
}

func TestFoldApproval(t *testing.T) {
	waiting := []events.Payload{events.StageStarted{Run: id, Stage: "A", Attempt: 1}, gDispatch("ok", events.KindApproval, 1),
		events.ActionWaiting{ActionRef: gRef("ok", 1), Instructions: "look", Expires: "2026-11-26T12:05:00Z"}}
	cases := []struct {
		name    string
		then    []events.Payload
		phase   run.Phase
		waiting bool
		actor   string
	}{
		{"waiting", nil, run.Running, true, ""},
		{"approved", []events.Payload{events.ActionApproved{ActionRef: gRef("ok", 1), Actor: "alice", Comment: "fine", Lease: gLease("ok", 1)}}, run.Succeeded, false, "alice"},
		{"rejected", []events.Payload{events.ActionRejected{ActionRef: gRef("ok", 1), Actor: "bob", Lease: gLease("ok", 1)}}, run.Failed, false, "bob"},
		{"an answer without the lease", []events.Payload{events.ActionApproved{ActionRef: gRef("ok", 1), Actor: "eve", Lease: gLease("ok", 2)}}, run.Running, true, ""},
		{"the first answer wins", []events.Payload{
			events.ActionRejected{ActionRef: gRef("ok", 1), Actor: "bob", Lease: gLease("ok", 1)},
			events.ActionApproved{ActionRef: gRef("ok", 1), Actor: "alice", Lease: gLease("ok", 1)}}, run.Failed, false, "bob"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := foldAll(t, append(append([]events.Payload(nil), waiting...), tc.then...)...)
			a := s.Action("A", "ok")
			if a.Phase != tc.phase || a.Waiting() != tc.waiting || a.Approval.Actor != tc.actor || a.Approval.Instructions != "look" {
				t.Fatalf("approval %s waiting %v approval %+v", a.Phase, a.Waiting(), a.Approval)
			}
		})
	}
	// An answer to a build action is no approval.
	s := foldAll(t, events.StageStarted{Run: id, Stage: "A", Attempt: 1}, gDispatch("ok", events.KindApproval, 1),
		events.ActionApproved{ActionRef: gRef("ok", 1), Actor: "alice", Lease: gLease("ok", 1)})
	if a := s.Action("A", "ok"); a.Phase != run.Dispatched {
		t.Fatalf("an approval answered before it waited: %s", a.Phase)
	}
}

func TestFoldConditions(t *testing.T) {
	task := "beforeEntry-smoke"
	s := foldAll(t, gDispatch(task, "test", 1),
		events.ActionStarted{ActionRef: gRef(task, 1), Worker: "w"},
		events.ActionSucceeded{ActionRef: gRef(task, 1), Lease: gLease(task, 2)}, // wrong lease: ignored
	)
	st := s.Stage("A")
	if len(st.Checks) != 1 || st.Checks[0].Task != run.Running || st.Phase != run.NotStarted {
		t.Fatalf("checks %+v, stage %s", st.Checks, st.Phase)
	}
	s = run.Evolve(s, e(t, 10, events.ActionFailed{ActionRef: gRef(task, 1), Reason: "exit 1", Lease: gLease(task, 1)}))
	s = run.Evolve(s, e(t, 11, events.ConditionEvaluated{Run: id, Stage: "A", Attempt: 1, When: events.BeforeEntry, Rule: "smoke",
		Type: events.RuleCommand, Passed: false, Reason: "exit 1"}))
	s = run.Evolve(s, e(t, 12, events.StageSkipped{Run: id, Stage: "A", Attempt: 1, Reason: "beforeEntry rule smoke did not pass"}))
	st = s.Stage("A")
	if c := st.Checks[0]; c.Task != run.Failed || c.TaskReason != "exit 1" || !c.Evaluated || c.Passed || st.Phase != run.Skipped || st.Attempt != 1 {
		t.Fatalf("check %+v, stage %s #%d", c, st.Phase, st.Attempt)
	}
	// A late evaluation of the same rule, or a late task result, changes nothing.
	before, _ := json.Marshal(s.Stages)
	s = run.Evolve(s, e(t, 13, events.ConditionEvaluated{Run: id, Stage: "A", Attempt: 1, When: events.BeforeEntry, Rule: "smoke",
		Type: events.RuleCommand, Passed: true, Reason: "late"}))
	s = run.Evolve(s, e(t, 14, events.ActionSucceeded{ActionRef: gRef(task, 1), Lease: gLease(task, 1)}))
	if after, _ := json.Marshal(s.Stages); string(after) != string(before) {
		t.Fatalf("late events changed the stage:\n%s\n%s", before, after)
	}
}
