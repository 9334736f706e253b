package events

// Trigger filters of a pipeline (the `triggers` of the pipeline file) and
// the events that record why a webhook or a poll did or did not start a run.

// Trigger event kinds a TriggerDef may list in Events.
const (
	TriggerEventPush        = "push"
	TriggerEventTag         = "tag"
	TriggerEventPullRequest = "pullRequest"
)

// Pull request actions a TriggerDef may list in PullRequestActions.
const (
	PullRequestOpened  = "opened"
	PullRequestUpdated = "updated"
	PullRequestClosed  = "closed"
)

// Bounds of the triggers of a definition.
const (
	// MaxTriggers bounds the triggers of a pipeline.
	MaxTriggers = 20
	// MaxGlobs bounds the includes or excludes of one filter.
	MaxGlobs = 50
	// MaxGlobLen bounds one glob: characters.
	MaxGlobLen = 1024
	// MaxRepositoryLen bounds a trigger's repository: characters.
	MaxRepositoryLen = 512
)

// TriggerDef is one trigger of a pipeline: which forge repository's webhooks
// it listens to (or that it polls the source action's repository), which
// event kinds, and the branch, tag and file path filters a change must pass.
// A change starts a run when any one trigger accepts it.
type TriggerDef struct {
	// Repository is the forge repository whose webhooks start runs, as
	// owner/name (a GitLab group path may have more segments), optionally
	// with the host in front (github.com/owner/name); matched without case.
	Repository string `json:"repository,omitempty"`
	// Events are the kinds that start runs: push, tag, pullRequest
	// (default push).
	Events []string `json:"events,omitempty"`
	// PullRequestActions are the pull request actions that start runs:
	// opened, updated, closed (default opened and updated).
	PullRequestActions []string `json:"pullRequestActions,omitempty"`
	// Branches filter the pushed branch, or a pull request's target branch.
	Branches *GlobFilter `json:"branches,omitempty"`
	// Tags filter the pushed tag.
	Tags *GlobFilter `json:"tags,omitempty"`
	// FilePaths filter the changed files: at least one must pass.
	FilePaths *GlobFilter `json:"filePaths,omitempty"`
	// Poll makes the source service poll the pipeline's source repository.
	Poll *PollDef `json:"poll,omitempty"`
}

// GlobFilter holds include and exclude globs (doublestar syntax, ** for
// any number of path segments). A value passes when it matches an include
// (or there are none) and no exclude: excludes win.
type GlobFilter struct {
	Includes []string `json:"includes,omitempty"`
	Excludes []string `json:"excludes,omitempty"`
}

// PollDef asks for git polling at an interval.
type PollDef struct {
	// Interval is a Go duration, 30s to 24h (e.g. 5m).
	Interval string `json:"interval"`
}

// Trigger decision event types. They are not part of a run's log: they go
// to the triggers stream, on gantry.triggers.<pipeline>.decisions
// (TriggerDecisionSubject), so that a filtered change, which has no run,
// is recorded as well as an accepted one.
const (
	TypeTriggerAccepted = "dev.gantry.trigger.accepted"
	TypeTriggerFiltered = "dev.gantry.trigger.filtered"
)

// TriggerChange is what a webhook delivery or a poll saw.
type TriggerChange struct {
	// Source is webhook or poll.
	Source string `json:"source"`
	// Forge is github, gitlab, gitea or git (polling).
	Forge      string `json:"forge"`
	Repository string `json:"repository"`
	// Event is push, tag or pullRequest.
	Event string `json:"event"`
	// Action is the pull request action (opened, updated, closed).
	Action string `json:"action,omitempty"`
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
	// Delivery is the forge's delivery ID, when it sent one.
	Delivery string `json:"delivery,omitempty"`
	// Files counts the changed files the filters saw (-1: unknown).
	Files int `json:"files"`
}

// TriggerAccepted records that a change passed a pipeline's triggers and
// which run it starts.
type TriggerAccepted struct {
	Pipeline string        `json:"pipeline"`
	Trigger  string        `json:"trigger"`
	Run      string        `json:"run"`
	Change   TriggerChange `json:"change"`
	Reason   string        `json:"reason"`
}

func (TriggerAccepted) EventType() string { return TypeTriggerAccepted }

// TriggerFiltered records that a change passed none of a pipeline's
// triggers, and why.
type TriggerFiltered struct {
	Pipeline string        `json:"pipeline"`
	Trigger  string        `json:"trigger"`
	Change   TriggerChange `json:"change"`
	Reason   string        `json:"reason"`
}

func (TriggerFiltered) EventType() string { return TypeTriggerFiltered }

// TriggerDecisionSubject is where the trigger.accepted and trigger.filtered
// events of a pipeline go (on the triggers stream, beside its triggers).
func TriggerDecisionSubject(pipeline string) string {
	return "gantry.triggers." + pipeline + ".decisions"
}

// TriggerRequests matches the trigger requests of every pipeline, not
// their decision events: what the trigger intake consumes.
const TriggerRequests = "gantry.triggers.*"

func init() { Types = append(Types, TypeTriggerAccepted, TypeTriggerFiltered) }

// TriggerDecisionID is the event ID of a trigger decision: one per pipeline,
// trigger ID and outcome, so a redelivered webhook or a second poller
// records it once.
func TriggerDecisionID(pipeline, trigger, outcome string) string {
	return "trigger/" + trigger + "/" + pipeline + "/" + outcome
}

// BucketPoll holds the git poller's state per pipeline: the commit of each
// polled ref and when it was last polled, so a restart neither re-triggers
// nor polls early. The source service creates it on first start.
const BucketPoll = "gantry_poll"
