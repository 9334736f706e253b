package decider_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// gatesDef builds a pipeline with approvals and conditions from the
// fuzzer's first byte: stage A (a build), stage G (one or two approvals,
// a beforeEntry of a variable check that passes or not and a Command
// rule, result FAIL or SKIP), stage Z (a build with an onSuccess of a
// Command rule and a variable check, result FAIL or ROLLBACK).
func gatesDef(c byte) events.Definition {
	vc := func(name, value string) events.Rule {
		return events.Rule{Name: name, Type: events.RuleVariableCheck,
			Configuration: map[string]string{"variable": "COLOR", "operator": "EQ", "value": value}}
	}
	cmd := func(name string) events.Rule {
		return events.Rule{Name: name, Type: events.RuleCommand, Configuration: map[string]string{"command": "true"}}
	}
	before := &events.Condition{Result: events.ResultFail, Rules: []events.Rule{vc("color", "blue"), cmd("check")}}
	if c&1 != 0 {
		before.Result = events.ResultSkip
	}
	if c&2 != 0 {
		before.Rules[0] = vc("color", "green")
	}
	after := &events.Condition{Result: events.ResultFail, Rules: []events.Rule{cmd("smoke"), vc("still", "blue")}}
	if c&4 != 0 {
		after.Result = events.ResultRollback
	}
	gate := []events.ActionDef{{Name: "ok", Type: events.KindApproval, Pool: "default", RunOrder: 1, TimeoutSeconds: 300}}
	if c&8 != 0 {
		gate = append(gate, events.ActionDef{Name: "ok2", Type: events.KindApproval, Pool: "default", RunOrder: 1})
	}
	return events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{{Name: "a", Type: "build", Pool: "default", RunOrder: 1}}},
		{Name: "G", Actions: gate, BeforeEntry: before},
		{Name: "Z", Actions: []events.ActionDef{{Name: "z", Type: "build", Pool: "default", RunOrder: 1}}, OnSuccess: after},
	}}
}

// FuzzGatesDriveRunsToAnEnd is FuzzDecideDrivesRunsToAnEnd for approvals
// and conditions: workers answer tasks (condition commands included),
// people approve or reject, forgers answer without the lease, answers are
// repeated, the run is stopped, and time jumps past every deadline, in an
// order the fuzzer chooses. The decider must never dispatch an attempt
// twice nor start a stage attempt twice, a forged answer must change
// nothing, a stage whose beforeEntry did not pass must dispatch nothing,
// and the run must end within a bounded number of steps.
func FuzzGatesDriveRunsToAnEnd(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0x80, 0x20, 0x40, 3})
	f.Add([]byte{8, 0x30, 0x30, 0x30})
	f.Add([]byte{6, 0x1F, 0x5F, 9, 9})
	f.Fuzz(func(t *testing.T, choices []byte) {
		next := func() byte {
			if len(choices) == 0 {
				return 0
			}
			c := choices[0]
			choices = choices[1:]
			return c
		}
		m := newSim(t, gatesDef(next()), map[string]string{"COLOR": "blue"})
		dispatched := map[string]bool{}
		started := map[string]bool{}
		var open []events.Task
		for step := 0; step < 300 && !m.s.Done(); step++ {
			evs := decider.Decide(m.s, m.in)
			for _, e := range evs {
				if _, err := testCodec().Encode(e); err != nil {
					t.Fatalf("the decider made an event the schema refuses: %v", err)
				}
				switch p := e.Payload.(type) {
				case events.ActionDispatched:
					if dispatched[p.Task.ID] {
						t.Fatalf("task %s dispatched twice", p.Task.ID)
					}
					dispatched[p.Task.ID] = true
					open = append(open, p.Task)
				case events.StageStarted:
					k := fmt.Sprintf("%s#%d", p.Stage, p.Attempt)
					if started[k] {
						t.Fatalf("stage %s started twice", k)
					}
					started[k] = true
				}
			}
			m.fold(evs...)
			if g := m.s.Stage("G"); g.Phase == run.Skipped || (g.Phase == run.Failed && len(g.Checks) > 0 && !g.Checks[len(g.Checks)-1].Passed) {
				for _, a := range g.Actions {
					if a.Attempt > 0 {
						t.Fatalf("stage G's beforeEntry did not pass, yet %s was dispatched", a.Name)
					}
				}
			}
			if len(evs) > 0 {
				continue
			}
			if len(open) == 0 {
				t.Fatalf("run waits with nothing open: %+v", m.s)
			}
			c := next()
			if c&0x30 == 0x30 { // nobody answers: every deadline passes
				m.in.Now = m.in.Now.Add(60*24*time.Hour + decider.DefaultGrace)
				open = nil
				continue
			}
			if c&0x3F == 0x1F && m.s.Phase == run.Running {
				m.add(m.in.Now, events.RunStopping{Run: runID, Reason: "fuzz", Abandon: c&0x40 != 0})
				if c&0x40 != 0 {
					open = nil
				}
				continue
			}
			i := int(c) % len(open)
			task := open[i]
			open = append(open[:i], open[i+1:]...)
			r := events.ActionRef{Run: task.Run, Stage: task.Stage, Action: task.Action, Attempt: task.Attempt}
			l := events.LeaseToken(key, task.ID)
			var p, forged events.Payload
			switch {
			case task.Kind == events.KindApproval && c&0x80 != 0:
				p = events.ActionRejected{ActionRef: r, Actor: "bob", Lease: l}
				forged = events.ActionApproved{ActionRef: r, Actor: "mallory", Lease: events.LeaseHash(l)}
			case task.Kind == events.KindApproval:
				p = events.ActionApproved{ActionRef: r, Actor: "alice", Lease: l}
				forged = events.ActionRejected{ActionRef: r, Actor: "mallory", Lease: events.LeaseHash(l)}
			case c&0x80 != 0:
				p = events.ActionFailed{ActionRef: r, Reason: "boom", Lease: l}
				forged = events.ActionSucceeded{ActionRef: r, Lease: events.LeaseHash(l)}
			default:
				p = events.ActionSucceeded{ActionRef: r, Lease: l}
				forged = events.ActionFailed{ActionRef: r, Reason: "forged", Lease: events.LeaseHash(l)}
			}
			if c&0x30 == 0x20 { // a forger answers first
				before := fmt.Sprintf("%+v", m.s.Stages)
				m.add(m.in.Now, forged)
				if after := fmt.Sprintf("%+v", m.s.Stages); after != before {
					t.Fatalf("a forged %T changed the run:\n%s\n%s", forged, before, after)
				}
			}
			m.add(m.in.Now, p)
			if c&0x40 != 0 { // a repeat changes nothing
				before := fmt.Sprintf("%+v", m.s.Stages)
				m.add(m.in.Now, p)
				if after := fmt.Sprintf("%+v", m.s.Stages); after != before {
					t.Fatal("a repeated answer changed the run")
				}
			}
		}
		if !m.s.Done() {
			t.Fatalf("run did not end: %+v", m.s)
		}
		foldsAgree(t, m.s, m.log) // gates (approvals, checks) included
	})
}
