package decider_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// sim plays conductor for one run: it decides until the run waits,
// folding what it decides, and folds what workers and people append.
type sim struct {
	t   *testing.T
	s   run.State
	seq uint64
	in  decider.Inputs
	log []events.Event
}

func newSim(t *testing.T, d events.Definition, vars map[string]string) *sim {
	m := &sim{t: t, in: decider.Inputs{Now: t0, LeaseKey: key}}
	m.fold(mustEv(t, t0, events.RunRequested{Pipeline: "p", Run: runID, Revision: 1, Definition: d, Variables: vars,
		Trigger: events.Trigger{ID: "t", Kind: "manual", Ref: "refs/heads/main"}}))
	return m
}

func mustEv(t *testing.T, at time.Time, p events.Payload) events.Event {
	t.Helper()
	e, err := events.New(fmt.Sprintf("%T/%d", p, at.UnixNano()), "/test", runID, at, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (m *sim) fold(evs ...events.Event) {
	for _, e := range evs {
		m.seq++
		e.Seq = m.seq
		m.s = run.Evolve(m.s, e)
		m.log = append(m.log, e)
	}
}

// at decides at time now until the run waits and returns what it decided.
func (m *sim) at(now time.Time) []string {
	m.t.Helper()
	m.in.Now = now
	var all []events.Event
	for range 100 {
		evs := decider.Decide(m.s, m.in)
		if len(evs) == 0 {
			return gateSummary(all)
		}
		for _, e := range evs {
			if _, err := testCodec().Encode(e); err != nil {
				m.t.Fatalf("the decider made an event the schema refuses: %v", err)
			}
		}
		m.fold(evs...)
		all = append(all, evs...)
	}
	m.t.Fatal("the decider did not settle")
	return nil
}

// testCodec validates what the decider makes, as the conductor's append would.
var testCodec = sync.OnceValue(func() *events.Codec {
	c, err := events.NewCodec()
	if err != nil {
		panic(err)
	}
	return c
})

// add folds an event from outside (a worker, a person) at time at.
func (m *sim) add(at time.Time, p events.Payload) { m.fold(mustEv(m.t, at, p)) }

func (m *sim) last(typ string) events.Event {
	for i := len(m.log) - 1; i >= 0; i-- {
		if m.log[i].Type == typ {
			return m.log[i]
		}
	}
	m.t.Fatalf("no %s in the log", typ)
	return events.Event{}
}

func gateSummary(evs []events.Event) []string {
	out := summary(evs)
	for i, e := range evs {
		switch p := e.Payload.(type) {
		case events.ConditionEvaluated:
			out[i] = fmt.Sprintf("evaluated:%s/%s=%v", p.When, p.Rule, p.Passed)
		case events.StageSkipped:
			out[i] = "stage.skipped:" + p.Stage
		case events.StageFailed:
			if p.Rollback {
				out[i] = "stage.failed+rollback:" + p.Stage
			}
		case events.ActionWaiting:
			out[i] = "waiting:" + p.Action
		}
	}
	return out
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// approvalDef: Build (b), then Gate (an approval), then Deploy (d).
func approvalDef(timeout int) events.Definition {
	return events.Definition{Name: "p", Stages: []events.StageDef{
		{Name: "Build", Actions: []events.ActionDef{{Name: "b", Type: "build", Pool: "default", RunOrder: 1}}},
		{Name: "Gate", Actions: []events.ActionDef{{Name: "ok", Type: events.KindApproval, Pool: "default", RunOrder: 1,
			TimeoutSeconds: timeout, Configuration: map[string]string{"instructions": "look at staging", "url": "https://staging.example.com",
				"approvers": "alice, bob"}}}},
		{Name: "Deploy", Actions: []events.ActionDef{{Name: "d", Type: "deploy", Pool: "default", RunOrder: 1}}},
	}}
}

// toGate runs the approval pipeline up to its waiting approval.
func toGate(t *testing.T, timeout int) *sim {
	m := newSim(t, approvalDef(timeout), nil)
	m.at(t0)
	m.add(t0, events.ActionSucceeded{ActionRef: ref("Build", "b", 1), Lease: lease("Build", "b", 1)})
	same(t, "entering the gate", m.at(t0), []string{"stage.succeeded:Build", "stage.started:Gate#1", "dispatched:Gate/ok#1", "waiting:ok"})
	return m
}

func TestApproval(t *testing.T) {
	okLease := lease("Gate", "ok", 1)
	cases := []struct {
		name   string
		answer func(m *sim)
		now    time.Time
		then   []string
		phase  run.Phase
		reason string
	}{
		{"an approval waits", func(*sim) {}, t0.Add(time.Hour), nil, run.Running, ""},
		{"approved, the run goes on", func(m *sim) {
			m.add(t0.Add(time.Minute), events.ActionApproved{ActionRef: ref("Gate", "ok", 1), Actor: "alice", Comment: "fine", Lease: okLease})
		}, t0.Add(time.Minute), []string{"stage.succeeded:Gate", "stage.started:Deploy#1", "dispatched:Deploy/d#1"}, run.Succeeded, ""},
		{"rejected, the run fails with who and why", func(m *sim) {
			m.add(t0.Add(time.Minute), events.ActionRejected{ActionRef: ref("Gate", "ok", 1), Actor: "bob", Comment: "error rate up", Lease: okLease})
		}, t0.Add(time.Minute), []string{"stage.failed:Gate", "run.failed:Gate"}, run.Failed, "rejected by bob: error rate up"},
		{"an approval without the lease is ignored", func(m *sim) {
			m.add(t0.Add(time.Minute), events.ActionApproved{ActionRef: ref("Gate", "ok", 1), Actor: "mallory", Lease: lease("Gate", "ok", 2)})
		}, t0.Add(time.Minute), nil, run.Running, ""},
		{"an approval of another attempt is ignored", func(m *sim) {
			m.add(t0.Add(time.Minute), events.ActionApproved{ActionRef: ref("Gate", "ok", 2), Actor: "alice", Lease: lease("Gate", "ok", 2)})
		}, t0.Add(time.Minute), nil, run.Running, ""},
		{"not a second before the timeout", func(*sim) {}, t0.Add(7*24*time.Hour - time.Second), nil, run.Running, ""},
		{"the default timeout of 7 days fails it", func(*sim) {}, t0.Add(7 * 24 * time.Hour),
			[]string{"action.failed:ok", "stage.failed:Gate", "run.failed:Gate"}, run.Failed, "approval timed out: nobody approved or rejected it within 168h0m0s"},
		{"a stop fails a waiting approval at once", func(m *sim) {
			m.add(t0.Add(time.Minute), events.RunStopping{Run: runID, Reason: "not today", Actor: "carol"})
		}, t0.Add(time.Minute), []string{"action.failed:ok", "run.stopped"}, run.Stopped, "run stopped while the approval waited: not today"},
		{"the answer after the timeout is too late", func(m *sim) {
			m.at(t0.Add(8 * 24 * time.Hour))
			m.add(t0.Add(8*24*time.Hour), events.ActionApproved{ActionRef: ref("Gate", "ok", 1), Actor: "alice", Lease: okLease})
		}, t0.Add(8 * 24 * time.Hour), nil, run.Failed, "approval timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := toGate(t, 0)
			tc.answer(m)
			same(t, "decided", m.at(tc.now), tc.then)
			// phase is the approval's (Running: still waiting) or, once
			// the run ended, the run's.
			a := m.s.Action("Gate", "ok")
			switch {
			case tc.phase == run.Running && (a.Phase != run.Running || !a.Waiting()):
				t.Fatalf("approval %s, waiting %v; want it waiting", a.Phase, a.Waiting())
			case tc.phase == run.Succeeded && (a.Phase != run.Succeeded || a.Approval.Actor != "alice" || a.Approval.Comment != "fine"):
				t.Fatalf("approval %s by %+v, want it approved by alice", a.Phase, a.Approval)
			case tc.phase != run.Running && tc.phase != run.Succeeded && m.s.Phase != tc.phase:
				t.Fatalf("run %s, want %s", m.s.Phase, tc.phase)
			}
			if !strings.Contains(a.Reason, tc.reason) {
				t.Fatalf("approval reason %q, want it to say %q", a.Reason, tc.reason)
			}
		})
	}
}

func TestApprovalWaitingEvent(t *testing.T) {
	m := toGate(t, 600)
	w := m.last(events.TypeActionWaiting).Payload.(events.ActionWaiting)
	if w.Instructions != "look at staging" || w.URL != "https://staging.example.com" || strings.Join(w.Approvers, ",") != "alice,bob" ||
		w.Expires != t0.Add(10*time.Minute).Format(time.RFC3339) {
		t.Fatalf("waiting = %+v", w)
	}
	d := m.last(events.TypeActionDispatched).Payload.(events.ActionDispatched)
	if d.Task.Kind != events.KindApproval || d.Task.LeaseHash != events.LeaseHash(lease("Gate", "ok", 1)) {
		t.Fatalf("dispatched = %+v: an approval needs the conductor's lease hash", d.Task)
	}
	// The timer is derived from the log: NextDeadline names the expiry.
	if next, ok := decider.NextDeadline(m.s, m.in); !ok || !next.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("NextDeadline = %v %v, want %v", next, ok, t0.Add(10*time.Minute))
	}
	same(t, "at the configured timeout", m.at(t0.Add(10*time.Minute)), []string{"action.failed:ok", "stage.failed:Gate", "run.failed:Gate"})
}

// A forged approval dispatch (a lease hash of someone else's making, to
// approve it with a lease they know) fails the run.
func TestForgedApprovalDispatch(t *testing.T) {
	m := newSim(t, approvalDef(0), nil)
	m.at(t0)
	forged := "forged lease"
	m.add(t0, events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, "Build", "b", 2), Run: runID, Stage: "Build",
		Action: "b", Attempt: 2, Kind: "build", Pool: "default", LeaseHash: events.LeaseHash(forged)}})
	same(t, "forged", m.at(t0), []string{"run.failed:"})
}

// condDef: Build (b), then Deploy (d) with the given conditions.
func condDef(before, after *events.Condition) events.Definition {
	return events.Definition{Name: "p", Variables: map[string]string{"ENV": "staging"}, Stages: []events.StageDef{
		{Name: "Build", Actions: []events.ActionDef{{Name: "b", Type: "build", Pool: "default", RunOrder: 1, Outputs: []string{"app"}}}},
		{Name: "Deploy", Actions: []events.ActionDef{{Name: "d", Type: "deploy", Pool: "default", RunOrder: 1}},
			BeforeEntry: before, OnSuccess: after},
		{Name: "Notify", Actions: []events.ActionDef{{Name: "n", Type: "notify", Pool: "default", RunOrder: 1}}},
	}}
}

var app = events.ArtifactRef{Name: "app", Key: "p/" + runID + "/app", SHA256: strings.Repeat("ab", 32), Size: 3}

// built runs the condition pipeline through Build.
func built(t *testing.T, before, after *events.Condition, in decider.Inputs) *sim {
	m := newSim(t, condDef(before, after), map[string]string{"COLOR": "blue"})
	m.in.Alarms = in.Alarms
	m.at(t0)
	m.add(t0, events.ActionSucceeded{ActionRef: ref("Build", "b", 1), Lease: lease("Build", "b", 1),
		Outputs: []events.ArtifactRef{app}, Variables: map[string]string{"VERSION": "1.4.2-rc1"}})
	return m
}

func rule(typ string, kv ...string) events.Rule {
	c := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return events.Rule{Name: "r", Type: typ, Configuration: c}
}

// TestConditionRules: each rule type passing and not, as a beforeEntry
// with result FAIL of the Deploy stage.
func TestConditionRules(t *testing.T) {
	thursdayNoon := t0 // 2026-11-26 12:00 UTC is a Thursday, 13:00 in Berlin
	window := func(cronExpr, tz string) events.Rule {
		return rule(events.RuleDeploymentWindow, "cron", cronExpr, "timeZone", tz)
	}
	alarm := func(win string) events.Rule {
		return rule(events.RuleNoActiveAlarm, "group", "web", "windowSeconds", win)
	}
	vc := func(v, op, val string) events.Rule {
		return rule(events.RuleVariableCheck, "variable", v, "operator", op, "value", val)
	}
	cases := []struct {
		name   string
		r      events.Rule
		now    time.Time
		alarms map[string]time.Time
		passed bool
		reason string
	}{
		{"VariableCheck EQ on a run variable", vc("COLOR", "EQ", "blue"), t0, nil, true, `COLOR is "blue"`},
		{"VariableCheck EQ differs", vc("COLOR", "EQ", "green"), t0, nil, false, `does not pass EQ "green"`},
		{"VariableCheck NE", vc("ENV", "NE", "production"), t0, nil, true, ""},
		{"VariableCheck CONTAINS on an exported variable", vc("#{VERSION}", "CONTAINS", "-rc"), t0, nil, true, ""},
		{"VariableCheck MATCHES a built-in", vc("GANTRY_REF", "MATCHES", `^refs/heads/(main|release/.*)$`), t0, nil, true, ""},
		{"VariableCheck MATCHES fails", vc("VERSION", "MATCHES", `^\d+\.\d+\.\d+$`), t0, nil, false, ""},
		{"VariableCheck of an unset variable", vc("NOPE", "EQ", ""), t0, nil, false, "variable NOPE is not set"},
		{"VariableCheck of a pipeline variable by reference", vc("#{variables.COLOR}", "EQ", "blue"), t0, nil, true, `variables.COLOR} is "blue"`},
		{"VariableCheck of a reference nothing sets", vc("#{Build.NOPE}", "EQ", ""), t0, nil, false, "is not set"},
		{"DeploymentWindow inside, Berlin", window("* 9-17 * * MON-FRI", "Europe/Berlin"), thursdayNoon, nil, true, "2026-11-26T13:00:00+01:00 is inside"},
		{"DeploymentWindow after hours, Berlin", window("* 9-17 * * MON-FRI", "Europe/Berlin"), t0.Add(5*time.Hour + 30*time.Minute), nil, false,
			"2026-11-26T18:30:00+01:00 is outside the window * 9-17 * * MON-FRI (Europe/Berlin); it opens next at 2026-11-27T09:00:00+01:00"},
		{"DeploymentWindow the same instant is outside in New York", window("* 9-17 * * MON-FRI", "America/New_York"), t0.Add(-4 * time.Hour), nil, false, "03:00:00-05:00 is outside"},
		{"DeploymentWindow on a Saturday", window("* * * * MON-FRI", "UTC"), t0.Add(48 * time.Hour), nil, false, "outside"},
		{"DeploymentWindow at the window's last minute", window("* 9-17 * * MON-FRI", "Europe/Berlin"), time.Date(2026, 11, 26, 16, 59, 59, 0, time.UTC), nil, true, ""},
		{"DeploymentWindow one minute later", window("* 9-17 * * MON-FRI", "Europe/Berlin"), time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC), nil, false, ""},
		{"DeploymentWindow with a bad zone", window("* * * * *", "Mars/Olympus"), t0, nil, false, "configuration.timeZone"},
		{"NoActiveAlarm, none ever", alarm("600"), t0, map[string]time.Time{"web": {}}, true, "no alarm was ever raised"},
		{"NoActiveAlarm, one 2 minutes ago", alarm("600"), t0, map[string]time.Time{"web": t0.Add(-2 * time.Minute)}, false, "2m0s ago, within the window of 10m0s"},
		{"NoActiveAlarm, one 20 minutes ago", alarm("600"), t0, map[string]time.Time{"web": t0.Add(-20 * time.Minute)}, true, "no alarm on deployment group web within 10m0s"},
		{"NoActiveAlarm, default window 10 minutes", alarm(""), t0, map[string]time.Time{"web": t0.Add(-9 * time.Minute)}, false, ""},
		{"NoActiveAlarm, alarms unknown", alarm("600"), t0, nil, false, "unknown to the conductor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.Configuration["windowSeconds"] == "" {
				delete(tc.r.Configuration, "windowSeconds")
			}
			m := built(t, &events.Condition{Result: events.ResultFail, Rules: []events.Rule{tc.r}}, nil, decider.Inputs{Alarms: tc.alarms})
			got := m.at(tc.now)
			want := []string{"stage.succeeded:Build", "evaluated:beforeEntry/r=" + fmt.Sprint(tc.passed), "stage.started:Deploy#1"}
			if tc.passed {
				want = append(want, "dispatched:Deploy/d#1")
			} else {
				want = append(want, "stage.failed:Deploy", "run.failed:Deploy")
			}
			same(t, "decided", got, want)
			e := m.last(events.TypeConditionEvaluated).Payload.(events.ConditionEvaluated)
			if !strings.Contains(e.Reason, tc.reason) {
				t.Fatalf("reason %q, want it to say %q", e.Reason, tc.reason)
			}
			if !tc.passed && !strings.Contains(m.s.Reason, "beforeEntry rule r ("+tc.r.Type+") did not pass") {
				t.Fatalf("run reason %q does not name the rule", m.s.Reason)
			}
		})
	}
}

// TestConditionResults: what a rule that does not pass does, by result.
func TestConditionResults(t *testing.T) {
	pass := rule(events.RuleVariableCheck, "variable", "COLOR", "operator", "EQ", "value", "blue")
	pass.Name = "p"
	fail := rule(events.RuleVariableCheck, "variable", "COLOR", "operator", "EQ", "value", "green")
	fail.Name = "f"
	cond := func(result string, rs ...events.Rule) *events.Condition {
		return &events.Condition{Result: result, Rules: rs}
	}
	deployed := func(m *sim) []string {
		m.at(t0)
		m.add(t0, events.ActionSucceeded{ActionRef: ref("Deploy", "d", 1), Lease: lease("Deploy", "d", 1)})
		return m.at(t0)
	}
	cases := []struct {
		name          string
		before, after *events.Condition
		drive         func(m *sim) []string
		then          []string
		stage         run.Phase
	}{
		{"beforeEntry all pass: the stage starts", cond(events.ResultFail, pass, pass2(pass)), nil, func(m *sim) []string { return m.at(t0) },
			[]string{"stage.succeeded:Build", "evaluated:beforeEntry/p=true", "evaluated:beforeEntry/p2=true", "stage.started:Deploy#1", "dispatched:Deploy/d#1"}, run.Running},
		{"beforeEntry FAIL: the first rule that fails decides", cond(events.ResultFail, pass, fail, pass2(pass)), nil, func(m *sim) []string { return m.at(t0) },
			[]string{"stage.succeeded:Build", "evaluated:beforeEntry/p=true", "evaluated:beforeEntry/f=false", "stage.started:Deploy#1", "stage.failed:Deploy", "run.failed:Deploy"}, run.Failed},
		{"beforeEntry SKIP: the stage is skipped, the run goes on", cond(events.ResultSkip, fail), nil, func(m *sim) []string { return m.at(t0) },
			[]string{"stage.succeeded:Build", "evaluated:beforeEntry/f=false", "stage.skipped:Deploy", "stage.started:Notify#1", "dispatched:Notify/n#1"}, run.Skipped},
		{"onSuccess all pass: the stage succeeds", nil, cond(events.ResultFail, pass), deployed,
			[]string{"evaluated:onSuccess/p=true", "stage.succeeded:Deploy", "stage.started:Notify#1", "dispatched:Notify/n#1"}, run.Succeeded},
		{"onSuccess FAIL: the stage fails after its actions succeeded", nil, cond(events.ResultFail, fail), deployed,
			[]string{"evaluated:onSuccess/f=false", "stage.failed:Deploy", "run.failed:Deploy"}, run.Failed},
		{"onSuccess ROLLBACK: the stage fails asking for a rollback", nil, cond(events.ResultRollback, fail), deployed,
			[]string{"evaluated:onSuccess/f=false", "stage.failed+rollback:Deploy", "run.failed:Deploy"}, run.Failed},
		{"onSuccess is not checked while an action fails", nil, cond(events.ResultFail, pass), func(m *sim) []string {
			m.at(t0)
			m.add(t0, events.ActionFailed{ActionRef: ref("Deploy", "d", 1), Lease: lease("Deploy", "d", 1), Reason: "boom"})
			return m.at(t0)
		}, []string{"stage.failed:Deploy", "run.failed:Deploy"}, run.Failed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := built(t, tc.before, tc.after, decider.Inputs{})
			same(t, "decided", tc.drive(m), tc.then)
			if st := m.s.Stage("Deploy"); st.Phase != tc.stage {
				t.Fatalf("stage Deploy %s, want %s", st.Phase, tc.stage)
			}
			if tc.stage == run.Skipped {
				m.add(t0, events.ActionSucceeded{ActionRef: ref("Notify", "n", 1), Lease: lease("Notify", "n", 1)})
				same(t, "after the skipped stage", m.at(t0), []string{"stage.succeeded:Notify", "run.succeeded"})
			}
			if strings.Contains(tc.name, "ROLLBACK") {
				sf := m.last(events.TypeStageFailed).Payload.(events.StageFailed)
				if !sf.Rollback || !strings.Contains(sf.Reason, "a rollback of the stage is requested") {
					t.Fatalf("stage.failed = %+v", sf)
				}
			}
			// Evaluations are facts: deciding again evaluates nothing twice.
			if evs := decider.Decide(m.s, m.in); len(evs) != 0 {
				t.Fatalf("decided again: %v", gateSummary(evs))
			}
		})
	}
}

func pass2(r events.Rule) events.Rule {
	r.Name = "p2"
	return r
}

// TestCommandRule: a Command rule dispatches a test task with the command
// verbatim and is evaluated by the task's result or its deadline.
func TestCommandRule(t *testing.T) {
	cmd := `test "$(cat version.txt)" != "" && echo '#{pipeline.runId}' $GANTRY_RUN_ID`
	r := rule(events.RuleCommand, "command", cmd, "pool", "smoke", "timeoutSeconds", "60", "input", "app")
	r.Name = "smoke"
	task := "beforeEntry-smoke"
	l := lease("Deploy", task, 1)
	cases := []struct {
		name   string
		result func(m *sim)
		now    time.Time
		then   []string
	}{
		{"waits for the task", func(*sim) {}, t0.Add(time.Minute), nil},
		{"passes when the command succeeded", func(m *sim) {
			m.add(t0, events.ActionStarted{ActionRef: ref("Deploy", task, 1), Worker: "t1"})
			m.add(t0, events.ActionSucceeded{ActionRef: ref("Deploy", task, 1), Lease: l, Worker: "t1"})
		}, t0, []string{"evaluated:beforeEntry/smoke=true", "stage.started:Deploy#1", "dispatched:Deploy/d#1"}},
		{"fails when the command failed", func(m *sim) {
			m.add(t0, events.ActionFailed{ActionRef: ref("Deploy", task, 1), Lease: l, Reason: "exit status 1"})
		}, t0, []string{"evaluated:beforeEntry/smoke=false", "stage.started:Deploy#1", "stage.failed:Deploy", "run.failed:Deploy"}},
		{"a result without the lease is ignored", func(m *sim) {
			m.add(t0, events.ActionSucceeded{ActionRef: ref("Deploy", task, 1), Lease: lease("Deploy", task, 2)})
		}, t0, nil},
		{"fails at its deadline", func(*sim) {}, t0.Add(time.Minute + decider.DefaultGrace),
			[]string{"evaluated:beforeEntry/smoke=false", "stage.started:Deploy#1", "stage.failed:Deploy", "run.failed:Deploy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := built(t, &events.Condition{Result: events.ResultFail, Rules: []events.Rule{r}}, nil, decider.Inputs{})
			same(t, "dispatch", m.at(t0), []string{"stage.succeeded:Build", "dispatched:Deploy/beforeEntry-smoke#1"})
			d := m.last(events.TypeActionDispatched).Payload.(events.ActionDispatched).Task
			if d.Kind != "test" || d.Pool != "smoke" || d.TimeoutSeconds != 60 || len(d.Inputs) != 1 || d.Inputs[0] != app ||
				d.Configuration[decider.ConditionTaskKey] != events.BeforeEntry || d.LeaseHash != events.LeaseHash(l) {
				t.Fatalf("task = %+v", d)
			}
			// The command travels verbatim, inside a JSON buildspec: no
			// variable of the run is substituted into it.
			if !strings.Contains(d.Configuration["buildspec"], `"test \"$(cat version.txt)\" != \"\" \u0026\u0026 echo '#{pipeline.runId}' $GANTRY_RUN_ID"`) {
				t.Fatalf("buildspec = %s", d.Configuration["buildspec"])
			}
			if next, ok := decider.NextDeadline(m.s, m.in); !ok || !next.Equal(t0.Add(time.Minute+decider.DefaultGrace)) {
				t.Fatalf("NextDeadline = %v %v", next, ok)
			}
			tc.result(m)
			same(t, "then", m.at(tc.now), tc.then)
		})
	}
}

func TestCheckRule(t *testing.T) {
	cases := []struct {
		r    events.Rule
		want string
	}{
		{rule(events.RuleVariableCheck, "variable", "X", "operator", "EQ", "value", "1"), ""},
		{rule(events.RuleVariableCheck, "variable", "X", "operator", "GT", "value", "1"), `configuration.operator "GT" must be EQ, NE, CONTAINS or MATCHES`},
		{rule(events.RuleVariableCheck, "variable", "X", "operator", "MATCHES", "value", "("), "configuration.value is not a regular expression"},
		{rule(events.RuleVariableCheck, "operator", "EQ"), "VariableCheck rule needs configuration.variable"},
		{rule(events.RuleDeploymentWindow, "cron", "* 9-17 * * MON-FRI", "timeZone", "Europe/Berlin"), ""},
		{rule(events.RuleDeploymentWindow, "cron", "61 * * * *"), "configuration.cron \"61 * * * *\""},
		{rule(events.RuleDeploymentWindow, "cron", "CRON_TZ=UTC * * * * *"), "give the time zone in configuration.timeZone"},
		{rule(events.RuleDeploymentWindow, "cron", "@daily", "timeZone", "Nowhere/City"), "configuration.timeZone \"Nowhere/City\""},
		{rule(events.RuleNoActiveAlarm, "group", "web", "windowSeconds", "ten"), "configuration.windowSeconds \"ten\" must be a whole number"},
		{rule(events.RuleNoActiveAlarm, "group", "no such group"), "configuration.group"},
		{rule(events.RuleCommand, "command", "make smoke", "timeoutSeconds", "99999"), "configuration.timeoutSeconds"},
		{rule(events.RuleCommand, "command", "make smoke", "shell", "zsh"), "configuration.shell is not a setting of a Command rule"},
		{rule(events.RuleCommand), "Command rule needs configuration.command"},
	}
	for _, tc := range cases {
		err := decider.CheckRule(tc.r)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckRule(%v) = %v, want %q", tc.r.Configuration, err, tc.want)
		}
	}
}

// A condition task dispatched by someone without the lease key (so that
// they can "pass" the rule with a result under their own lease) fails the
// run before it is believed.
func TestForgedConditionTask(t *testing.T) {
	r := rule(events.RuleCommand, "command", "true")
	r.Name = "smoke"
	task := "beforeEntry-smoke"
	m := newSim(t, condDef(&events.Condition{Result: events.ResultFail, Rules: []events.Rule{r}}, nil), nil)
	m.at(t0)
	m.add(t0, events.ActionSucceeded{ActionRef: ref("Build", "b", 1), Lease: lease("Build", "b", 1), Outputs: []events.ArtifactRef{app}})
	m.add(t0, events.StageSucceeded{Run: runID, Stage: "Build", Attempt: 1})
	m.add(t0, events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, "Deploy", task, 1), Run: runID, Stage: "Deploy",
		Action: task, Attempt: 1, Kind: "test", Pool: "default", LeaseHash: events.LeaseHash("mine")}})
	m.add(t0, events.ActionSucceeded{ActionRef: ref("Deploy", task, 1), Lease: "mine"})
	same(t, "forged", m.at(t0), []string{"run.failed:"})
	if !strings.Contains(m.s.Reason, "the task of beforeEntry rule smoke of stage Deploy (attempt 1) was not dispatched by a conductor") {
		t.Fatalf("reason %q", m.s.Reason)
	}
}

// What a definition from outside the parser gives an approval is clipped
// to action.waiting's bounds, so the event can always be appended.
func TestApprovalWaitingIsClipped(t *testing.T) {
	d := approvalDef(0)
	d.Stages[1].Actions[0].Configuration = map[string]string{
		"instructions": strings.Repeat("read ", 2000), "url": "https://example.com/" + strings.Repeat("x", 3000),
		"approvers": strings.Repeat("y", 300) + ", alice",
	}
	m := newSim(t, d, nil)
	m.at(t0)
	m.add(t0, events.ActionSucceeded{ActionRef: ref("Build", "b", 1), Lease: lease("Build", "b", 1)})
	m.at(t0) // encodes every decided event
	w := m.last(events.TypeActionWaiting).Payload.(events.ActionWaiting)
	if len([]rune(w.Instructions)) != events.MaxApprovalText || w.URL != "" || strings.Join(w.Approvers, ",") != "alice" {
		t.Fatalf("waiting = %d runes of instructions, url %q, approvers %q", len([]rune(w.Instructions)), w.URL, w.Approvers)
	}
}

// Stopping with abandon abandons a Command rule's task in flight (its
// worker kills the command); a plain stop does not wait for it.
func TestStopAndConditionTasks(t *testing.T) {
	r := rule(events.RuleCommand, "command", "sleep 600")
	r.Name = "slow"
	for _, abandon := range []bool{false, true} {
		m := built(t, &events.Condition{Result: events.ResultFail, Rules: []events.Rule{r}}, nil, decider.Inputs{})
		same(t, "dispatch", m.at(t0), []string{"stage.succeeded:Build", "dispatched:Deploy/beforeEntry-slow#1"})
		m.add(t0, events.ActionStarted{ActionRef: ref("Deploy", "beforeEntry-slow", 1), Worker: "t1"})
		m.add(t0, events.RunStopping{Run: runID, Reason: "enough", Abandon: abandon})
		want := []string{"run.stopped"}
		if abandon {
			want = []string{"action.abandoned:beforeEntry-slow", "run.stopped"}
		}
		same(t, fmt.Sprintf("stop (abandon %v)", abandon), m.at(t0), want)
	}
}

// An approval whose dispatch was appended but whose action.waiting was
// not (another conductor appended in between) is announced on the next
// decision, from the log alone, with the expiry its dispatch gives.
func TestUnannouncedApprovalWaitsAgain(t *testing.T) {
	d := events.Definition{Name: "p", Stages: []events.StageDef{{Name: "Gate", Actions: []events.ActionDef{
		{Name: "sign-off", Type: events.KindApproval, Pool: "default", RunOrder: 1, TimeoutSeconds: 3600,
			Configuration: map[string]string{"instructions": "look first"}},
	}}}}
	s := foldDef(t, d, given{
		events.RunStarted{Run: runID},
		events.StageStarted{Run: runID, Stage: "Gate", Attempt: 1},
		events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, "Gate", "sign-off", 1), Pipeline: "p", Run: runID,
			Stage: "Gate", Action: "sign-off", Attempt: 1, Kind: events.KindApproval, Pool: "default",
			LeaseHash: events.LeaseHash(lease("Gate", "sign-off", 1))}},
	})
	later := decider.Inputs{Now: t0.Add(10 * time.Minute), LeaseKey: key}
	evs := decider.Decide(s, later)
	if len(evs) != 1 || evs[0].Type != events.TypeActionWaiting {
		t.Fatalf("decided %v, want one action.waiting", evs)
	}
	w := evs[0].Payload.(events.ActionWaiting)
	if want := t0.Add(time.Hour).UTC().Format(time.RFC3339); w.Expires != want || w.Instructions != "look first" {
		t.Errorf("waiting %+v, want expiry %s from the dispatch", w, want)
	}
	if s = run.Fold(s, evs...); !s.Action("Gate", "sign-off").Waiting() {
		t.Error("the approval does not wait after the decision")
	}
}

// An approval's instructions and url read #{...} references like any
// configuration (CodePipeline's approval comments and link do); approvers
// never do; an unresolved reference or a substituted url that is no http
// link fails the approval at once instead of asking anybody.
func TestApprovalReferences(t *testing.T) {
	tests := []struct {
		name         string
		cfg          map[string]string
		exported     map[string]string
		decided      []string
		instructions string
		url          string
	}{
		{name: "resolved",
			cfg:          map[string]string{"instructions": "ship #{B.TAG} of #{pipeline.name} (#{variables.ENV})?", "url": "https://ci.example.com/#{B.TAG}", "approvers": "alice"},
			exported:     map[string]string{"TAG": "v1.2"},
			decided:      []string{"stage.succeeded:Build", "stage.started:Gate#1", "dispatched:Gate/ok#1", "waiting:ok"},
			instructions: "ship v1.2 of p (staging)?", url: "https://ci.example.com/v1.2"},
		{name: "whole url from a build",
			cfg:      map[string]string{"url": "#{B.REPORT}"},
			exported: map[string]string{"REPORT": "https://reports.example.com/42"},
			decided:  []string{"stage.succeeded:Build", "stage.started:Gate#1", "dispatched:Gate/ok#1", "waiting:ok"},
			url:      "https://reports.example.com/42"},
		{name: "unresolved",
			cfg:      map[string]string{"instructions": "ship #{B.MISSING}?"},
			exported: map[string]string{"TAG": "v1"},
			decided:  []string{"stage.succeeded:Build", "stage.started:Gate#1", "dispatched:Gate/ok#1", "action.failed:ok", "stage.failed:Gate", "run.failed:Gate"}},
		{name: "substituted url is no link",
			cfg:      map[string]string{"url": "#{B.REPORT}"},
			exported: map[string]string{"REPORT": "javascript:alert(1)"},
			decided:  []string{"stage.succeeded:Build", "stage.started:Gate#1", "dispatched:Gate/ok#1", "action.failed:ok", "stage.failed:Gate", "run.failed:Gate"}},
		{name: "approvers stay as written",
			cfg:      map[string]string{"approvers": "#{B.WHO}"},
			exported: map[string]string{"WHO": "mallory"},
			decided:  []string{"stage.succeeded:Build", "stage.started:Gate#1", "dispatched:Gate/ok#1", "waiting:ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := events.Definition{Name: "p", Variables: map[string]string{"ENV": "staging"}, Stages: []events.StageDef{
				{Name: "Build", Actions: []events.ActionDef{{Name: "b", Type: "build", Pool: "default", RunOrder: 1, Namespace: "B"}}},
				{Name: "Gate", Actions: []events.ActionDef{{Name: "ok", Type: events.KindApproval, Pool: "default", RunOrder: 1,
					TimeoutSeconds: 600, Configuration: tt.cfg}}},
			}}
			m := newSim(t, d, nil)
			m.at(t0)
			m.add(t0, events.ActionSucceeded{ActionRef: ref("Build", "b", 1), Lease: lease("Build", "b", 1), Variables: tt.exported})
			same(t, "entering the gate", m.at(t0), tt.decided)
			if tt.decided[len(tt.decided)-1] != "waiting:ok" {
				f := m.last(events.TypeActionFailed).Payload.(events.ActionFailed)
				if !strings.Contains(f.Reason, "configuration") {
					t.Errorf("failed with %q, want the configuration value named", f.Reason)
				}
				return
			}
			w := m.last(events.TypeActionWaiting).Payload.(events.ActionWaiting)
			if w.Instructions != tt.instructions || w.URL != tt.url {
				t.Errorf("waiting: instructions %q url %q, want %q %q", w.Instructions, w.URL, tt.instructions, tt.url)
			}
			if tt.cfg["approvers"] != "" && strings.Join(w.Approvers, ",") != tt.cfg["approvers"] {
				t.Errorf("approvers %q, want %q as written", w.Approvers, tt.cfg["approvers"])
			}
			// Decided again from the log without the waiting event (another
			// conductor's append came between), the text is the same.
			var s run.State
			for _, e := range m.log {
				if e.Type != events.TypeActionWaiting {
					s = run.Evolve(s, e)
				}
			}
			evs := decider.Decide(s, m.in)
			if len(evs) != 1 || evs[0].Type != events.TypeActionWaiting {
				t.Fatalf("decided again %v, want one action.waiting", evs)
			}
			if again := evs[0].Payload.(events.ActionWaiting); again.Instructions != w.Instructions || again.URL != w.URL {
				t.Errorf("decided again %+v, first %+v", again, w)
			}
		})
	}
}
