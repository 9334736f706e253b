package events

// TypeStageRetrying is a failed or stopped stage re-run in the same run.
const TypeStageRetrying = "dev.gantry.stage.retrying"

// Retry modes: re-run the actions that did not succeed, or every action.
const (
	RetryFailed = "FAILED_ACTIONS"
	RetryAll    = "ALL_ACTIONS"
)

// StageRetrying records that a failed or stopped stage runs again in the
// same run, as a new stage attempt: by hand (gantry run retry,
// gantry.cmd.retry), which reopens a Failed or Stopped run, or
// automatically by the stage's onFailure RETRY. In mode FAILED_ACTIONS the
// actions that succeeded keep their results; the others get new attempts
// (new task IDs and leases). In ALL_ACTIONS every action runs again.
type StageRetrying struct {
	Run   string `json:"run"`
	Stage string `json:"stage"`
	// Attempt is the new stage attempt: one more than the failed one.
	Attempt int    `json:"attempt"`
	Mode    string `json:"mode"`
	// Auto is set when the stage's onFailure RETRY asked, not a person.
	Auto bool `json:"auto,omitempty"`
	// Actor names who asked, as the caller gave it ("gantry" for Auto).
	Actor  string `json:"actor"`
	Reason string `json:"reason,omitempty"`
}

func (StageRetrying) EventType() string { return TypeStageRetrying }

// RetryID is the ID of the retry that opens attempt of a stage: one retry
// per attempt, so two conductors (or a repeated command) cannot retry twice.
func RetryID(run, stage string, attempt int) string {
	return StageID(run, stage, attempt, "retrying")
}

// What a stage's onFailure does: fail the run (the default), retry the
// stage, or roll it back.
const (
	OnFailureFail     = "FAIL"
	OnFailureRetry    = "RETRY"
	OnFailureRollback = "ROLLBACK"
)

// MaxRetries bounds onFailure.retries.
const MaxRetries = 10

// OnFailure is a stage's failure policy: Result FAIL, RETRY (up to Retries
// times, 1-10, with backoff) or ROLLBACK.
type OnFailure struct {
	Result  string `json:"result"`
	Retries int    `json:"retries,omitempty"`
}
