package lanes

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

var now = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

// apply decides on lane and views and folds the decision in, returning a
// short text of each event ("entered r2 Deploy").
func apply(t *testing.T, s State, views ...View) (State, []string) {
	t.Helper()
	m := map[string]View{}
	for _, v := range views {
		m[v.Run] = v
	}
	evs := Decide(s, "p", m, now)
	var got []string
	for i, e := range evs {
		e.Seq = s.LastSeq + uint64(i) + 1
		s = Evolve(s, e)
		got = append(got, describe(e))
	}
	// Deciding again on the result is quiet: the decision is complete.
	if again := Decide(s, "p", m, now); len(again) > 0 {
		t.Errorf("a second decision on the same views appended %s", describe(again[0]))
	}
	return s, got
}

func describe(e events.Event) string {
	switch p := e.Payload.(type) {
	case events.LaneWaiting:
		return "waiting " + p.Run + " " + p.Stage
	case events.LaneEntered:
		return "entered " + p.Run + " " + p.Stage
	case events.LaneLeft:
		return strings.TrimSpace("left " + p.Run + " " + p.Stage)
	case events.LaneSuperseded:
		return "superseded " + p.Run + " " + p.Stage + " by " + p.By
	}
	return e.Type
}

func waitAt(r string, order uint64, mode, stage string) View {
	return View{Run: r, Order: order, Mode: mode, Waiting: []string{stage}}
}

func in(r string, order uint64, mode, stage string) View {
	return View{Run: r, Order: order, Mode: mode, In: []string{stage}}
}

func done(r string, order uint64, mode string) View {
	return View{Run: r, Order: order, Mode: mode, Done: true}
}

func disabled(s State, stage string) State {
	e, _ := events.New("t", Source, events.LaneToken, now, events.LaneTransition{Pipeline: "p", Stage: stage, Disabled: true, Reason: "freeze", Actor: "alice"})
	return Evolve(s, e)
}

func enabled(s State, stage string) State {
	e, _ := events.New("t", Source, events.LaneToken, now, events.LaneTransition{Pipeline: "p", Stage: stage})
	return Evolve(s, e)
}

func TestDecide(t *testing.T) {
	const (
		sup = events.ModeSuperseded
		que = events.ModeQueued
		par = events.ModeParallel
	)
	type step struct {
		views []View
		want  []string
	}
	tests := []struct {
		name    string
		disable string
		steps   []step
	}{
		{"a lone run enters, moves on, leaves", "", []step{
			{[]View{waitAt("r1", 1, sup, "Build")}, []string{"waiting r1 Build", "entered r1 Build"}},
			{[]View{waitAt("r1", 1, sup, "Build")}, nil}, // let in, not started yet: still holds
			{[]View{in("r1", 1, sup, "Build")}, nil},
			{[]View{waitAt("r1", 1, sup, "Deploy")}, []string{"left r1 Build", "waiting r1 Deploy", "entered r1 Deploy"}},
			{[]View{done("r1", 1, sup)}, []string{"left r1 Deploy"}},
		}},
		{"SUPERSEDED: the newer waiting run overtakes the older, the lock passes to it", "", []step{
			{[]View{waitAt("r1", 1, sup, "Build")}, []string{"waiting r1 Build", "entered r1 Build"}},
			{[]View{in("r1", 1, sup, "Build"), waitAt("r2", 2, sup, "Build")}, []string{"waiting r2 Build"}},
			{[]View{in("r1", 1, sup, "Build"), waitAt("r3", 3, sup, "Build")}, []string{"waiting r3 Build", "superseded r2 Build by r3"}},
			{[]View{waitAt("r1", 1, sup, "Deploy"), waitAt("r2", 2, sup, "Build"), waitAt("r3", 3, sup, "Build")},
				[]string{"left r1 Build", "waiting r1 Deploy", "entered r3 Build", "entered r1 Deploy"}},
			{[]View{done("r2", 2, sup)}, []string{"left r2"}},
		}},
		{"SUPERSEDED: an older run arriving late is overtaken at once", "", []step{
			{[]View{waitAt("r1", 1, sup, "Build")}, []string{"waiting r1 Build", "entered r1 Build"}},
			{[]View{in("r1", 1, sup, "Build"), waitAt("r3", 3, sup, "Build")}, []string{"waiting r3 Build"}},
			{[]View{in("r1", 1, sup, "Build"), waitAt("r2", 2, sup, "Build")}, []string{"waiting r2 Build", "superseded r2 Build by r3"}},
		}},
		{"QUEUED: runs enter one by one in the order they were started", "", []step{
			{[]View{waitAt("r1", 1, que, "Build"), waitAt("r3", 3, que, "Build"), waitAt("r2", 2, que, "Build")},
				[]string{"waiting r1 Build", "waiting r2 Build", "waiting r3 Build", "entered r1 Build"}},
			{[]View{in("r1", 1, que, "Build")}, nil},
			{[]View{waitAt("r1", 1, que, "Deploy")}, []string{"left r1 Build", "waiting r1 Deploy", "entered r2 Build", "entered r1 Deploy"}},
			{[]View{done("r1", 1, que), waitAt("r2", 2, que, "Deploy")}, []string{"left r2 Build", "left r1 Deploy", "waiting r2 Deploy", "entered r3 Build", "entered r2 Deploy"}},
		}},
		{"QUEUED: a waiting run that ends gives up its place", "", []step{
			{[]View{waitAt("r1", 1, que, "Build")}, []string{"waiting r1 Build", "entered r1 Build"}},
			{[]View{in("r1", 1, que, "Build"), waitAt("r2", 2, que, "Build"), waitAt("r3", 3, que, "Build")}, []string{"waiting r2 Build", "waiting r3 Build"}},
			{[]View{done("r2", 2, que)}, []string{"left r2 Build"}},
			{[]View{done("r1", 1, que)}, []string{"left r1 Build", "entered r3 Build"}},
		}},
		{"PARALLEL: nothing is recorded, nothing locked", "", []step{
			{[]View{waitAt("r1", 1, par, "Build"), waitAt("r2", 2, par, "Build")}, nil},
		}},
		{"disabled transition: SUPERSEDED runs wait and collapse to the newest", "Deploy", []step{
			{[]View{waitAt("r1", 1, sup, "Deploy")}, []string{"waiting r1 Deploy"}},
			{[]View{waitAt("r2", 2, sup, "Deploy")}, []string{"waiting r2 Deploy", "superseded r1 Deploy by r2"}},
		}},
		{"disabled transition: QUEUED runs queue", "Deploy", []step{
			{[]View{waitAt("r1", 1, que, "Deploy"), waitAt("r2", 2, que, "Deploy")}, []string{"waiting r1 Deploy", "waiting r2 Deploy"}},
		}},
		{"disabled transition: PARALLEL runs wait too", "Deploy", []step{
			{[]View{waitAt("r1", 1, par, "Deploy"), waitAt("r2", 2, par, "Deploy")}, []string{"waiting r1 Deploy", "waiting r2 Deploy"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := State{}
			if tc.disable != "" {
				s = disabled(s, tc.disable)
			}
			for i, st := range tc.steps {
				var got []string
				s, got = apply(t, s, st.views...)
				if !slices.Equal(got, st.want) {
					t.Fatalf("step %d: got %q\nwant %q", i, got, st.want)
				}
			}
		})
	}
}

func TestEnableLetsTheWaitingRunIn(t *testing.T) {
	for _, mode := range []string{events.ModeSuperseded, events.ModeQueued, events.ModeParallel} {
		t.Run(mode, func(t *testing.T) {
			s := disabled(State{}, "Deploy")
			views := []View{waitAt("r1", 1, mode, "Deploy"), waitAt("r2", 2, mode, "Deploy")}
			s, _ = apply(t, s, views...)
			s = enabled(s, "Deploy")
			_, got := apply(t, s, views...)
			want := map[string][]string{
				events.ModeSuperseded: {"entered r2 Deploy"},
				events.ModeQueued:     {"entered r1 Deploy"},
				events.ModeParallel:   {"entered r1 Deploy", "entered r2 Deploy"},
			}[mode]
			if !slices.Equal(got, want) {
				t.Fatalf("after enable: got %q, want %q", got, want)
			}
		})
	}
}

func TestViewOf(t *testing.T) {
	def := events.Definition{Name: "p", Stages: []events.StageDef{{Name: "A"}, {Name: "B"}}}
	st := func(phase run.Phase, a, b run.Phase) run.State {
		return run.State{Run: "r", RequestedSeq: 7, Definition: def, Phase: phase,
			Stages: []run.Stage{{Name: "A", Phase: a}, {Name: "B", Phase: b}}}
	}
	tests := []struct {
		s    run.State
		want string
	}{
		{st(run.Requested, "", ""), "in [] waiting [] done false"},
		{st(run.Running, "", ""), "in [] waiting [A] done false"},
		{st(run.Running, run.Running, ""), "in [A] waiting [] done false"},
		{st(run.Running, run.Succeeded, ""), "in [] waiting [B] done false"},
		{st(run.Running, run.Failed, ""), "in [A] waiting [] done false"},
		{st(run.Stopping, run.Succeeded, ""), "in [] waiting [] done false"},
		{st(run.Succeeded, run.Succeeded, run.Succeeded), "in [] waiting [] done true"},
	}
	for _, tc := range tests {
		v := ViewOf(tc.s)
		if got := fmt.Sprintf("in %v waiting %v done %v", v.In, v.Waiting, v.Done); got != tc.want || v.Order != 7 || v.Mode != events.ModeSuperseded {
			t.Errorf("%s %v: got %s (order %d mode %s), want %s", tc.s.Phase, tc.s.Stages, got, v.Order, v.Mode, tc.want)
		}
	}
}

// HoldOf tells a person why a run has not entered the stage it waits for.
func TestHoldOf(t *testing.T) {
	s := State{
		In:       map[string][]string{"Deploy": {"r1"}},
		Waiting:  map[string][]Waiter{"Deploy": {{Run: "r2", Order: 2}, {Run: "r3", Order: 3}, {Run: "r4", Order: 4}}, "Prod": {{Run: "r0", Order: 1}}},
		Disabled: map[string]Transition{"Prod": {Reason: "freeze", Actor: "alice@laptop", Since: "2026-12-01T04:00:00Z"}},
	}
	for _, tt := range []struct {
		run, want string
	}{
		{"r2", "waits to enter Deploy: run r1 is in it"},
		{"r3", "waits to enter Deploy: run r1 is in it; run r2 waits ahead of it"},
		{"r4", "waits to enter Deploy: run r1 is in it; 2 runs wait ahead of it"},
		{"r0", "waits to enter Prod: the transition is disabled by alice@laptop since 2026-12-01T04:00:00Z: freeze"},
	} {
		h, ok := s.HoldOf(tt.run)
		if !ok || h.String() != tt.want {
			t.Errorf("HoldOf(%s) = %q %v, want %q", tt.run, h, ok, tt.want)
		}
	}
	if h, ok := s.HoldOf("r1"); ok {
		t.Errorf("r1 is in Deploy, yet HoldOf says %q", h)
	}
	var none *State
	if _, ok := none.HoldOf("r1"); ok {
		t.Error("a missing lane holds nothing")
	}
	if got := (Hold{Stage: "Deploy"}).String(); got != "waits to enter Deploy" {
		t.Errorf("a hold with no reason yet = %q", got)
	}
}

// MayWait: only a run between stages (or before its first) is worth a read
// of the lane for why it waits.
func TestMayWait(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   run.State
		want bool
	}{
		{"no run", run.State{}, false},
		{"between stages", run.State{Run: "r", Phase: run.Running, Stages: []run.Stage{{Name: "A", Phase: run.Succeeded}, {Name: "B"}}}, true},
		{"in a stage", run.State{Run: "r", Phase: run.Running, Stages: []run.Stage{{Name: "A", Phase: run.Running}}}, false},
		{"stopping in a stage", run.State{Run: "r", Phase: run.Stopping, Stages: []run.Stage{{Name: "A", Phase: run.Stopping}}}, false},
		{"ended", run.State{Run: "r", Phase: run.Succeeded}, false},
	} {
		if got := MayWait(tt.st); got != tt.want {
			t.Errorf("%s: MayWait = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// StagesOf lists every stage of the definition in file order, with its
// transition and the runs the lane has in and before it.
func TestStagesOf(t *testing.T) {
	def := events.Definition{Name: "p", ExecutionMode: events.ModeQueued, Stages: []events.StageDef{{Name: "Build"}, {Name: "Deploy"}}}
	s := State{
		In:       map[string][]string{"Build": {"r2"}},
		Waiting:  map[string][]Waiter{"Deploy": {{Run: "r1", Order: 1}}},
		Disabled: map[string]Transition{"Deploy": {Reason: "freeze", Actor: "bob@ci", Since: "2026-12-01T04:00:00Z"}},
	}
	got := StagesOf(def, s)
	want := Stages{Pipeline: "p", ExecutionMode: events.ModeQueued, Stages: []StageRow{
		{Stage: "Build", Transition: "enabled", In: []string{"r2"}, Waiting: []string{}},
		{Stage: "Deploy", Transition: "disabled", DisabledBy: "bob@ci", Reason: "freeze", Since: "2026-12-01T04:00:00Z", In: []string{}, Waiting: []string{"r1"}},
	}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("StagesOf:\n got  %+v\n want %+v", got, want)
	}
}
