// Package lanes holds the rules runs of one pipeline share: the stage
// locks of the execution modes SUPERSEDED and QUEUED, superseding, and
// disabled transitions. It is pure: Fold folds a pipeline's lane log
// (events.LaneSubject) into a State, ViewOf reduces a folded run to what
// the lane needs to know of it, and Decide says which lane events follow
// from the lane and the runs it concerns. The conductor appends those to
// the lane subject expecting its last sequence, so two conductors never
// give one stage to two runs; the run decider then reads the lane (through
// decider.Inputs) to start a stage it was let into, or to end a run that
// was overtaken.
//
// The rules, after CodePipeline's execution modes:
//
//   - A run needs the lane to enter a stage (SUPERSEDED, QUEUED), or to
//     pass a disabled transition (any mode). It waits before the stage
//     (lane.waiting) until the lane lets it in (lane.entered).
//   - SUPERSEDED and QUEUED: one run at a time is in a stage; it holds
//     the stage until it leaves it (the stage ends: the run moves on to
//     wait for the next one, or ends), then lane.left frees it.
//   - SUPERSEDED: of the runs waiting to enter a stage only the newest
//     (the one started last) stays; the older ones are superseded
//     (lane.superseded, then run.superseded ends them), also while the
//     transition is disabled, so on enable the newest waiting run enters.
//   - QUEUED: waiting runs enter in the order they were started.
//   - PARALLEL: no locks; only a disabled transition holds a run, and on
//     enable every run waiting there enters.
package lanes

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Waiter is a run waiting to enter a stage.
type Waiter struct {
	Run   string `json:"run"`
	Order uint64 `json:"order"`
	Mode  string `json:"mode"`
}

// Transition is a disabled transition: who disabled it and why.
type Transition struct {
	Reason string `json:"reason,omitempty"`
	Actor  string `json:"actor,omitempty"`
	Since  string `json:"since,omitempty"`
}

// State is a folded lane.
type State struct {
	Pipeline string `json:"pipeline"`
	// In maps each stage to the runs the lane let into it: at most one in
	// SUPERSEDED and QUEUED mode.
	In map[string][]string `json:"in,omitempty"`
	// Waiting maps each stage to the runs waiting to enter it, in the
	// order they were started.
	Waiting map[string][]Waiter `json:"waiting,omitempty"`
	// Superseded maps each overtaken run that has not ended yet to the
	// newer run that overtook it.
	Superseded map[string]string `json:"superseded,omitempty"`
	// Disabled maps each disabled transition (by the stage it leads into)
	// to who disabled it and why.
	Disabled map[string]Transition `json:"disabled,omitempty"`
	// LastSeq is the lane subject's last sequence folded.
	LastSeq uint64 `json:"lastSeq"`
}

// Holds reports whether the lane let run into stage.
func (s *State) Holds(stage, runID string) bool {
	return s != nil && slices.Contains(s.In[stage], runID)
}

// SupersededBy returns the run that overtook runID, or "".
func (s *State) SupersededBy(runID string) string {
	if s == nil {
		return ""
	}
	return s.Superseded[runID]
}

// IsDisabled reports whether the transition into stage is disabled.
func (s *State) IsDisabled(stage string) bool {
	if s == nil {
		return false
	}
	_, ok := s.Disabled[stage]
	return ok
}

// Hold is why a run waits before a stage, for people: the run's own log
// shows only that the stage has not started.
type Hold struct {
	Run   string `json:"run"`
	Stage string `json:"stage"`
	// Disabled is set when the transition into Stage is disabled.
	Disabled *Transition `json:"disabled,omitempty"`
	// In lists the runs in Stage (one in SUPERSEDED and QUEUED mode).
	In []string `json:"in,omitempty"`
	// Ahead lists the runs waiting before this one, in order (QUEUED).
	Ahead []string `json:"ahead,omitempty"`
}

// Stages is a pipeline's stages as its lane sees them: for `gantry stage
// list`, GET /api/v1/pipelines/{pipeline}/stages and the UI.
type Stages struct {
	Pipeline      string     `json:"pipeline"`
	ExecutionMode string     `json:"executionMode"`
	Stages        []StageRow `json:"stages"`
}

// StageRow is one stage: its transition, the runs in it and those waiting
// to enter it, in order.
type StageRow struct {
	Stage string `json:"stage"`
	// Transition is "enabled" or "disabled".
	Transition string   `json:"transition"`
	DisabledBy string   `json:"disabledBy,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Since      string   `json:"since,omitempty"`
	In         []string `json:"in"`
	Waiting    []string `json:"waiting"`
}

// StagesOf lists def's stages, in file order, with what the lane says of
// each.
func StagesOf(def events.Definition, s State) Stages {
	out := Stages{Pipeline: def.Name, ExecutionMode: Mode(def), Stages: []StageRow{}}
	for _, st := range def.Stages {
		r := StageRow{Stage: st.Name, Transition: "enabled", In: []string{}, Waiting: []string{}}
		if t, ok := s.Disabled[st.Name]; ok {
			r.Transition, r.DisabledBy, r.Reason, r.Since = "disabled", t.Actor, t.Reason, t.Since
		}
		r.In = append(r.In, s.In[st.Name]...)
		for _, w := range s.Waiting[st.Name] {
			r.Waiting = append(r.Waiting, w.Run)
		}
		out.Stages = append(out.Stages, r)
	}
	return out
}

// MayWait reports whether a run may be waiting in its lane: it has not
// ended and no stage of it is in progress. Only then is the lane log worth
// reading for its Hold.
func MayWait(st run.State) bool {
	if st.Run == "" || st.Phase.Done() {
		return false
	}
	for _, s := range st.Stages {
		if s.Phase == run.Running || s.Phase == run.Stopping {
			return false
		}
	}
	return true
}

// HoldOf says which stage runID waits to enter and why, if it waits.
func (s *State) HoldOf(runID string) (Hold, bool) {
	if s == nil {
		return Hold{}, false
	}
	for _, stage := range slices.Sorted(maps.Keys(s.Waiting)) {
		ws := s.Waiting[stage]
		i := slices.IndexFunc(ws, func(w Waiter) bool { return w.Run == runID })
		if i < 0 {
			continue
		}
		h := Hold{Run: runID, Stage: stage, In: slices.Clone(s.In[stage])}
		if t, ok := s.Disabled[stage]; ok {
			h.Disabled = &t
		}
		for _, w := range ws[:i] {
			h.Ahead = append(h.Ahead, w.Run)
		}
		return h, true
	}
	return Hold{}, false
}

// String says it in one line: "waits to enter Deploy: the transition is
// disabled by alice@laptop since …: freeze".
func (h Hold) String() string {
	var why []string
	if t := h.Disabled; t != nil {
		d := "the transition is disabled"
		if t.Actor != "" {
			d += " by " + t.Actor
		}
		if t.Since != "" {
			d += " since " + t.Since
		}
		if t.Reason != "" {
			d += ": " + t.Reason
		}
		why = append(why, d)
	}
	why = appendRuns(why, h.In, "is in it", "are in it")
	why = appendRuns(why, h.Ahead, "waits ahead of it", "wait ahead of it")
	if len(why) == 0 {
		return "waits to enter " + h.Stage
	}
	return "waits to enter " + h.Stage + ": " + strings.Join(why, "; ")
}

// appendRuns adds "run ID <one>" for one run, "N runs <many>" for more.
func appendRuns(why, ids []string, one, many string) []string {
	switch len(ids) {
	case 0:
		return why
	case 1:
		return append(why, "run "+ids[0]+" "+one)
	}
	return append(why, fmt.Sprintf("%d runs %s", len(ids), many))
}

// Runs lists every run the lane holds something for, sorted.
func (s *State) Runs() []string {
	set := map[string]bool{}
	for _, rs := range s.In {
		for _, r := range rs {
			set[r] = true
		}
	}
	for _, ws := range s.Waiting {
		for _, w := range ws {
			set[w.Run] = true
		}
	}
	for r := range s.Superseded {
		set[r] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// Fold applies lane events in order. Like the run fold it never fails and
// ignores what does not apply.
func Fold(s State, evs ...events.Event) State {
	for _, e := range evs {
		s = Evolve(s, e)
	}
	return s
}

// Evolve applies one lane event.
func Evolve(s State, e events.Event) State {
	if e.Seq > s.LastSeq {
		s.LastSeq = e.Seq
	}
	s = clone(s)
	switch p := e.Payload.(type) {
	case events.LaneWaiting:
		s.Pipeline = p.Pipeline
		if s.waiting(p.Stage, p.Run) < 0 && !s.Holds(p.Stage, p.Run) && s.Superseded[p.Run] == "" {
			ws := append(s.Waiting[p.Stage], Waiter{Run: p.Run, Order: p.Order, Mode: p.Mode})
			slices.SortStableFunc(ws, func(a, b Waiter) int { return cmpOrder(a.Order, b.Order) })
			s.Waiting[p.Stage] = ws
		}
	case events.LaneEntered:
		s.Pipeline = p.Pipeline
		s.dropWaiter(p.Stage, p.Run)
		if !s.Holds(p.Stage, p.Run) {
			s.In[p.Stage] = append(s.In[p.Stage], p.Run)
		}
	case events.LaneLeft:
		s.Pipeline = p.Pipeline
		if p.Stage == "" {
			delete(s.Superseded, p.Run)
			break
		}
		s.dropWaiter(p.Stage, p.Run)
		if rs := slices.DeleteFunc(s.In[p.Stage], func(r string) bool { return r == p.Run }); len(rs) > 0 {
			s.In[p.Stage] = rs
		} else {
			delete(s.In, p.Stage)
		}
	case events.LaneSuperseded:
		s.Pipeline = p.Pipeline
		s.dropWaiter(p.Stage, p.Run)
		s.Superseded[p.Run] = p.By
	case events.LaneTransition:
		s.Pipeline = p.Pipeline
		if p.Disabled {
			s.Disabled[p.Stage] = Transition{Reason: p.Reason, Actor: p.Actor, Since: e.Time.UTC().Format("2006-01-02T15:04:05Z")}
		} else {
			delete(s.Disabled, p.Stage)
		}
	}
	return s
}

func cmpOrder(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *State) waiting(stage, runID string) int {
	return slices.IndexFunc(s.Waiting[stage], func(w Waiter) bool { return w.Run == runID })
}

func (s *State) dropWaiter(stage, runID string) {
	ws := slices.DeleteFunc(s.Waiting[stage], func(w Waiter) bool { return w.Run == runID })
	if len(ws) == 0 {
		delete(s.Waiting, stage)
		return
	}
	s.Waiting[stage] = ws
}

// clone copies what Evolve changes, so a state a caller holds (the
// conductor's cache, shared by its shards) never changes behind its back.
func clone(s State) State {
	in := make(map[string][]string, len(s.In))
	for k, v := range s.In {
		in[k] = slices.Clone(v)
	}
	w := make(map[string][]Waiter, len(s.Waiting))
	for k, v := range s.Waiting {
		w[k] = slices.Clone(v)
	}
	s.In, s.Waiting = in, w
	s.Superseded = maps.Clone(s.Superseded)
	if s.Superseded == nil {
		s.Superseded = map[string]string{}
	}
	s.Disabled = maps.Clone(s.Disabled)
	if s.Disabled == nil {
		s.Disabled = map[string]Transition{}
	}
	return s
}

// View is what the lane needs to know of a run.
type View struct {
	Run string
	// Order is the run's run.requested sequence.
	Order uint64
	// Mode is the run's execution mode (never empty).
	Mode string
	// In lists the stages the run is in: started and not yet ended.
	In []string
	// Waiting lists the stages the run would start next, if it is running
	// and nothing but the lane holds it: one in a pipeline of stages in
	// file order.
	Waiting []string
	// Done is set once the run has ended.
	Done bool
}

// Mode returns a definition's execution mode, defaulted.
func Mode(def events.Definition) string {
	if def.ExecutionMode == "" {
		return events.ModeSuperseded
	}
	return def.ExecutionMode
}

// ViewOf reduces a folded run to its View. A run asked to stop waits at
// nothing.
func ViewOf(s run.State) View {
	v := View{Run: s.Run, Order: s.RequestedSeq, Mode: Mode(s.Definition), Done: s.Done()}
	if v.Done {
		return v
	}
	for _, st := range s.Stages {
		if st.Phase != run.NotStarted && st.Phase != run.Succeeded && st.Phase != run.Skipped {
			v.In = append(v.In, st.Name)
		}
	}
	if s.Phase == run.Running {
		v.Waiting = ready(s)
	}
	return v
}

// ready lists the stages that have not started and that the run's
// decider would start but for the lane: every stage not started whose
// dependencies (dependsOn, or the stage before it) all succeeded or were
// skipped, and none once a stage has failed (nothing new starts then).
func ready(s run.State) []string {
	var out []string
	for i, st := range s.Stages {
		switch st.Phase {
		case run.Failed:
			return nil
		case run.NotStarted:
		default:
			continue
		}
		met := true
		for _, j := range s.Definition.Dependencies(i) {
			if p := s.Stages[j].Phase; p != run.Succeeded && p != run.Skipped {
				met = false
			}
		}
		if met {
			out = append(out, st.Name)
		}
	}
	return out
}

// Source is the CloudEvents source of lane events.
const Source = "/gantry/pipeline/lanes"

// Decide returns the lane events that follow from the lane of pipeline and
// the runs it concerns (views, by run ID: every run the lane holds
// something for, plus any run that may newly wait). A run the lane names
// but views lacks is left as it is. The events come in the order they are
// to be appended, each decided on the state the ones before it leave, so
// the conductor appends them as one chain.
func Decide(s State, pipeline string, views map[string]View, now time.Time) []events.Event {
	var out []events.Event
	add := func(id string, p events.Payload) {
		e, err := events.New(id, Source, events.LaneToken, now, p)
		if err != nil {
			panic(err) // our own plain structs always encode
		}
		out = append(out, e)
		s = Evolve(s, e)
	}
	ids := slices.Sorted(maps.Keys(views))
	// Release what runs no longer need: a stage they left, a place in a
	// queue they stopped waiting in, an overtaken run that ended.
	for _, stage := range slices.Sorted(maps.Keys(s.In)) {
		for _, r := range s.In[stage] {
			if v, ok := views[r]; ok && (v.Done || (!slices.Contains(v.In, stage) && !slices.Contains(v.Waiting, stage))) {
				add(events.LaneID(pipeline, r, stage, "left"), events.LaneLeft{Pipeline: pipeline, Run: r, Stage: stage})
			}
		}
	}
	for _, stage := range slices.Sorted(maps.Keys(s.Waiting)) {
		for _, w := range s.Waiting[stage] {
			if v, ok := views[w.Run]; ok && (v.Done || !slices.Contains(v.Waiting, stage)) {
				add(events.LaneID(pipeline, w.Run, stage, "left"), events.LaneLeft{Pipeline: pipeline, Run: w.Run, Stage: stage})
			}
		}
	}
	for _, r := range slices.Sorted(maps.Keys(s.Superseded)) {
		if v, ok := views[r]; ok && v.Done {
			add(events.LaneID(pipeline, r, "", "left"), events.LaneLeft{Pipeline: pipeline, Run: r})
		}
	}
	// Record the runs that newly wait: every run of a locking mode, and a
	// PARALLEL run only before a disabled transition.
	for _, r := range ids {
		v := views[r]
		for _, st := range v.Waiting {
			if v.Done || s.Superseded[r] != "" || s.Holds(st, r) || s.waiting(st, r) >= 0 {
				continue
			}
			if v.Mode == events.ModeParallel && !s.IsDisabled(st) {
				continue
			}
			add(events.LaneID(pipeline, r, st, "waiting"), events.LaneWaiting{Pipeline: pipeline, Run: r, Stage: st, Order: v.Order, Mode: v.Mode})
		}
	}
	for _, stage := range slices.Sorted(maps.Keys(s.Waiting)) {
		ws := s.Waiting[stage]
		newest := ws[len(ws)-1]
		// SUPERSEDED: the newest waiting run overtakes every older one,
		// whether the stage is locked or its transition disabled.
		if newest.Mode == events.ModeSuperseded {
			for _, w := range ws[:len(ws)-1] {
				if w.Mode == events.ModeSuperseded {
					add(events.LaneID(pipeline, w.Run, stage, "superseded"),
						events.LaneSuperseded{Pipeline: pipeline, Run: w.Run, Stage: stage, By: newest.Run})
				}
			}
		}
		if s.IsDisabled(stage) {
			continue
		}
		ws = s.Waiting[stage]
		var next []Waiter
		switch {
		case len(ws) == 0:
		case ws[0].Mode == events.ModeParallel:
			for _, w := range ws {
				if w.Mode == events.ModeParallel {
					next = append(next, w)
				}
			}
		case len(s.In[stage]) > 0:
			// Locked: the run in the stage leaves it first.
		case newest.Mode == events.ModeSuperseded:
			next = ws[len(ws)-1:]
		default:
			next = ws[:1] // QUEUED: in the order the runs were started
		}
		for _, w := range next {
			add(events.LaneID(pipeline, w.Run, stage, "entered"), events.LaneEntered{Pipeline: pipeline, Run: w.Run, Stage: stage})
		}
	}
	return out
}
