// Package decider holds the conductor's pipeline semantics as a pure
// function: given a folded run and the time, which events come next. It does
// no I/O; the conductor appends what it returns and the same state always
// gives the same decision, so two conductors deciding at once agree and the
// optimistic append lets exactly one of them win.
package decider

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/lanes"
)

// Source is the CloudEvents source of the conductor's events.
const Source = "/gantry/pipeline"

// DefaultTimeout is an action's timeout when its definition gives none;
// DefaultGrace is how long after its timeout the conductor waits for a
// worker's own result before failing the attempt.
const (
	DefaultTimeout = time.Hour
	DefaultGrace   = time.Minute
)

// Inputs are what a decision depends on besides the run: the time, and the
// conductor's lease key (a secret that never enters the log).
type Inputs struct {
	Now time.Time
	// LeaseKey signs the lease of every dispatched attempt (events.LeaseToken).
	LeaseKey []byte
	// Leases, if set, are LeaseKey's leases remembered across decisions
	// (the conductor keeps one); the same values, computed once.
	Leases *events.Leases
	// Grace is added to an attempt's timeout before the decider fails it
	// for want of a result; zero means DefaultGrace.
	Grace time.Duration
	// Alarms holds, for each deployment group a NoActiveAlarm rule of the
	// run names (AlarmGroups), when its last alarm was raised: the zero
	// time when none ever was. A group missing here fails the rule.
	Alarms map[string]time.Time
	// Lane is the folded lane of the run's pipeline (package lanes): what
	// runs share, stage locks and transitions. Nil means the run is
	// decided alone, with no cross-run rules.
	Lane *lanes.State
}

func (in Inputs) grace() time.Duration {
	if in.Grace <= 0 {
		return DefaultGrace
	}
	return in.Grace
}

// Decide returns the events that move the run on, or none when it waits for
// a worker (or has ended).
func Decide(s run.State, in Inputs) []events.Event {
	now := in.Now
	switch s.Phase {
	case run.Requested:
		return one(events.RunID(s.Run, "started"), s.Run, now, events.RunStarted{Run: s.Run})
	case run.Stopping, run.Running:
		if reason := forgedDispatch(s, in); reason != "" {
			return one(RunEventID(s, "failed"), s.Run, now, events.RunFailed{Run: s.Run, Reason: reason})
		}
		if s.Phase == run.Stopping {
			return decideStop(s, in)
		}
	default:
		return nil
	}
	return decideStages(s, in)
}

// decideStages drives every stage of a running run in one decision: each
// stage that may start is entered, each running stage gets its next events
// (dispatches, expiries, its end), so stages of the graph that do not
// depend on each other run in parallel. Once a stage has failed nothing new
// starts: the stages still running finish what they have in progress (as
// the rest of a runOrder group does) and then the run fails.
func decideStages(s run.State, in Inputs) []events.Event {
	var failed *run.Stage
	var out []events.Event
	done := true
	for i := range s.Stages {
		if s.Stages[i].Phase != run.Failed {
			continue
		}
		// A stage whose onFailure RETRY has retries left is retried when
		// its backoff has passed; until then it holds nothing else back.
		if evs, _, ok := autoRetry(s, i, in); ok {
			out, done = append(out, evs...), false
		} else if failed == nil {
			failed = &s.Stages[i]
		}
	}
	for i := range s.Stages {
		st := s.Stages[i]
		switch st.Phase {
		case run.Succeeded, run.Failed, run.Skipped:
			continue
		case run.NotStarted:
			done = false
			if failed == nil {
				out = append(out, enter(s, i, in)...)
			}
		default:
			done = false
			if failed == nil {
				out = append(out, decideStage(s, i, in)...)
			} else {
				out = append(out, drainStage(s, i, in)...)
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	if failed != nil {
		if inProgress(s) {
			return nil
		}
		return one(RunEventID(s, "failed"), s.Run, in.Now, events.RunFailed{
			Run: s.Run, Stage: failed.Name, Reason: events.TruncateReason(fmt.Sprintf("stage %s failed: %s", failed.Name, failed.Reason))})
	}
	if done {
		return one(RunEventID(s, "succeeded"), s.Run, in.Now, events.RunSucceeded{Run: s.Run})
	}
	return nil
}

// drainStage is decideStage for a running stage of a run another stage
// failed: its attempts in progress still end (by result or deadline) and
// the stage ends with them, but nothing new is dispatched.
func drainStage(s run.State, i int, in Inputs) []events.Event {
	if evs := expire(s, i, in); len(evs) > 0 {
		return evs
	}
	st := s.Stages[i]
	var failed []string
	all := true
	for _, a := range st.Actions {
		switch a.Phase {
		case run.Dispatched, run.Running:
			return nil
		case run.Failed, run.Abandoned:
			failed = append(failed, fmt.Sprintf("action %s: %s", a.Name, a.Reason))
		}
		all = all && a.Phase == run.Succeeded
	}
	switch {
	case len(failed) > 0:
		return one(events.StageID(s.Run, st.Name, st.Attempt, "failed"), s.Run, in.Now,
			events.StageFailed{Run: s.Run, Stage: st.Name, Attempt: st.Attempt, Reason: joinReasons(failed)})
	case all:
		return one(events.StageID(s.Run, st.Name, st.Attempt, "succeeded"), s.Run, in.Now,
			events.StageSucceeded{Run: s.Run, Stage: st.Name, Attempt: st.Attempt})
	}
	return nil // left unfinished (a later group not dispatched): the run fails without it
}

// inProgress reports whether any action attempt of the run is open.
func inProgress(s run.State) bool {
	for _, st := range s.Stages {
		for _, a := range st.Actions {
			if a.Phase == run.Dispatched || a.Phase == run.Running {
				return true
			}
		}
	}
	return false
}

// leaseToken is the lease of taskID under the conductor's key.
func (in Inputs) leaseToken(taskID string) string {
	if in.Leases != nil {
		return in.Leases.Token(taskID)
	}
	return events.LeaseToken(in.LeaseKey, taskID)
}

// leaseHash is what the log records of taskID's lease.
func (in Inputs) leaseHash(taskID string) string {
	if in.Leases != nil {
		return in.Leases.Hash(taskID)
	}
	return events.LeaseHash(events.LeaseToken(in.LeaseKey, taskID))
}

// forgedDispatch names an attempt the conductor did not dispatch: its
// lease hash is not the one the conductor's key gives for its task. Only
// the conductor can dispatch (the hash needs the key), so such an
// action.dispatched was appended by someone else with the right to append
// run events, together, perhaps, with a "result" under a lease of its own
// making. The fold cannot tell (it has no key), so the run fails rather
// than trust anything of it.
func forgedDispatch(s run.State, in Inputs) string {
	for _, st := range s.Stages {
		for _, a := range st.Actions {
			if a.Attempt == 0 {
				continue
			}
			want := in.leaseHash(events.TaskID(s.Run, st.Name, a.Name, a.Attempt))
			if a.LeaseHash != want {
				return fmt.Sprintf("action %s/%s attempt %d was not dispatched by a conductor (its lease hash is not the conductor's): the run log holds a forged action.dispatched", st.Name, a.Name, a.Attempt)
			}
		}
	}
	return forgedConditionTask(s, in)
}

func decideStage(s run.State, i int, in Inputs) []events.Event {
	now := in.Now
	st := s.Stages[i]
	if evs := expire(s, i, in); len(evs) > 0 {
		return evs
	}
	if evs := unannounced(s, i); len(evs) > 0 {
		return evs
	}
	var failed []string
	active := false
	for _, a := range st.Actions {
		switch a.Phase {
		case run.Failed, run.Abandoned: // abandoned by a stop, then the run was retried
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
				out = append(out, dispatch(s, st, def, a.Attempt+1, in)...)
			}
		}
		if pending {
			return out
		}
	}
	return onSuccess(s, i, in)
}

// dispatch builds the task of an action attempt, or fails the attempt at
// once when an input artifact is missing (nothing a worker could fix).
func dispatch(s run.State, st run.Stage, def events.ActionDef, attempt int, in Inputs) []events.Event {
	if def.Type == events.KindApproval {
		return dispatchApproval(s, st, def, attempt, in)
	}
	now := in.Now
	ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: def.Name, Attempt: attempt}
	vars := Variables(s, st.Name, def.Name, attempt)
	t := events.Task{
		ID: events.TaskID(s.Run, st.Name, def.Name, attempt), Pipeline: s.Pipeline, Run: s.Run,
		Stage: st.Name, Action: def.Name, Attempt: attempt, Kind: def.Type, Pool: def.Pool,
		Outputs: slices.Clone(def.Outputs), Variables: vars, TimeoutSeconds: def.TimeoutSeconds,
		// References only, never expanded: the worker resolves them.
		Secrets: maps.Clone(def.Secrets),
	}
	// The log records only the lease's hash; the conductor adds the lease
	// itself to the task message it publishes.
	lease := in.leaseToken(t.ID)
	t.LeaseHash = events.LeaseHash(lease)
	// #{Namespace.KEY} references in configuration values are resolved
	// here, once, from the log; never in text a shell runs (a buildspec),
	// where a variable (a commit subject, a --var) would be command
	// injection: there they are refused, and commands read variables from
	// environment variables (env.NAME keys) instead. Everything else in a
	// value is passed verbatim: ${...} is not a template.
	cfg, problem := resolveConfiguration(s, def)
	t.Configuration = cfg
	evs := one(events.ActionID(ref, "dispatched"), s.Run, now, events.ActionDispatched{Task: t})
	if problem != "" {
		t.Configuration = maps.Clone(def.Configuration)
		evs[0] = mustNew(events.ActionID(ref, "dispatched"), s.Run, now, events.ActionDispatched{Task: t})
		return append(evs, mustNew(events.ResultID(ref, "failed", lease), s.Run, now, events.ActionFailed{
			ActionRef: ref, Lease: lease, Reason: events.TruncateReason(problem)}))
	}
	for _, name := range def.Inputs {
		a, ok := s.Artifacts[name]
		if !ok {
			return append(evs, mustNew(events.ResultID(ref, "failed", lease), s.Run, now, events.ActionFailed{
				ActionRef: ref, Lease: lease, Reason: fmt.Sprintf("input artifact %q was not produced by an earlier action", name)}))
		}
		t.Inputs = append(t.Inputs, a)
	}
	evs[0] = mustNew(events.ActionID(ref, "dispatched"), s.Run, now, events.ActionDispatched{Task: t})
	return evs
}

// decideStop moves a run asked to stop towards Stopped: nothing new is
// dispatched; with abandon, every attempt in progress is abandoned at once
// (the worker running it kills its processes); without, they finish (or
// reach their deadline) first.
func decideStop(s run.State, in Inputs) []events.Event {
	var out []events.Event
	for i, st := range s.Stages {
		if s.Abandon {
			for _, a := range st.Actions {
				if a.Phase != run.Dispatched && a.Phase != run.Running {
					continue
				}
				ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: a.Name, Attempt: a.Attempt}
				lease := in.leaseToken(events.TaskID(s.Run, st.Name, a.Name, a.Attempt))
				out = append(out, mustNew(events.ResultID(ref, "abandoned", lease), s.Run, in.Now, events.ActionAbandoned{
					ActionRef: ref, Lease: lease, Reason: "run stopped: " + s.Reason}))
			}
			out = append(out, abandonConditionTasks(s, st, in)...)
			continue
		}
		if st.Phase == run.Running {
			exp := expire(s, i, in)
			if len(exp) == 0 {
				exp = stopApprovals(s, st, in)
			}
			out = append(out, exp...)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, st := range s.Stages {
		for _, a := range st.Actions {
			if a.Phase == run.Dispatched || a.Phase == run.Running {
				return nil // let it finish, as CodePipeline's "stop and wait" does
			}
		}
	}
	return one(RunEventID(s, "stopped"), s.Run, in.Now, events.RunStopped{Run: s.Run, Reason: s.Reason})
}

// expire fails the open attempts of stage i whose deadline (Deadline) has
// passed: a worker that died after taking the task, a kind or pool nobody
// serves, a result that never arrives. The failure carries the attempt's
// lease, as a worker's would, since the attempt ends with it.
func expire(s run.State, i int, in Inputs) []events.Event {
	var out []events.Event
	st := s.Stages[i]
	for j, a := range st.Actions {
		if a.Phase != run.Dispatched && a.Phase != run.Running {
			continue
		}
		def := s.Definition.Stages[i].Actions[j]
		at, timeout := deadline(a, def, in)
		if in.Now.Before(at) {
			continue
		}
		ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: a.Name, Attempt: a.Attempt}
		lease := in.leaseToken(events.TaskID(s.Run, st.Name, a.Name, a.Attempt))
		if def.Type == events.KindApproval {
			out = append(out, mustNew(events.ResultID(ref, "failed", lease), s.Run, in.Now, events.ActionFailed{
				ActionRef: ref, Lease: lease, Reason: approvalExpiredReason(timeout)}))
			continue
		}
		out = append(out, mustNew(events.ResultID(ref, "failed", lease), s.Run, in.Now, events.ActionFailed{
			ActionRef: ref, Lease: lease,
			Reason: fmt.Sprintf("no result within %s of dispatch (timeout %s + grace %s): is a worker of kind %s pool %s running?",
				timeout+in.grace(), timeout, in.grace(), def.Type, def.Pool)}))
	}
	return out
}

// deadline is when an open attempt fails for want of a result: its
// dispatch time plus its timeout (DefaultTimeout when the definition has
// none) plus the grace.
func deadline(a run.Action, def events.ActionDef, in Inputs) (at time.Time, timeout time.Duration) {
	if def.Type == events.KindApproval {
		return approvalDeadline(a, def)
	}
	timeout = DefaultTimeout
	if def.TimeoutSeconds > 0 {
		timeout = time.Duration(def.TimeoutSeconds) * time.Second
	}
	return a.DispatchedAt.Add(timeout + in.grace()), timeout
}

// NextDeadline is the earliest time at which Decide would fail an open
// attempt of the run or retry a failed stage (onFailure RETRY), so that the conductor can wake up then even when no
// event arrives; ok is false when nothing is open.
func NextDeadline(s run.State, in Inputs) (next time.Time, ok bool) {
	if s.Phase.Done() {
		return time.Time{}, false
	}
	next, ok = conditionDeadline(s, in)
	for i, st := range s.Stages {
		if st.Phase == run.Failed && s.Phase == run.Running {
			if _, at, retry := autoRetry(s, i, in); retry && !at.IsZero() && (!ok || at.Before(next)) {
				next, ok = at, true
			}
		}
	}
	for i, st := range s.Stages {
		for j, a := range st.Actions {
			if a.Phase != run.Dispatched && a.Phase != run.Running {
				continue
			}
			at, _ := deadline(a, s.Definition.Stages[i].Actions[j], in)
			if !ok || at.Before(next) {
				next, ok = at, true
			}
		}
	}
	return next, ok
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
