package events

// Stage conditions (issue 9, point 9; CodePipeline V2's beforeEntry and
// onSuccess). A condition is a result and rules that must all pass; the
// conductor evaluates the rules one by one and records each evaluation as
// condition.evaluated, so the outcome is a fact of the log and never
// re-evaluated after a restart.
const (
	TypeConditionEvaluated = "dev.gantry.condition.evaluated"
	TypeStageSkipped       = "dev.gantry.stage.skipped"
)

func init() {
	Types = append(Types, TypeConditionEvaluated, TypeStageSkipped)
}

// When a condition is evaluated.
const (
	BeforeEntry = "beforeEntry"
	OnSuccess   = "onSuccess"
)

// Condition results: what happens when a rule does not pass.
const (
	ResultFail     = "FAIL"
	ResultSkip     = "SKIP"
	ResultRollback = "ROLLBACK"
)

// Rule types.
const (
	RuleVariableCheck    = "VariableCheck"
	RuleDeploymentWindow = "DeploymentWindow"
	RuleNoActiveAlarm    = "NoActiveAlarm"
	RuleCommand          = "Command"
)

// MaxRules bounds the rules of one condition; MaxRuleName a rule's name,
// so that ConditionTaskName is still a name.
const (
	MaxRules    = 20
	MaxRuleName = 48
)

// Condition is a stage's beforeEntry or onSuccess.
type Condition struct {
	// Result is FAIL or SKIP (beforeEntry), FAIL or ROLLBACK (onSuccess).
	Result string `json:"result"`
	Rules  []Rule `json:"rules"`
}

// Rule is one check of a condition. Configuration by type:
// VariableCheck variable, operator (EQ, NE, CONTAINS, MATCHES), value;
// DeploymentWindow cron, timeZone; NoActiveAlarm group, windowSeconds;
// Command command, pool, timeoutSeconds, input.
type Rule struct {
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	Configuration map[string]string `json:"configuration,omitempty"`
}

// ConditionEvaluated records one rule's evaluation for one attempt of a stage.
type ConditionEvaluated struct {
	Run     string `json:"run"`
	Stage   string `json:"stage"`
	Attempt int    `json:"attempt"`
	// When is beforeEntry or onSuccess.
	When   string `json:"when"`
	Rule   string `json:"rule"`
	Type   string `json:"type"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason"`
}

func (ConditionEvaluated) EventType() string { return TypeConditionEvaluated }

// StageSkipped ends a stage whose beforeEntry condition with result SKIP
// did not pass: the run goes on as if the stage had succeeded.
type StageSkipped struct {
	Run     string `json:"run"`
	Stage   string `json:"stage"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

func (StageSkipped) EventType() string { return TypeStageSkipped }

// ConditionTaskName is the action name of the task a Command rule runs:
// condition tasks travel as actions of their stage under this name, which
// the pipeline file refuses for real actions.
func ConditionTaskName(when, rule string) string {
	if when == BeforeEntry {
		return "beforeEntry-" + rule
	}
	return "onSuccess-" + rule
}

// ConditionID is the ID of a rule's evaluation.
func ConditionID(run, stage string, attempt int, when, rule string) string {
	return StageID(run, stage, attempt, "condition/"+when+"/"+rule)
}
