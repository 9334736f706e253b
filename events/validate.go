package events

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The value constraints of the run event schemas (schemas/events/*.json and
// schemas/defs.json), checked on decoded payloads. They run after the shape
// pass (fastcodec.go), which guarantees that required members were present
// with their JSON types and that an optional member with a zero Go value was
// absent; so an optional member is checked only when it is not zero.

const (
	namePat         = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
	sha256Pattern   = "^[0-9a-f]{64}$"
	objectKeyPat    = "^[A-Za-z0-9][A-Za-z0-9_./-]*$"
	varNamePattern  = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
	taskIDPattern   = "^run/[A-Za-z0-9][A-Za-z0-9_-]{0,63}/stage/[A-Za-z0-9][A-Za-z0-9_-]{0,63}/action/[A-Za-z0-9][A-Za-z0-9_-]{0,63}/attempt/[1-9][0-9]*$"
	maxVarNameBytes = 128
)

// The size bounds of the schemas (issue 7: an unbounded field let an 8 MB
// trigger through, which then failed to publish forever). MaxReason is
// exported so that producers cut their reasons to fit (TruncateReason).
const (
	// MaxReason bounds a reason (defs reason): characters.
	MaxReason = 4096
	// MaxVariables bounds a variables map in the log (defs variables); where
	// variables enter (trigger, pipeline file, buildspec) each source is
	// bounded to 100, and a task's merge them.
	MaxVariables = 1000
	// MaxVariableValue bounds a variable's value: characters.
	MaxVariableValue = 4096
	// MaxConfiguration bounds the entries of an action's configuration.
	MaxConfiguration = 100
	// MaxConfigurationValue bounds one configuration value: characters, so
	// that an inline buildspec fits.
	MaxConfigurationValue = 65536
	// MaxItems bounds the actions of a stage, inputs, outputs and test
	// failures.
	MaxItems = 100
	// MaxStages bounds the stages of a pipeline.
	MaxStages = 500
	// maxTaskID bounds a task ID: characters.
	maxTaskID = 256
	// MaxTestName bounds a test case's suite and name: characters.
	MaxTestName = 1024
)

// first returns the first violation, as an error interface that is nil when
// there is none.
func first(errs ...*fieldError) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func firstOf(errs ...*fieldError) *fieldError {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }

// isName matches ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$ (defs name and runId).
func isName(s string) bool {
	if len(s) < 1 || len(s) > 64 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// isVarName matches ^[A-Za-z_][A-Za-z0-9_.-]{0,127}$ (variables and
// configuration names).
func isVarName(s string) bool {
	if len(s) < 1 || len(s) > maxVarNameBytes {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isObjectKey matches ^[A-Za-z0-9][A-Za-z0-9_./-]*$; the pattern admits
// ASCII only, so bytes are characters for maxLength.
func isObjectKey(s string) bool {
	if len(s) < 1 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '/' && c != '-' {
			return false
		}
	}
	return true
}

// isTaskID matches taskIDPattern: names hold no '/', so the ID splits into
// exactly eight segments.
func isTaskID(s string) bool {
	parts := strings.Split(s, "/")
	if len(parts) != 8 || parts[0] != "run" || parts[2] != "stage" || parts[4] != "action" || parts[6] != "attempt" {
		return false
	}
	if !isName(parts[1]) || !isName(parts[3]) || !isName(parts[5]) {
		return false
	}
	n := parts[7]
	if len(n) < 1 || n[0] < '1' || n[0] > '9' {
		return false
	}
	for i := 1; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

func patternError(field, got, pattern string) *fieldError {
	return errorf("%s does not match pattern %s", quote(got), quote(pattern)).in(field)
}

func name(field, s string) *fieldError {
	if !isName(s) {
		return patternError(field, s, namePat)
	}
	return nil
}

func optName(field, s string) *fieldError {
	if s == "" {
		return nil
	}
	return name(field, s)
}

func sha(field, s string) *fieldError {
	if !isSHA256(s) {
		return patternError(field, s, sha256Pattern)
	}
	return nil
}

func objectKey(field, s string) *fieldError {
	if n := utf8.RuneCountInString(s); n < 1 || n > 1024 {
		if n < 1 {
			return errorf("minLength: got %d, want 1", n).in(field)
		}
		return errorf("maxLength: got %d, want 1024", n).in(field)
	}
	if !isObjectKey(s) {
		return patternError(field, s, objectKeyPat)
	}
	return nil
}

// text checks a string's length in characters, as JSON Schema counts them;
// max 0 means no limit.
func text(field, s string, minLen, maxLen int) *fieldError {
	n := utf8.RuneCountInString(s)
	if n < minLen {
		return errorf("minLength: got %d, want %d", n, minLen).in(field)
	}
	if maxLen > 0 && n > maxLen {
		return errorf("maxLength: got %d, want %d", n, maxLen).in(field)
	}
	return nil
}

func optText(field, s string, maxLen int) *fieldError {
	if s == "" {
		return nil
	}
	return text(field, s, 1, maxLen)
}

func atLeast[N int | int64](field string, v, minimum N) *fieldError {
	if v < minimum {
		return errorf("minimum: got %d, want %d", v, minimum).in(field)
	}
	return nil
}

func optAtLeast(field string, v, minimum int) *fieldError {
	if v == 0 {
		return nil
	}
	return atLeast(field, v, minimum)
}

func attempt(field string, v int) *fieldError { return atLeast(field, v, 1) }

// vars checks a variables or configuration map: at most maxN entries, each
// name a variable name, each value at most maxValue characters.
func vars(field string, m map[string]string, maxN, maxValue int) *fieldError {
	// An empty map was refused by the shape pass (minProperties 1), so here
	// it was absent.
	if len(m) > maxN {
		return errorf("maxProperties: got %d, want %d", len(m), maxN).in(field)
	}
	for k, v := range m {
		if !isVarName(k) {
			return errorf("additional properties %s not allowed", quote(k)).in(field)
		}
		if n := utf8.RuneCountInString(v); n > maxValue {
			return errorf("maxLength: got %d, want %d", n, maxValue).in(k).in(field)
		}
	}
	return nil
}

func variables(field string, m map[string]string) *fieldError {
	return vars(field, m, MaxVariables, MaxVariableValue)
}

func configuration(field string, m map[string]string) *fieldError {
	return vars(field, m, MaxConfiguration, MaxConfigurationValue)
}

func maxItems(field string, n int) *fieldError { return atMostItems(field, n, MaxItems) }

func atMostItems(field string, n, limit int) *fieldError {
	if n > limit {
		return errorf("maxItems: got %d, want %d", n, limit).in(field)
	}
	return nil
}

func names(field string, list []string, unique bool) *fieldError {
	if e := maxItems(field, len(list)); e != nil {
		return e
	}
	for i, s := range list {
		if e := name(strconv.Itoa(i), s); e != nil {
			return e.in(field)
		}
		if unique {
			for j := 0; j < i; j++ {
				if list[j] == s {
					return errorf("uniqueItems: items at %d and %d are equal", j, i).in(field)
				}
			}
		}
	}
	return nil
}

func minItems(field string, n int) *fieldError {
	if n < 1 {
		return errorf("minItems: got %d, want 1", n).in(field)
	}
	return nil
}

func (a ArtifactRef) check() *fieldError {
	return firstOf(name("name", a.Name), objectKey("key", a.Key), sha("sha256", a.SHA256), atLeast("size", a.Size, 0))
}

func artifactRefs(field string, list []ArtifactRef) *fieldError {
	if e := maxItems(field, len(list)); e != nil {
		return e
	}
	for i, a := range list {
		if e := a.check(); e != nil {
			return e.in(strconv.Itoa(i)).in(field)
		}
	}
	return nil
}

func (r ActionRef) check() *fieldError {
	return firstOf(name("run", r.Run), name("stage", r.Stage), name("action", r.Action), attempt("attempt", r.Attempt))
}

func (t Trigger) check() *fieldError {
	var kind *fieldError
	switch t.Kind {
	case "manual", "api", "webhook", "poll", "event":
	default:
		kind = errorf("value must be one of 'manual', 'api', 'webhook', 'poll', 'event'").in("kind")
	}
	return firstOf(text("id", t.ID, 1, 512), kind,
		optText("commit", t.Commit, 128), optText("ref", t.Ref, 256), optText("actor", t.Actor, 256))
}

func (a ActionDef) check() *fieldError {
	var order *fieldError
	if a.RunOrder < 1 || a.RunOrder > 999 {
		if a.RunOrder < 1 {
			order = errorf("minimum: got %d, want 1", a.RunOrder).in("runOrder")
		} else {
			order = errorf("maximum: got %d, want 999", a.RunOrder).in("runOrder")
		}
	}
	return firstOf(name("name", a.Name), name("type", a.Type), name("pool", a.Pool), order, optName("namespace", a.Namespace),
		names("inputs", a.Inputs, true), names("outputs", a.Outputs, true),
		configuration("configuration", a.Configuration), optAtLeast("timeoutSeconds", a.TimeoutSeconds, 1),
		secrets("secrets", a.Secrets))
}

func (d Definition) check() *fieldError {
	var mode *fieldError
	switch d.ExecutionMode {
	case "", ModeSuperseded, ModeQueued, ModeParallel:
	default:
		mode = errorf("value must be one of 'SUPERSEDED', 'QUEUED', 'PARALLEL'").in("executionMode")
	}
	if e := firstOf(name("name", d.Name), variables("variables", d.Variables), mode, minItems("stages", len(d.Stages)),
		atMostItems("stages", len(d.Stages), MaxStages), triggerDefs("triggers", d.Triggers)); e != nil {
		return e
	}
	for i, s := range d.Stages {
		if e := firstOf(name("name", s.Name), names("dependsOn", s.DependsOn, true),
			minItems("actions", len(s.Actions)), maxItems("actions", len(s.Actions)), s.OnFailure.check()); e != nil {
			return e.in(strconv.Itoa(i)).in("stages")
		}
		if e := firstOf(s.BeforeEntry.check(ResultFail, ResultSkip).in(BeforeEntry),
			s.OnSuccess.check(ResultFail, ResultRollback).in(OnSuccess)); e != nil {
			return e.in(strconv.Itoa(i)).in("stages")
		}
		for j, a := range s.Actions {
			if e := a.check(); e != nil {
				return e.in(strconv.Itoa(j)).in("actions").in(strconv.Itoa(i)).in("stages")
			}
		}
	}
	return nil
}

// check checks a stage condition (nil when absent) whose result must be
// one of results.
func (c *Condition) check(results ...string) *fieldError {
	if c == nil {
		return nil
	}
	var result *fieldError
	if !slices.Contains(results, c.Result) {
		result = errorf("value must be one of %s", quoteAll(results)).in("result")
	}
	if e := firstOf(result, minItems("rules", len(c.Rules)), atMostItems("rules", len(c.Rules), MaxRules)); e != nil {
		return e
	}
	for i, r := range c.Rules {
		var typ *fieldError
		switch r.Type {
		case RuleVariableCheck, RuleDeploymentWindow, RuleNoActiveAlarm, RuleCommand:
		default:
			typ = errorf("value must be one of %s", quoteAll([]string{RuleVariableCheck, RuleDeploymentWindow, RuleNoActiveAlarm, RuleCommand})).in("type")
		}
		rn := name("name", r.Name)
		if rn == nil && len(r.Name) > MaxRuleName {
			rn = errorf("maxLength: got %d, want %d", len(r.Name), MaxRuleName).in("name")
		}
		if e := firstOf(rn, typ, configuration("configuration", r.Configuration)); e != nil {
			return e.in(strconv.Itoa(i)).in("rules")
		}
	}
	return nil
}

func (o *OnFailure) check() *fieldError {
	if o == nil {
		return nil
	}
	switch o.Result {
	case OnFailureFail, OnFailureRetry, OnFailureRollback:
	default:
		return errorf("value must be one of 'FAIL', 'RETRY', 'ROLLBACK'").in("result").in("onFailure")
	}
	if o.Retries != 0 && (o.Retries < 1 || o.Retries > MaxRetries) {
		if o.Retries < 1 {
			return errorf("minimum: got %d, want 1", o.Retries).in("retries").in("onFailure")
		}
		return errorf("maximum: got %d, want %d", o.Retries, MaxRetries).in("retries").in("onFailure")
	}
	return nil
}

func (t Task) check() *fieldError {
	var id *fieldError
	if n := utf8.RuneCountInString(t.ID); n > maxTaskID {
		id = errorf("maxLength: got %d, want %d", n, maxTaskID).in("id")
	} else if !isTaskID(t.ID) {
		id = patternError("id", t.ID, taskIDPattern)
	}
	return firstOf(id, name("pipeline", t.Pipeline), name("run", t.Run), name("stage", t.Stage),
		name("action", t.Action), attempt("attempt", t.Attempt), name("kind", t.Kind), name("pool", t.Pool),
		configuration("configuration", t.Configuration), artifactRefs("inputs", t.Inputs),
		names("outputs", t.Outputs, true), variables("variables", t.Variables),
		optAtLeast("timeoutSeconds", t.TimeoutSeconds, 1), optSHA("leaseHash", t.LeaseHash), optSHA("lease", t.Lease), secrets("secrets", t.Secrets))
}

// optSHA checks an optional 64-hex-digit value (a lease or its hash).
func optSHA(field, s string) *fieldError {
	if s == "" {
		return nil
	}
	return sha(field, s)
}

func (c TestCase) check() *fieldError {
	var d *fieldError
	if c.Duration < 0 {
		d = errorf("exclusiveMinimum: got %v, want 0", c.Duration).in("durationSeconds")
	}
	// A zero duration is absent: the shape pass refused 0 and anything
	// negative by its text (a negative that decodes to -0 included).
	return firstOf(optText("suite", c.Suite, MaxTestName), text("name", c.Name, 1, MaxTestName),
		optText("message", c.Message, MaxReason), d)
}

func (p RunRequested) validate() error {
	return first(name("pipeline", p.Pipeline), name("run", p.Run), p.Definition.check().in("definition"),
		p.Trigger.check().in("trigger"), variables("variables", p.Variables), p.Rollback.check().in("rollback"))
	// revision is a uint64: encoding/json refused anything below 0.
}

func (p RunStarted) validate() error   { return first(name("run", p.Run)) }
func (p RunSucceeded) validate() error { return first(name("run", p.Run)) }
func (p RunFailed) validate() error {
	return first(name("run", p.Run), optName("stage", p.Stage), text("reason", p.Reason, 1, MaxReason))
}
func (p StageStarted) validate() error {
	return first(name("run", p.Run), name("stage", p.Stage), attempt("attempt", p.Attempt))
}
func (p StageSucceeded) validate() error {
	return first(name("run", p.Run), name("stage", p.Stage), attempt("attempt", p.Attempt))
}
func (p StageFailed) validate() error {
	return first(name("run", p.Run), name("stage", p.Stage), attempt("attempt", p.Attempt), text("reason", p.Reason, 1, MaxReason))
}
func (p ActionDispatched) validate() error {
	var lease *fieldError
	if p.Task.Lease != "" {
		// The lease is the task message's secret; the log holds its hash.
		lease = errorf("the lease of a task is never written to the log").in("lease")
	}
	return first(p.Task.check().in("task"), lease.in("task"))
}
func (p ActionStarted) validate() error {
	return first(p.ActionRef.check(), text("worker", p.Worker, 1, 256))
}
func (p ActionHeartbeat) validate() error {
	return first(p.ActionRef.check(), text("worker", p.Worker, 1, 256), atLeast("beat", p.Beat, 1))
}
func (p ActionSucceeded) validate() error {
	return first(p.ActionRef.check(), optText("worker", p.Worker, 256),
		artifactRefs("outputs", p.Outputs), variables("variables", p.Variables), optSHA("lease", p.Lease))
}
func (p ActionFailed) validate() error {
	return first(p.ActionRef.check(), optText("worker", p.Worker, 256), text("reason", p.Reason, 1, MaxReason), optSHA("lease", p.Lease))
}
func (p ArtifactStored) validate() error {
	return first(p.ActionRef.check(), p.Artifact.check().in("artifact"))
}
func (p LogArchived) validate() error {
	return first(p.ActionRef.check(), objectKey("key", p.Key), sha("sha256", p.SHA256),
		atLeast("size", p.Size, 0), atLeast("lines", p.Lines, 0))
}
func (p TestReported) validate() error {
	var d *fieldError
	if p.Duration < 0 {
		d = errorf("minimum: got %v, want 0", p.Duration).in("durationSeconds")
	}
	if e := first(p.ActionRef.check(), atLeast("total", p.Total, 0), atLeast("passed", p.Passed, 0),
		atLeast("failed", p.Failed, 0), atLeast("skipped", p.Skipped, 0), d, maxItems("failures", len(p.Failures))); e != nil {
		return e
	}
	for i, c := range p.Failures {
		if e := c.check(); e != nil {
			return e.in(strconv.Itoa(i)).in("failures")
		}
	}
	return nil
}

// Every payload with a fast path has a validate method.
var (
	_ validator = RunRequested{}
	_ validator = RunStarted{}
	_ validator = RunSucceeded{}
	_ validator = RunFailed{}
	_ validator = StageStarted{}
	_ validator = StageSucceeded{}
	_ validator = StageFailed{}
	_ validator = ActionDispatched{}
	_ validator = ActionStarted{}
	_ validator = ActionHeartbeat{}
	_ validator = ActionSucceeded{}
	_ validator = ActionFailed{}
	_ validator = ArtifactStored{}
	_ validator = LogArchived{}
	_ validator = TestReported{}
)

func (r *Rollback) check() *fieldError {
	if r == nil {
		return nil
	}
	return firstOf(name("run", r.Run), name("stage", r.Stage), artifactRefs("artifacts", r.Artifacts), optName("cause", r.Cause))
}
