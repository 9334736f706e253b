// Package decider holds the conductor's pipeline semantics as a pure
// function: given a folded run and the time, which events come next. It does
// no I/O; the conductor appends what it returns and the same state always
// gives the same decision, so two conductors deciding at once agree and the
// optimistic append lets exactly one of them win.
package decider

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Source is the CloudEvents source of the conductor's events.
const Source = "/gantry/pipeline"

// Decide returns the events that move the run on, or none when it waits for
// a worker (or has ended).
func Decide(s run.State, now time.Time) []events.Event {
	switch s.Phase {
	case run.Requested:
		return one(events.RunID(s.Run, "started"), s.Run, now, events.RunStarted{Run: s.Run})
	case run.Running:
	default:
		return nil
	}
	for i := range s.Stages {
		st := &s.Stages[i]
		switch st.Phase {
		case run.Succeeded:
			continue
		case run.Failed:
			return one(events.RunID(s.Run, "failed"), s.Run, now, events.RunFailed{
				Run: s.Run, Stage: st.Name, Reason: events.TruncateReason(fmt.Sprintf("stage %s failed: %s", st.Name, st.Reason))})
		case run.NotStarted:
			return one(events.StageID(s.Run, st.Name, st.Attempt+1, "started"), s.Run, now,
				events.StageStarted{Run: s.Run, Stage: st.Name, Attempt: st.Attempt + 1})
		default:
			return decideStage(s, i, now)
		}
	}
	return one(events.RunID(s.Run, "succeeded"), s.Run, now, events.RunSucceeded{Run: s.Run})
}

func decideStage(s run.State, i int, now time.Time) []events.Event {
	st := s.Stages[i]
	var failed []string
	active := false
	for _, a := range st.Actions {
		switch a.Phase {
		case run.Failed:
			failed = append(failed, fmt.Sprintf("action %s: %s", a.Name, a.Reason))
		case run.Dispatched, run.Running:
			active = true
		}
	}
	if len(failed) > 0 {
		if active {
			return nil // let the rest of the group finish, as CodePipeline does
		}
		return one(events.StageID(s.Run, st.Name, st.Attempt, "failed"), s.Run, now,
			events.StageFailed{Run: s.Run, Stage: st.Name, Attempt: st.Attempt, Reason: joinReasons(failed)})
	}
	for _, order := range runOrders(st) {
		var out []events.Event
		pending := false
		for j, a := range st.Actions {
			if a.RunOrder != order || a.Phase == run.Succeeded {
				continue
			}
			pending = true
			if a.Phase == run.NotStarted {
				def := s.Definition.Stages[i].Actions[j]
				out = append(out, dispatch(s, st, def, a.Attempt+1, now)...)
			}
		}
		if pending {
			return out
		}
	}
	return one(events.StageID(s.Run, st.Name, st.Attempt, "succeeded"), s.Run, now,
		events.StageSucceeded{Run: s.Run, Stage: st.Name, Attempt: st.Attempt})
}

// dispatch builds the task of an action attempt, or fails the attempt at
// once when an input artifact is missing (nothing a worker could fix).
func dispatch(s run.State, st run.Stage, def events.ActionDef, attempt int, now time.Time) []events.Event {
	ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: def.Name, Attempt: attempt}
	vars := Variables(s, st.Name, def.Name, attempt)
	t := events.Task{
		ID: events.TaskID(s.Run, st.Name, def.Name, attempt), Pipeline: s.Pipeline, Run: s.Run,
		Stage: st.Name, Action: def.Name, Attempt: attempt, Kind: def.Type, Pool: def.Pool,
		Outputs: slices.Clone(def.Outputs), Variables: vars, TimeoutSeconds: def.TimeoutSeconds,
	}
	if len(def.Configuration) > 0 {
		t.Configuration = make(map[string]string, len(def.Configuration))
		for k, v := range def.Configuration {
			t.Configuration[k] = expand(v, vars)
		}
	}
	evs := one(events.ActionID(ref, "dispatched"), s.Run, now, events.ActionDispatched{Task: t})
	for _, name := range def.Inputs {
		a, ok := s.Artifacts[name]
		if !ok {
			return append(evs, mustNew(events.ActionID(ref, "failed"), s.Run, now, events.ActionFailed{
				ActionRef: ref, Reason: fmt.Sprintf("input artifact %q was not produced by an earlier action", name)}))
		}
		t.Inputs = append(t.Inputs, a)
	}
	evs[0] = mustNew(events.ActionID(ref, "dispatched"), s.Run, now, events.ActionDispatched{Task: t})
	return evs
}

// Variables are what an action sees: the run's variables (RunVariables)
// and the action's own GANTRY_STAGE, GANTRY_ACTION and GANTRY_ATTEMPT.
func Variables(s run.State, stage, action string, attempt int) map[string]string {
	vars := RunVariables(s)
	vars["GANTRY_STAGE"] = stage
	vars["GANTRY_ACTION"] = action
	vars["GANTRY_ATTEMPT"] = strconv.Itoa(attempt)
	return vars
}

// RunVariables are a run's variables as they stand: the pipeline's
// defaults, the run's overrides, every variable exported by an action that
// succeeded (in stage order), and GANTRY_PIPELINE, GANTRY_RUN_ID,
// GANTRY_TRIGGER, GANTRY_COMMIT and GANTRY_REF. A revision the run built
// is deployed with them.
func RunVariables(s run.State) map[string]string {
	vars := maps.Clone(s.Definition.Variables)
	if vars == nil {
		vars = map[string]string{}
	}
	maps.Copy(vars, s.Variables)
	for _, st := range s.Stages {
		for _, a := range st.Actions {
			if a.Phase == run.Succeeded {
				maps.Copy(vars, a.Variables)
			}
		}
	}
	vars["GANTRY_PIPELINE"] = s.Pipeline
	vars["GANTRY_RUN_ID"] = s.Run
	vars["GANTRY_TRIGGER"] = s.Trigger.Kind
	if s.Trigger.Commit != "" {
		vars["GANTRY_COMMIT"] = s.Trigger.Commit
	}
	if s.Trigger.Ref != "" {
		vars["GANTRY_REF"] = s.Trigger.Ref
	}
	return vars
}

// expand replaces ${NAME} and $NAME in configuration values; unknown names
// are left as written so a typo shows in the action's own error.
func expand(v string, vars map[string]string) string {
	return os.Expand(v, func(k string) string {
		if x, ok := vars[k]; ok {
			return x
		}
		return "${" + k + "}"
	})
}

func runOrders(st run.Stage) []int {
	var orders []int
	for _, a := range st.Actions {
		if !slices.Contains(orders, a.RunOrder) {
			orders = append(orders, a.RunOrder)
		}
	}
	slices.Sort(orders)
	return orders
}

// joinReasons joins the failed actions' reasons, cut to the schema's bound:
// each may be up to the bound already.
func joinReasons(rs []string) string {
	return events.TruncateReason(strings.Join(rs, "; "))
}

func one(id, runID string, now time.Time, p events.Payload) []events.Event {
	return []events.Event{mustNew(id, runID, now, p)}
}

// mustNew builds an event from a payload of ours; marshalling our own plain
// structs cannot fail, so a failure is a programming error.
func mustNew(id, runID string, now time.Time, p events.Payload) events.Event {
	e, err := events.New(id, Source, runID, now, p)
	if err != nil {
		panic(err)
	}
	return e
}
