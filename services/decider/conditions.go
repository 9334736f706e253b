package decider

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Stage conditions (CodePipeline V2): beforeEntry is checked from enter,
// before a stage starts; onSuccess from decideStage, once every action of
// the stage succeeded. Rules are evaluated in order, one per decision, and
// each evaluation is a condition.evaluated event, so a condition is
// evaluated once per stage attempt whatever happens to the conductor; the
// first rule that does not pass decides the result. A Command rule runs
// its command as a test task (named events.ConditionTaskName) and is
// evaluated when the task's result arrives or its deadline passes.

// Rule configuration defaults and bounds.
const (
	DefaultAlarmWindow       = 10 * time.Minute
	DefaultCommandTimeout    = 10 * time.Minute
	MaxCommandTimeoutSeconds = 28800
	maxAlarmWindowSeconds    = 30 * 24 * 3600
)

// A Command rule's task goes to the test workers of its pool.
const (
	conditionCommandKind     = "test"
	defaultConditionTaskPool = "default"
)

const variableOperatorsAccepted = "EQ, NE, CONTAINS or MATCHES"

// ConditionTaskKey marks a condition's task in its configuration (the
// value is beforeEntry or onSuccess): a test worker runs its buildspec
// without asking for a JUnit report.
const ConditionTaskKey = "gantry.condition"

// ErrRule is wrapped by CheckRule's errors.
var ErrRule = errors.New("invalid rule")

// CheckRule checks a rule's configuration for its type, as the pipeline
// file parser does at apply time: each error names the setting.
func CheckRule(r events.Rule) error {
	c := r.Configuration
	need := func(keys ...string) error {
		for _, k := range keys {
			if c[k] == "" {
				return fmt.Errorf("%w: %s rule needs configuration.%s", ErrRule, r.Type, k)
			}
		}
		return nil
	}
	allowed := map[string][]string{
		events.RuleVariableCheck:    {"variable", "operator", "value"},
		events.RuleDeploymentWindow: {"cron", "timeZone"},
		events.RuleNoActiveAlarm:    {"group", "windowSeconds"},
		events.RuleCommand:          {"command", "pool", "timeoutSeconds", "input"},
	}[r.Type]
	for _, k := range slices.Sorted(maps.Keys(c)) {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%w: configuration.%s is not a setting of a %s rule (settings: %s)", ErrRule, k, r.Type, strings.Join(allowed, ", "))
		}
	}
	switch r.Type {
	case events.RuleVariableCheck:
		if err := need("variable", "operator"); err != nil {
			return err
		}
		switch c["operator"] {
		case "EQ", "NE", "CONTAINS":
		case "MATCHES":
			if _, err := regexp.Compile(c["value"]); err != nil {
				return fmt.Errorf("%w: configuration.value is not a regular expression: %v", ErrRule, err)
			}
		default:
			return fmt.Errorf("%w: configuration.operator %q must be %s", ErrRule, c["operator"], variableOperatorsAccepted)
		}
	case events.RuleDeploymentWindow:
		if err := need("cron"); err != nil {
			return err
		}
		if _, _, err := window(c); err != nil {
			return err
		}
	case events.RuleNoActiveAlarm:
		if err := need("group"); err != nil {
			return err
		}
		if err := events.CheckName("configuration.group", c["group"]); err != nil {
			return fmt.Errorf("%w: %w", ErrRule, err)
		}
		if _, err := seconds(c, "windowSeconds", DefaultAlarmWindow, 1, maxAlarmWindowSeconds); err != nil {
			return err
		}
	case events.RuleCommand:
		if err := need("command"); err != nil {
			return err
		}
		if _, err := seconds(c, "timeoutSeconds", DefaultCommandTimeout, 1, MaxCommandTimeoutSeconds); err != nil {
			return err
		}
		for _, k := range []string{"pool", "input"} {
			if c[k] != "" {
				if err := events.CheckName("configuration."+k, c[k]); err != nil {
					return fmt.Errorf("%w: %w", ErrRule, err)
				}
			}
		}
	}
	return nil
}

// window parses a DeploymentWindow's cron expression (five fields, or a
// descriptor such as @daily) and time zone (default UTC).
func window(c map[string]string) (cron.Schedule, *time.Location, error) {
	loc := time.UTC
	if tz := c["timeZone"]; tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: configuration.timeZone %q: %v", ErrRule, tz, err)
		}
		loc = l
	}
	expr := c["cron"]
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, nil, fmt.Errorf("%w: configuration.cron: give the time zone in configuration.timeZone, not in the expression", ErrRule)
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: configuration.cron %q: %v", ErrRule, expr, err)
	}
	return sched, loc, nil
}

// seconds reads an optional whole number of seconds within [lo, hi].
func seconds(c map[string]string, key string, def time.Duration, lo, hi int) (time.Duration, error) {
	v := c[key]
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: configuration.%s %q must be a whole number of seconds from %d to %d", ErrRule, key, v, lo, hi)
	}
	return time.Duration(n) * time.Second, nil
}

// condition returns stage i's condition of kind when, or nil.
func condition(s run.State, i int, when string) *events.Condition {
	sd := s.Definition.Stages[i]
	if when == events.BeforeEntry {
		return sd.BeforeEntry
	}
	return sd.OnSuccess
}

// checkCondition evaluates stage i's condition (when) for the stage
// attempt: the events of the next step while it is undecided (none while
// a Command rule's task runs), or done with failed set to the reason of
// the rule that did not pass ("" when all passed or there is none).
func checkCondition(s run.State, i int, when string, attempt int, in Inputs) (evs []events.Event, done bool, failed string) {
	c := condition(s, i, when)
	if c == nil {
		return nil, true, ""
	}
	st := s.Stages[i]
	for _, r := range c.Rules {
		ch := st.Check(attempt, when, r.Name)
		if ch != nil && ch.Evaluated {
			if !ch.Passed {
				return nil, true, fmt.Sprintf("%s rule %s (%s) did not pass: %s", when, r.Name, r.Type, ch.Reason)
			}
			continue
		}
		if r.Type == events.RuleCommand {
			return commandRule(s, st, r, when, attempt, ch, in), false, ""
		}
		passed, reason := evalRule(s, r, in)
		return []events.Event{evaluated(s, st, r, when, attempt, passed, reason, in)}, false, ""
	}
	return nil, true, ""
}

func evaluated(s run.State, st run.Stage, r events.Rule, when string, attempt int, passed bool, reason string, in Inputs) events.Event {
	return mustNew(events.ConditionID(s.Run, st.Name, attempt, when, r.Name), s.Run, in.Now, events.ConditionEvaluated{
		Run: s.Run, Stage: st.Name, Attempt: attempt, When: when, Rule: r.Name, Type: r.Type,
		Passed: passed, Reason: events.TruncateReason(reason)})
}

// evalRule evaluates a rule that needs no task.
func evalRule(s run.State, r events.Rule, in Inputs) (bool, string) {
	if err := CheckRule(r); err != nil {
		return false, err.Error()
	}
	c := r.Configuration
	switch r.Type {
	case events.RuleVariableCheck:
		return variableCheck(s, c)
	case events.RuleDeploymentWindow:
		sched, loc, _ := window(c)
		now := in.Now.In(loc)
		minute := now.Truncate(time.Minute)
		if sched.Next(minute.Add(-time.Second)).Equal(minute) {
			return true, fmt.Sprintf("%s is inside the window %s (%s)", now.Format(time.RFC3339), c["cron"], loc)
		}
		return false, fmt.Sprintf("%s is outside the window %s (%s); it opens next at %s",
			now.Format(time.RFC3339), c["cron"], loc, sched.Next(now).Format(time.RFC3339))
	case events.RuleNoActiveAlarm:
		win, _ := seconds(c, "windowSeconds", DefaultAlarmWindow, 1, maxAlarmWindowSeconds)
		group := c["group"]
		last, known := in.Alarms[group]
		switch {
		case !known:
			return false, fmt.Sprintf("the alarms of deployment group %s are unknown to the conductor", group)
		case last.IsZero():
			return true, fmt.Sprintf("no alarm was ever raised on deployment group %s", group)
		case in.Now.Sub(last) < win:
			return false, fmt.Sprintf("an alarm was raised on deployment group %s at %s, %s ago, within the window of %s",
				group, last.UTC().Format(time.RFC3339), in.Now.Sub(last).Round(time.Second), win)
		}
		return true, fmt.Sprintf("no alarm on deployment group %s within %s (the last at %s)", group, win, last.UTC().Format(time.RFC3339))
	}
	return false, fmt.Sprintf("unknown rule type %q", r.Type)
}

// variableCheck compares a variable of the run (as an action would see it)
// with the rule's value.
func variableCheck(s run.State, c map[string]string) (bool, string) {
	name := strings.TrimSpace(c["variable"])
	if strings.HasPrefix(name, "#{") && strings.HasSuffix(name, "}") {
		name = name[2 : len(name)-1]
	}
	got, ok := lookupVariable(s, name)
	if !ok {
		return false, fmt.Sprintf("variable %s is not set", c["variable"])
	}
	want, op := c["value"], c["operator"]
	var passed bool
	switch op {
	case "EQ":
		passed = got == want
	case "NE":
		passed = got != want
	case "CONTAINS":
		passed = strings.Contains(got, want)
	case "MATCHES":
		re, err := regexp.Compile(want)
		if err != nil {
			return false, fmt.Sprintf("value %q is not a regular expression: %v", want, err)
		}
		passed = re.MatchString(got)
	}
	verdict := "passes"
	if !passed {
		verdict = "does not pass"
	}
	return passed, fmt.Sprintf("%s is %q: %s %s %q", c["variable"], got, verdict, op, want)
}

// lookupVariable resolves a variable name as RunVariables has it (a
// pipeline variable, a --var override, an exported variable or a GANTRY_
// built-in), or a reference Namespace.KEY as configuration values use it
// (#{Build.APP_VERSION}, #{source.branch}, #{variables.REGION}).
func lookupVariable(s run.State, name string) (string, bool) {
	if v, ok := RunVariables(s)[name]; ok {
		return v, true
	}
	if ns, key, ok := strings.Cut(name, "."); ok {
		return lookupReference(s, ns, key)
	}
	return "", false
}

// commandRule moves a Command rule on: dispatch its task, wait for it, and
// evaluate it by the task's result or its deadline.
func commandRule(s run.State, st run.Stage, r events.Rule, when string, attempt int, ch *run.Check, in Inputs) []events.Event {
	timeout, err := seconds(r.Configuration, "timeoutSeconds", DefaultCommandTimeout, 1, MaxCommandTimeoutSeconds)
	if err == nil {
		err = CheckRule(r)
	}
	if err != nil {
		return []events.Event{evaluated(s, st, r, when, attempt, false, err.Error(), in)}
	}
	if ch == nil || ch.Task == run.NotStarted {
		return dispatchCondition(s, st, r, when, attempt, timeout, in)
	}
	switch ch.Task {
	case run.Succeeded:
		return []events.Event{evaluated(s, st, r, when, attempt, true, fmt.Sprintf("command %q succeeded", r.Configuration["command"]), in)}
	case run.Failed:
		return []events.Event{evaluated(s, st, r, when, attempt, false, fmt.Sprintf("command %q failed: %s", r.Configuration["command"], ch.TaskReason), in)}
	}
	if at := ch.DispatchedAt.Add(timeout + in.grace()); !in.Now.Before(at) {
		return []events.Event{evaluated(s, st, r, when, attempt, false,
			fmt.Sprintf("command %q gave no result within %s (timeout %s + grace %s): is a test worker of pool %s running?",
				r.Configuration["command"], timeout+in.grace(), timeout, in.grace(), commandPool(r)), in)}
	}
	return nil
}

func commandPool(r events.Rule) string {
	if p := r.Configuration["pool"]; p != "" {
		return p
	}
	return defaultConditionTaskPool
}

// dispatchCondition dispatches a Command rule's task to a test worker: a
// buildspec whose one build command is the rule's command, exactly as the
// pipeline author wrote it. It is encoded as JSON (which is YAML), never
// spliced as text, and nothing of the run is substituted into it; the
// command sees the run's variables in its environment.
func dispatchCondition(s run.State, st run.Stage, r events.Rule, when string, attempt int, timeout time.Duration, in Inputs) []events.Event {
	name := events.ConditionTaskName(when, r.Name)
	ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: name, Attempt: attempt}
	spec, err := json.MarshalIndent(map[string]any{
		"version": "0.2",
		"phases":  map[string]any{"build": map[string]any{"commands": []string{r.Configuration["command"]}}},
	}, "", "  ")
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	t := events.Task{
		ID: events.TaskID(s.Run, st.Name, name, attempt), Pipeline: s.Pipeline, Run: s.Run,
		Stage: st.Name, Action: name, Attempt: attempt, Kind: conditionCommandKind, Pool: commandPool(r),
		Configuration:  map[string]string{"buildspec": string(spec), ConditionTaskKey: when},
		Variables:      Variables(s, st.Name, name, attempt),
		TimeoutSeconds: int(timeout / time.Second),
	}
	t.LeaseHash = in.leaseHash(t.ID)
	if input := r.Configuration["input"]; input != "" {
		a, ok := s.Artifacts[input]
		if !ok {
			return []events.Event{evaluated(s, st, r, when, attempt, false,
				fmt.Sprintf("input artifact %q was not produced by an earlier action", input), in)}
		}
		t.Inputs = []events.ArtifactRef{a}
	}
	return one(events.ActionID(ref, "dispatched"), s.Run, in.Now, events.ActionDispatched{Task: t})
}

// beforeEntry checks stage i's beforeEntry condition; enter calls it.
// It returns the events to append, or none while the stage must wait, and
// whether the stage may start.
func beforeEntry(s run.State, i int, in Inputs) (evs []events.Event, start bool) {
	st := s.Stages[i]
	attempt := st.Attempt + 1
	evs, done, failed := checkCondition(s, i, events.BeforeEntry, attempt, in)
	if !done {
		return evs, false
	}
	if failed == "" {
		return nil, true
	}
	failed = events.TruncateReason(failed)
	if condition(s, i, events.BeforeEntry).Result == events.ResultSkip {
		return one(events.StageID(s.Run, st.Name, attempt, "skipped"), s.Run, in.Now,
			events.StageSkipped{Run: s.Run, Stage: st.Name, Attempt: attempt, Reason: failed}), false
	}
	// FAIL: the stage is entered and fails at once, so the run's failure
	// names it as for any other failed stage.
	return []events.Event{
		mustNew(events.StageID(s.Run, st.Name, attempt, "started"), s.Run, in.Now,
			events.StageStarted{Run: s.Run, Stage: st.Name, Attempt: attempt}),
		mustNew(events.StageID(s.Run, st.Name, attempt, "failed"), s.Run, in.Now,
			events.StageFailed{Run: s.Run, Stage: st.Name, Attempt: attempt, Reason: failed}),
	}, false
}

// onSuccess checks stage i's onSuccess condition once its actions all
// succeeded: the events to append (stage.succeeded or stage.failed when
// decided), or none while a Command rule runs.
func onSuccess(s run.State, i int, in Inputs) []events.Event {
	st := s.Stages[i]
	evs, done, failed := checkCondition(s, i, events.OnSuccess, st.Attempt, in)
	if !done {
		return evs
	}
	if failed == "" {
		return one(events.StageID(s.Run, st.Name, st.Attempt, "succeeded"), s.Run, in.Now,
			events.StageSucceeded{Run: s.Run, Stage: st.Name, Attempt: st.Attempt})
	}
	sf := events.StageFailed{Run: s.Run, Stage: st.Name, Attempt: st.Attempt}
	if condition(s, i, events.OnSuccess).Result == events.ResultRollback {
		// The stage rollback itself is wip-lanes' to start: Rollback on
		// stage.failed is the hook it acts on.
		sf.Rollback = true
		failed += "; a rollback of the stage is requested"
	}
	sf.Reason = events.TruncateReason(failed)
	return one(events.StageID(s.Run, st.Name, st.Attempt, "failed"), s.Run, in.Now, sf)
}

// conditionDeadline is the earliest deadline of a Command rule's task in
// flight in the run, for NextDeadline.
func conditionDeadline(s run.State, in Inputs) (next time.Time, ok bool) {
	for i, st := range s.Stages {
		for _, ch := range st.Checks {
			if ch.Evaluated || (ch.Task != run.Dispatched && ch.Task != run.Running) {
				continue
			}
			c := condition(s, i, ch.When)
			if c == nil {
				continue
			}
			for _, r := range c.Rules {
				if r.Name != ch.Rule {
					continue
				}
				timeout, err := seconds(r.Configuration, "timeoutSeconds", DefaultCommandTimeout, 1, MaxCommandTimeoutSeconds)
				if err != nil {
					continue
				}
				if at := ch.DispatchedAt.Add(timeout + in.grace()); !ok || at.Before(next) {
					next, ok = at, true
				}
			}
		}
	}
	return next, ok
}

// AlarmGroups lists the deployment groups the run's NoActiveAlarm rules
// name: the conductor reads their last alarm into Inputs.Alarms.
func AlarmGroups(def events.Definition) []string {
	var out []string
	for _, sd := range def.Stages {
		for _, c := range []*events.Condition{sd.BeforeEntry, sd.OnSuccess} {
			if c == nil {
				continue
			}
			for _, r := range c.Rules {
				if g := r.Configuration["group"]; r.Type == events.RuleNoActiveAlarm && g != "" && !slices.Contains(out, g) {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// forgedConditionTask is forgedDispatch for the tasks of Command rules: a
// dispatched condition task whose lease hash is not the conductor's was
// appended by someone else, who could then "pass" the rule with a result
// under a lease of their own.
func forgedConditionTask(s run.State, in Inputs) string {
	for _, st := range s.Stages {
		for _, ch := range st.Checks {
			if ch.Task == run.NotStarted {
				continue
			}
			name := events.ConditionTaskName(ch.When, ch.Rule)
			want := in.leaseHash(events.TaskID(s.Run, st.Name, name, ch.Attempt))
			if ch.LeaseHash != want {
				return fmt.Sprintf("the task of %s rule %s of stage %s (attempt %d) was not dispatched by a conductor (its lease hash is not the conductor's): the run log holds a forged action.dispatched",
					ch.When, ch.Rule, st.Name, ch.Attempt)
			}
		}
	}
	return ""
}

// abandonConditionTasks abandons the Command rule tasks of stage st still
// in flight when the run is stopped with abandon, so their workers kill
// the commands; without abandon the run does not wait for them, as
// nothing depends on their result any more.
func abandonConditionTasks(s run.State, st run.Stage, in Inputs) []events.Event {
	var out []events.Event
	for _, ch := range st.Checks {
		if ch.Evaluated || (ch.Task != run.Dispatched && ch.Task != run.Running) {
			continue
		}
		name := events.ConditionTaskName(ch.When, ch.Rule)
		ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: name, Attempt: ch.Attempt}
		lease := in.leaseToken(events.TaskID(s.Run, st.Name, name, ch.Attempt))
		out = append(out, mustNew(events.ResultID(ref, "abandoned", lease), s.Run, in.Now, events.ActionAbandoned{
			ActionRef: ref, Lease: lease, Reason: "run stopped: " + events.TruncateReason(s.Reason)}))
	}
	return out
}
