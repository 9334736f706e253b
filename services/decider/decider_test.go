package decider_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// key is the conductor's lease key in these tests; in0 decides at t0.
var (
	key = []byte("test lease key")
	in0 = decider.Inputs{Now: t0, LeaseKey: key}
)

// lease is the lease the conductor gives an attempt.
func lease(stage, action string, attempt int) string {
	return events.LeaseToken(key, events.TaskID(runID, stage, action, attempt))
}

const runID = "01a2154b-ea92-7634-ac3c-6b12b7b33cb5"

// def: stage A has x (runOrder 1) producing "src"; stage B has y and z in
// runOrder 1 (parallel) and w in runOrder 2 consuming "src".
func def() events.Definition {
	return events.Definition{Name: "p", Variables: map[string]string{"V": "def"}, Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{{Name: "x", Type: "source", Pool: "default", RunOrder: 1, Outputs: []string{"src"},
			Configuration: map[string]string{"branch": "${BRANCH}", "repo": "r"}}}},
		{Name: "B", Actions: []events.ActionDef{
			{Name: "y", Type: "build", Pool: "default", RunOrder: 1},
			{Name: "z", Type: "build", Pool: "big", RunOrder: 1},
			{Name: "w", Type: "test", Pool: "default", RunOrder: 2, Inputs: []string{"src"}},
		}},
	}}
}

type given []events.Payload

func ev(t *testing.T, p events.Payload) events.Event {
	t.Helper()
	e, err := events.New(fmt.Sprintf("%T", p), "/test", runID, t0, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ref(stage, action string, attempt int) events.ActionRef {
	return events.ActionRef{Run: runID, Stage: stage, Action: action, Attempt: attempt}
}

var src = events.ArtifactRef{Name: "src", Key: "p/" + runID + "/src", SHA256: "ab", Size: 3}

func fold(t *testing.T, g given) run.State {
	t.Helper()
	s := run.State{}
	for i, p := range append(given{events.RunRequested{Pipeline: "p", Run: runID, Revision: 1, Definition: def(),
		Variables: map[string]string{"BRANCH": "main"}, Trigger: events.Trigger{ID: "t", Kind: "manual"}}}, g...) {
		e := ev(t, p)
		e.Seq = uint64(i + 1)
		s = run.Evolve(s, e)
	}
	return s
}

// summary is "type:detail" for each decided event, so tables read easily.
func summary(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.RunStarted:
			out = append(out, "run.started")
		case events.RunSucceeded:
			out = append(out, "run.succeeded")
		case events.RunFailed:
			out = append(out, "run.failed:"+p.Stage)
		case events.StageStarted:
			out = append(out, fmt.Sprintf("stage.started:%s#%d", p.Stage, p.Attempt))
		case events.StageSucceeded:
			out = append(out, "stage.succeeded:"+p.Stage)
		case events.StageFailed:
			out = append(out, "stage.failed:"+p.Stage)
		case events.ActionDispatched:
			out = append(out, fmt.Sprintf("dispatched:%s/%s#%d", p.Task.Stage, p.Task.Action, p.Task.Attempt))
		case events.ActionFailed:
			out = append(out, "action.failed:"+p.Action)
		case events.ActionAbandoned:
			out = append(out, "action.abandoned:"+p.Action)
		case events.RunStopped:
			out = append(out, "run.stopped")
		default:
			out = append(out, e.Type)
		}
	}
	return out
}

func TestDecide(t *testing.T) {
	ok := func(stage, action string) events.Payload {
		return events.ActionSucceeded{ActionRef: ref(stage, action, 1), Lease: lease(stage, action, 1)}
	}
	disp := func(stage, action string) events.Payload {
		return events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, stage, action, 1), Run: runID, Stage: stage, Action: action, Attempt: 1, LeaseHash: events.LeaseHash(lease(stage, action, 1))}}
	}
	started := given{events.RunStarted{Run: runID}}
	inA := append(slices.Clone(started), events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, disp("A", "x"))
	aDone := append(slices.Clone(inA), events.ActionSucceeded{ActionRef: ref("A", "x", 1), Lease: lease("A", "x", 1), Outputs: []events.ArtifactRef{src}},
		events.StageSucceeded{Run: runID, Stage: "A", Attempt: 1})
	inB := append(slices.Clone(aDone), events.StageStarted{Run: runID, Stage: "B", Attempt: 1}, disp("B", "y"), disp("B", "z"))
	cases := []struct {
		name  string
		given given
		then  []string
	}{
		{"a requested run starts", nil, []string{"run.started"}},
		{"a started run starts its first stage", started, []string{"stage.started:A#1"}},
		{"a started stage dispatches its first group",
			append(slices.Clone(started), events.StageStarted{Run: runID, Stage: "A", Attempt: 1}), []string{"dispatched:A/x#1"}},
		{"a dispatched action is waited for", inA, nil},
		{"a running action is waited for", append(slices.Clone(inA), events.ActionStarted{ActionRef: ref("A", "x", 1), Worker: "w1"}), nil},
		{"the last action's success ends the stage",
			append(slices.Clone(inA), events.ActionSucceeded{ActionRef: ref("A", "x", 1), Lease: lease("A", "x", 1)}), []string{"stage.succeeded:A"}},
		{"the next stage starts", aDone, []string{"stage.started:B#1"}},
		{"actions of one runOrder go out together",
			append(slices.Clone(aDone), events.StageStarted{Run: runID, Stage: "B", Attempt: 1}), []string{"dispatched:B/y#1", "dispatched:B/z#1"}},
		{"the next group waits for the whole group", append(slices.Clone(inB), ok("B", "y")), nil},
		{"the next group follows the whole group", append(slices.Clone(inB), ok("B", "y"), ok("B", "z")), []string{"dispatched:B/w#1"}},
		{"a failure waits for the rest of its group",
			append(slices.Clone(inB), events.ActionFailed{ActionRef: ref("B", "y", 1), Lease: lease("B", "y", 1), Reason: "exit 1"}), nil},
		{"a failure fails the stage once the group ended",
			append(slices.Clone(inB), events.ActionFailed{ActionRef: ref("B", "y", 1), Lease: lease("B", "y", 1), Reason: "exit 1"}, ok("B", "z")), []string{"stage.failed:B"}},
		{"a failed stage fails the run",
			append(slices.Clone(inB), events.ActionFailed{ActionRef: ref("B", "y", 1), Lease: lease("B", "y", 1), Reason: "exit 1"}, ok("B", "z"),
				events.StageFailed{Run: runID, Stage: "B", Attempt: 1, Reason: "y"}), []string{"run.failed:B"}},
		{"a stale attempt's result is ignored",
			append(slices.Clone(inA), events.ActionSucceeded{ActionRef: ref("A", "x", 7)}), nil},
		{"every stage done ends the run",
			append(slices.Clone(inB), ok("B", "y"), ok("B", "z"), disp("B", "w"), ok("B", "w"),
				events.StageSucceeded{Run: runID, Stage: "B", Attempt: 1}), []string{"run.succeeded"}},
		{"an ended run decides nothing",
			append(slices.Clone(started), events.RunFailed{Run: runID, Reason: "stopped"}), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summary(decider.Decide(fold(t, c.given), in0))
			if !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
		})
	}
}

func TestDispatchCarriesInputsVariablesAndConfiguration(t *testing.T) {
	s := fold(t, given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}})
	evs := decider.Decide(s, in0)
	task := evs[0].Payload.(events.ActionDispatched).Task
	// Configuration is verbatim: run variables reach commands only as
	// environment variables, never substituted into text a shell runs.
	if task.Configuration["branch"] != "${BRANCH}" || task.Configuration["repo"] != "r" {
		t.Fatalf("configuration was rewritten: %v", task.Configuration)
	}
	if task.Variables["V"] != "def" || task.Variables["GANTRY_RUN_ID"] != runID || task.Kind != "source" {
		t.Fatalf("task = %+v", task)
	}
	if task.ID != events.TaskID(runID, "A", "x", 1) || evs[0].ID != task.ID+"/dispatched" {
		t.Fatalf("ids: task %s event %s", task.ID, evs[0].ID)
	}
}

func TestMissingInputFailsTheAttemptAtOnce(t *testing.T) {
	// x succeeds without producing "src"; w must not be sent to a worker blind.
	disp := func(stage, action string) events.Payload {
		return events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, stage, action, 1), Run: runID, Stage: stage, Action: action, Attempt: 1, LeaseHash: events.LeaseHash(lease(stage, action, 1))}}
	}
	g := given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, disp("A", "x"),
		events.ActionSucceeded{ActionRef: ref("A", "x", 1), Lease: lease("A", "x", 1)}, events.StageSucceeded{Run: runID, Stage: "A", Attempt: 1},
		events.StageStarted{Run: runID, Stage: "B", Attempt: 1}, disp("B", "y"), disp("B", "z"),
		events.ActionSucceeded{ActionRef: ref("B", "y", 1), Lease: lease("B", "y", 1)}, events.ActionSucceeded{ActionRef: ref("B", "z", 1), Lease: lease("B", "z", 1)}}
	got := summary(decider.Decide(fold(t, g), in0))
	if !slices.Equal(got, []string{"dispatched:B/w#1", "action.failed:w"}) {
		t.Fatalf("got %v", got)
	}
}

// TestDecideIsDeterministic: the same state decides the same events, byte for
// byte, which is what lets two conductors race safely.
func TestDecideIsDeterministic(t *testing.T) {
	s := fold(t, given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}})
	a, b := decider.Decide(s, in0), decider.Decide(s, in0)
	if len(a) != len(b) || string(a[0].Data) != string(b[0].Data) || a[0].ID != b[0].ID {
		t.Fatal("two decisions of one state differ")
	}
}

func TestDispatchRecordsTheLeaseHashOnly(t *testing.T) {
	s := fold(t, given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}})
	task := decider.Decide(s, in0)[0].Payload.(events.ActionDispatched).Task
	if task.Lease != "" {
		t.Fatal("the dispatched event carries the lease itself")
	}
	if task.LeaseHash != events.LeaseHash(lease("A", "x", 1)) {
		t.Fatalf("lease hash %q is not the hash of the attempt's lease", task.LeaseHash)
	}
}

// An attempt whose result never comes fails at dispatch + timeout + grace,
// with a reason naming the kind and pool, and the attempt's lease.
func TestDeadlineFailsAnAttemptWithoutResult(t *testing.T) {
	d := def()
	d.Stages[0].Actions[0].TimeoutSeconds = 60
	s := run.State{}
	for i, p := range []events.Payload{
		events.RunRequested{Pipeline: "p", Run: runID, Revision: 1, Definition: d, Trigger: events.Trigger{ID: "t", Kind: "manual"}},
		events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1},
	} {
		e := ev(t, p)
		e.Seq = uint64(i + 1)
		s = run.Evolve(s, e)
	}
	s = run.Fold(s, decider.Decide(s, in0)...) // dispatched at t0
	grace := 10 * time.Second
	at := func(d time.Duration) decider.Inputs {
		return decider.Inputs{Now: t0.Add(d), LeaseKey: key, Grace: grace}
	}
	next, ok := decider.NextDeadline(s, at(0))
	if !ok || !next.Equal(t0.Add(70*time.Second)) {
		t.Fatalf("next deadline %v %v, want t0+70s", next, ok)
	}
	cases := []struct {
		name string
		now  time.Duration
		then []string
	}{
		{"before the timeout", 59 * time.Second, nil},
		{"in the grace", 69 * time.Second, nil},
		{"at the deadline", 70 * time.Second, []string{"action.failed:x"}},
		{"long after", 48 * time.Hour, []string{"action.failed:x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := decider.Decide(s, at(c.now))
			if got := summary(evs); !slices.Equal(got, c.then) {
				t.Fatalf("then %v, want %v", got, c.then)
			}
			if len(evs) == 0 {
				return
			}
			f := evs[0].Payload.(events.ActionFailed)
			if f.Lease != lease("A", "x", 1) || !strings.Contains(f.Reason, "kind source pool default") {
				t.Fatalf("failure %+v", f)
			}
			if after := run.Fold(s, evs...); after.Action("A", "x").Phase != run.Failed {
				t.Fatal("the fold ignored the conductor's own timeout")
			}
		})
	}
	// Without a timeout in the definition, DefaultTimeout applies.
	s.Definition.Stages[0].Actions[0].TimeoutSeconds = 0
	if next, _ := decider.NextDeadline(s, at(0)); !next.Equal(t0.Add(decider.DefaultTimeout + grace)) {
		t.Fatalf("default deadline %v", next)
	}
}

// TestDispatchCarriesSecretRefsUnexpanded: a task names its secrets by
// reference, as written, even when a run variable looks like one.
func TestDispatchCarriesSecretRefsUnexpanded(t *testing.T) {
	d := def()
	d.Stages[0].Actions[0].Secrets = map[string]string{"TOKEN": "npm-token", "KEY": "file:/run/secrets/${BRANCH}"}
	s := run.State{}
	for i, p := range []events.Payload{
		events.RunRequested{Pipeline: "p", Run: runID, Revision: 1, Definition: d,
			Variables: map[string]string{"BRANCH": "main"}, Trigger: events.Trigger{ID: "t", Kind: "manual"}},
		events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1},
	} {
		e := ev(t, p)
		e.Seq = uint64(i + 1)
		s = run.Evolve(s, e)
	}
	task := decider.Decide(s, in0)[0].Payload.(events.ActionDispatched).Task
	want := map[string]string{"TOKEN": "npm-token", "KEY": "file:/run/secrets/${BRANCH}"}
	if !maps.Equal(task.Secrets, want) {
		t.Fatalf("task secrets = %v, want %v", task.Secrets, want)
	}
}

// A bus client allowed to append run events can write an action.dispatched
// with a lease of its own and then a "result" under that lease: the fold
// takes both (it has no key), so the decider, which has, fails the run.
func TestForgedDispatchFailsTheRun(t *testing.T) {
	own := events.LeaseHash("f00d" + strings.Repeat("0", 60))
	forged := events.ActionDispatched{Task: events.Task{ID: events.TaskID(runID, "A", "x", 2), Run: runID,
		Stage: "A", Action: "x", Attempt: 2, LeaseHash: own}}
	s := fold(t, given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, forged})
	evs := decider.Decide(s, in0)
	if len(evs) != 1 {
		t.Fatalf("decided %v, want one run.failed", summary(evs))
	}
	f, ok := evs[0].Payload.(events.RunFailed)
	if !ok || !strings.Contains(f.Reason, "forged action.dispatched") || !strings.Contains(f.Reason, "A/x attempt 2") {
		t.Fatalf("decided %+v", evs[0].Payload)
	}
	// The conductor's own dispatch of the same attempt is not forged.
	real := forged
	real.Task.LeaseHash = events.LeaseHash(lease("A", "x", 2))
	s = fold(t, given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, real})
	if evs := decider.Decide(s, in0); len(evs) != 0 {
		t.Fatalf("the conductor's own dispatch: decided %v, want to wait", summary(evs))
	}
}
