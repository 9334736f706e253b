package events

// Event types. Each has a payload struct below and a JSON Schema in the
// schemas module (schemas/events/<type>.json).
const (
	TypeRunRequested     = "dev.gantry.run.requested"
	TypeRunStarted       = "dev.gantry.run.started"
	TypeRunSucceeded     = "dev.gantry.run.succeeded"
	TypeRunFailed        = "dev.gantry.run.failed"
	TypeStageStarted     = "dev.gantry.stage.started"
	TypeStageSucceeded   = "dev.gantry.stage.succeeded"
	TypeStageFailed      = "dev.gantry.stage.failed"
	TypeActionDispatched = "dev.gantry.action.dispatched"
	TypeActionStarted    = "dev.gantry.action.started"
	TypeActionHeartbeat  = "dev.gantry.action.heartbeat"
	TypeActionSucceeded  = "dev.gantry.action.succeeded"
	TypeActionFailed     = "dev.gantry.action.failed"
	TypeArtifactStored   = "dev.gantry.artifact.stored"
	TypeLogArchived      = "dev.gantry.log.archived"
	TypeTestReported     = "dev.gantry.test.reported"
	TypeRunStopping      = "dev.gantry.run.stopping"
	TypeRunStopped       = "dev.gantry.run.stopped"
	TypeActionAbandoned  = "dev.gantry.action.abandoned"
)

// Types lists every event type, in catalogue order.
var Types = []string{
	TypeRunRequested, TypeRunStarted, TypeRunSucceeded, TypeRunFailed,
	TypeRunStopping, TypeRunStopped,
	TypeStageStarted, TypeStageSucceeded, TypeStageFailed, TypeStageRetrying,
	TypeActionDispatched, TypeActionStarted, TypeActionHeartbeat,
	TypeActionSucceeded, TypeActionFailed, TypeActionAbandoned,
	TypeArtifactStored, TypeLogArchived, TypeTestReported,
}

// Trigger records why a run exists.
type Trigger struct {
	// ID deduplicates triggers: the same ID always yields the same run.
	ID string `json:"id"`
	// Kind is manual, api, webhook, poll or event.
	Kind   string `json:"kind"`
	Commit string `json:"commit,omitempty"`
	Ref    string `json:"ref,omitempty"`
	Actor  string `json:"actor,omitempty"`
}

// ArtifactRef names an artifact in the object store with the digest its
// consumers verify.
type ArtifactRef struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// RunRequested opens a run. It carries the whole pipeline definition at the
// revision the run was started with, so the log alone is enough to fold and
// decide the run.
type RunRequested struct {
	Pipeline   string            `json:"pipeline"`
	Run        string            `json:"run"`
	Revision   uint64            `json:"revision"`
	Definition Definition        `json:"definition"`
	Trigger    Trigger           `json:"trigger"`
	Variables  map[string]string `json:"variables,omitempty"`
	// Rollback makes the run a stage rollback (kind ROLLBACK,
	// types_lanes.go); nil for an ordinary run.
	Rollback *Rollback `json:"rollback,omitempty"`
}

func (RunRequested) EventType() string { return TypeRunRequested }

// RunStarted marks the conductor taking the run up.
type RunStarted struct {
	Run string `json:"run"`
}

func (RunStarted) EventType() string { return TypeRunStarted }

// RunSucceeded ends a run whose stages all succeeded.
type RunSucceeded struct {
	Run string `json:"run"`
}

func (RunSucceeded) EventType() string { return TypeRunSucceeded }

// RunFailed ends a run; Stage names the stage that failed it, if any.
type RunFailed struct {
	Run    string `json:"run"`
	Stage  string `json:"stage,omitempty"`
	Reason string `json:"reason"`
}

func (RunFailed) EventType() string { return TypeRunFailed }

// RunStopping records a request to stop a run (gantry run stop, the
// gantry.cmd.stop command): no new action is dispatched; without Abandon
// the actions in progress finish, with it they are abandoned at once and
// their tasks cancelled. The run then ends with run.stopped.
type RunStopping struct {
	Run     string `json:"run"`
	Abandon bool   `json:"abandon,omitempty"`
	Reason  string `json:"reason"`
	// Actor names who asked, as the caller gave it.
	Actor string `json:"actor,omitempty"`
}

func (RunStopping) EventType() string { return TypeRunStopping }

// RunStopped ends a stopped run once nothing of it is in progress.
type RunStopped struct {
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

func (RunStopped) EventType() string { return TypeRunStopped }

// StageStarted, StageSucceeded and StageFailed carry the stage's attempt so
// that a retried stage has its own IDs.
type StageStarted struct {
	Run     string `json:"run"`
	Stage   string `json:"stage"`
	Attempt int    `json:"attempt"`
}

func (StageStarted) EventType() string { return TypeStageStarted }

type StageSucceeded struct {
	Run     string `json:"run"`
	Stage   string `json:"stage"`
	Attempt int    `json:"attempt"`
}

func (StageSucceeded) EventType() string { return TypeStageSucceeded }

type StageFailed struct {
	Run     string `json:"run"`
	Stage   string `json:"stage"`
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
	// Rollback is set when an onSuccess condition with result ROLLBACK
	// failed the stage: the stage's rollback is asked for.
	Rollback bool `json:"rollback,omitempty"`
}

func (StageFailed) EventType() string { return TypeStageFailed }

// Task is a unit of work on GANTRY_TASKS. The dispatched event carries it
// whole, so the task can be republished from the log after a crash.
type Task struct {
	ID             string            `json:"id"`
	Pipeline       string            `json:"pipeline"`
	Run            string            `json:"run"`
	Stage          string            `json:"stage"`
	Action         string            `json:"action"`
	Attempt        int               `json:"attempt"`
	Kind           string            `json:"kind"`
	Pool           string            `json:"pool"`
	Configuration  map[string]string `json:"configuration,omitempty"`
	Inputs         []ArtifactRef     `json:"inputs,omitempty"`
	Outputs        []string          `json:"outputs,omitempty"`
	Variables      map[string]string `json:"variables,omitempty"`
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"`
	// LeaseHash is the hash of the attempt's lease (LeaseHash): what the log
	// records, so the fold can check a result without knowing the lease.
	LeaseHash string `json:"leaseHash,omitempty"`
	// Lease is the attempt's secret lease (LeaseToken). Only the message on
	// GANTRY_TASKS carries it, never the action.dispatched event; a worker
	// puts it in the result that ends the attempt.
	Lease string `json:"lease,omitempty"`
	// Secrets maps environment variable names to secret references (a
	// name in BucketSecrets, or file:/path on the worker host), which the
	// worker resolves; values never travel in a task or an event.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// ActionDispatched records that a task was handed to the worker fleet.
type ActionDispatched struct {
	Task Task `json:"task"`
}

func (ActionDispatched) EventType() string { return TypeActionDispatched }

// ActionRef identifies one attempt of one action of a run.
type ActionRef struct {
	Run     string `json:"run"`
	Stage   string `json:"stage"`
	Action  string `json:"action"`
	Attempt int    `json:"attempt"`
}

// ActionStarted records that a worker took the task.
type ActionStarted struct {
	ActionRef
	Worker string `json:"worker"`
}

func (ActionStarted) EventType() string { return TypeActionStarted }

// ActionHeartbeat is appended at a slow cadence while an action runs, so the
// log shows liveness; the fast heartbeat is JetStream's InProgress.
type ActionHeartbeat struct {
	ActionRef
	Worker string `json:"worker"`
	Beat   int    `json:"beat"`
}

func (ActionHeartbeat) EventType() string { return TypeActionHeartbeat }

// ActionSucceeded ends an action attempt; Outputs are the artifacts it stored
// and Variables the values it exported.
type ActionSucceeded struct {
	ActionRef
	Worker    string            `json:"worker,omitempty"`
	Outputs   []ArtifactRef     `json:"outputs,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
	// Lease is the lease of the dispatched task: without it the result is
	// refused.
	Lease string `json:"lease,omitempty"`
}

func (ActionSucceeded) EventType() string { return TypeActionSucceeded }

// ActionFailed ends an action attempt with the reason.
type ActionFailed struct {
	ActionRef
	Worker string `json:"worker,omitempty"`
	Reason string `json:"reason"`
	// Lease is the lease of the dispatched task: without it the result is
	// refused.
	Lease string `json:"lease,omitempty"`
}

func (ActionFailed) EventType() string { return TypeActionFailed }

// ActionAbandoned ends an attempt in progress of a run stopped with
// abandon; the worker running it kills its processes. It carries the
// attempt's lease, as any event that ends an attempt.
type ActionAbandoned struct {
	ActionRef
	Reason string `json:"reason"`
	Lease  string `json:"lease,omitempty"`
}

func (ActionAbandoned) EventType() string { return TypeActionAbandoned }

// ArtifactStored records an artifact put into the object store.
type ArtifactStored struct {
	ActionRef
	Artifact ArtifactRef `json:"artifact"`
}

func (ArtifactStored) EventType() string { return TypeArtifactStored }

// LogArchived records where an action attempt's full log was archived.
type LogArchived struct {
	ActionRef
	Key       string `json:"key"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Lines     int    `json:"lines"`
	Truncated bool   `json:"truncated,omitempty"`
}

func (LogArchived) EventType() string { return TypeLogArchived }

// TestCase is one failed test in a report.
type TestCase struct {
	Suite    string  `json:"suite,omitempty"`
	Name     string  `json:"name"`
	Message  string  `json:"message,omitempty"`
	Duration float64 `json:"durationSeconds,omitempty"`
}

// TestReported carries a parsed JUnit report of a test action.
type TestReported struct {
	ActionRef
	Total    int        `json:"total"`
	Passed   int        `json:"passed"`
	Failed   int        `json:"failed"`
	Skipped  int        `json:"skipped"`
	Duration float64    `json:"durationSeconds"`
	Failures []TestCase `json:"failures,omitempty"`
}

func (TestReported) EventType() string { return TypeTestReported }

// Definition is a pipeline as the conductor sees it: parsed, validated and
// defaulted. The pipeline file parser produces it; run.requested carries it.
type Definition struct {
	Name      string            `json:"name"`
	Variables map[string]string `json:"variables,omitempty"`
	Stages    []StageDef        `json:"stages"`
	// Triggers filter the webhooks and polls that start runs (types_trigger.go).
	Triggers []TriggerDef `json:"triggers,omitempty"`
	// ExecutionMode is ModeSuperseded, ModeQueued or ModeParallel; empty
	// means ModeSuperseded (types_lanes.go).
	ExecutionMode string `json:"executionMode,omitempty"`
}

// StageDef is one stage; its actions run in runOrder groups.
type StageDef struct {
	Name string `json:"name"`
	// DependsOn names the stages that must succeed before this one starts;
	// empty means the stage before it in the file (none for the first).
	DependsOn []string    `json:"dependsOn,omitempty"`
	Actions   []ActionDef `json:"actions"`
	// OnFailure is what happens when the stage fails; nil means FAIL.
	OnFailure *OnFailure `json:"onFailure,omitempty"`
	// BeforeEntry and OnSuccess are the stage's conditions (types_condition.go).
	BeforeEntry *Condition `json:"beforeEntry,omitempty"`
	OnSuccess   *Condition `json:"onSuccess,omitempty"`
}

// ActionDef is one action of a stage.
type ActionDef struct {
	Name string `json:"name"`
	// Type is the task kind: source, build, test or any custom kind.
	Type     string `json:"type"`
	Pool     string `json:"pool"`
	RunOrder int    `json:"runOrder"`
	// Namespace names the action's exported variables for later actions'
	// configuration: #{Namespace.KEY}.
	Namespace      string            `json:"namespace,omitempty"`
	Inputs         []string          `json:"inputs,omitempty"`
	Outputs        []string          `json:"outputs,omitempty"`
	Configuration  map[string]string `json:"configuration,omitempty"`
	TimeoutSeconds int               `json:"timeoutSeconds,omitempty"`
	// Secrets are references by environment variable name, as in Task.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// Deployment event types. A deployment's events go to its own subject on
// the GANTRY_DEPLOYS stream, gantry.deploys.<group>.<deployment>; the
// CloudEvents subject is the deployment ID.
const (
	TypeDeploymentCreated    = "dev.gantry.deployment.created"
	TypeDeployHostDispatched = "dev.gantry.deployment.host.dispatched"
	TypeDeployHostLifecycle  = "dev.gantry.deployment.host.lifecycle"
	TypeDeployHostSucceeded  = "dev.gantry.deployment.host.succeeded"
	TypeDeployHostFailed     = "dev.gantry.deployment.host.failed"
	TypeDeploymentSucceeded  = "dev.gantry.deployment.succeeded"
	TypeDeploymentFailed     = "dev.gantry.deployment.failed"
	TypeDeploymentStopped    = "dev.gantry.deployment.stopped"
	TypeDeploymentRollback   = "dev.gantry.deployment.rollback"
)

func init() {
	Types = append(Types,
		TypeDeploymentCreated, TypeDeployHostDispatched, TypeDeployHostLifecycle,
		TypeDeployHostSucceeded, TypeDeployHostFailed,
		TypeDeploymentSucceeded, TypeDeploymentFailed, TypeDeploymentStopped,
		TypeDeploymentRollback,
	)
}

// DeploymentConfig is a deployment configuration as the log records it (the
// deployplan package's Config): the minimum number of healthy hosts.
type DeploymentConfig struct {
	Name  string `json:"name,omitempty"`
	Type  string `json:"type"`
	Value int    `json:"value"`
}

// DeploymentTrigger names the pipeline action that asked for a deployment.
type DeploymentTrigger struct {
	Pipeline string `json:"pipeline"`
	Run      string `json:"run"`
	Stage    string `json:"stage"`
	Action   string `json:"action"`
	Attempt  int    `json:"attempt"`
}

// HealthCheck is the HTTP check an agent runs after ValidateService. URL is
// a Go template over the host ({{.Host}}, {{.Labels.port}}).
type HealthCheck struct {
	URL              string `json:"url"`
	ExpectedStatus   int    `json:"expectedStatus,omitempty"`
	IntervalSeconds  int    `json:"intervalSeconds,omitempty"`
	HealthyThreshold int    `json:"healthyThreshold,omitempty"`
	TimeoutSeconds   int    `json:"timeoutSeconds,omitempty"`
}

// DeploymentCreated opens a deployment. It carries everything the deploy
// service and the agents need, so the log alone decides the deployment.
type DeploymentCreated struct {
	Deployment  string             `json:"deployment"`
	Group       string             `json:"group"`
	Application string             `json:"application"`
	Revision    ArtifactRef        `json:"revision"`
	Config      DeploymentConfig   `json:"config"`
	Hosts       []string           `json:"hosts"`
	HealthCheck *HealthCheck       `json:"healthCheck,omitempty"`
	RollbackOf  string             `json:"rollbackOf,omitempty"`
	Trigger     *DeploymentTrigger `json:"trigger,omitempty"`
	// IgnoreApplicationStopFailures lets a host go on when the ApplicationStop
	// hook of its previous revision fails (CodeDeploy's flag of the same
	// name): otherwise a broken stop script fails every later deployment.
	IgnoreApplicationStopFailures bool `json:"ignoreApplicationStopFailures,omitempty"`
	// Variables are the revision's: those of the run that built it. Every
	// hook gets them in its environment, and a rollback or redeploy of the
	// revision carries them along.
	Variables map[string]string `json:"variables,omitempty"`
	// Actor names who asked for the deployment, when a person or bot did
	// (api:<token name> through the HTTP API); empty for a pipeline action
	// or the rollback service.
	Actor string `json:"actor,omitempty"`
}

func (DeploymentCreated) EventType() string { return TypeDeploymentCreated }

// DeployHostDispatched records that a host's agent was sent the deployment.
type DeployHostDispatched struct {
	Deployment string `json:"deployment"`
	Group      string `json:"group"`
	Host       string `json:"host"`
}

func (DeployHostDispatched) EventType() string { return TypeDeployHostDispatched }

// Lifecycle step statuses.
const (
	StepStarted   = "started"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepSkipped   = "skipped"
)

// DeployHostLifecycle is the start or end of one lifecycle event on a host.
type DeployHostLifecycle struct {
	Deployment string  `json:"deployment"`
	Group      string  `json:"group"`
	Host       string  `json:"host"`
	Event      string  `json:"event"`
	Status     string  `json:"status"`
	ExitCode   int     `json:"exitCode"`
	Duration   float64 `json:"durationSeconds"`
	LogTail    string  `json:"logTail,omitempty"`
}

func (DeployHostLifecycle) EventType() string { return TypeDeployHostLifecycle }

// DeployHostSucceeded ends a host's part: installed, validated, healthy.
type DeployHostSucceeded struct {
	Deployment string `json:"deployment"`
	Group      string `json:"group"`
	Host       string `json:"host"`
}

func (DeployHostSucceeded) EventType() string { return TypeDeployHostSucceeded }

// DeployHostFailed ends a host's part with the reason.
type DeployHostFailed struct {
	Deployment string `json:"deployment"`
	Group      string `json:"group"`
	Host       string `json:"host"`
	Reason     string `json:"reason"`
}

func (DeployHostFailed) EventType() string { return TypeDeployHostFailed }

// DeploymentSucceeded ends a deployment that met its minimum healthy hosts.
type DeploymentSucceeded struct {
	Deployment string `json:"deployment"`
	Group      string `json:"group"`
}

func (DeploymentSucceeded) EventType() string { return TypeDeploymentSucceeded }

// DeploymentFailed ends a deployment with the reason.
type DeploymentFailed struct {
	Deployment string `json:"deployment"`
	Group      string `json:"group"`
	Reason     string `json:"reason"`
}

func (DeploymentFailed) EventType() string { return TypeDeploymentFailed }

// DeploymentStopped ends a deployment on request or alarm; Rollback asks
// the rollback service to redeploy the last known good revision.
type DeploymentStopped struct {
	Deployment string `json:"deployment"`
	Group      string `json:"group"`
	Reason     string `json:"reason"`
	Rollback   bool   `json:"rollback,omitempty"`
}

func (DeploymentStopped) EventType() string { return TypeDeploymentStopped }

// DeploymentRollback is the rollback service's answer to a deployment that
// ended asking for a rollback (failed with auto-rollback on, or stopped
// with rollback requested), appended to that deployment after its end:
// the rollback deployment it started, or, with RollbackDeployment empty,
// why there is none (no earlier success, no live agents, the deployment
// was itself a rollback). CodeDeploy's rollbackInfo.
type DeploymentRollback struct {
	Deployment         string `json:"deployment"`
	Group              string `json:"group"`
	RollbackDeployment string `json:"rollbackDeployment,omitempty"`
	Revision           string `json:"revision,omitempty"`
	Message            string `json:"message"`
}

func (DeploymentRollback) EventType() string { return TypeDeploymentRollback }
