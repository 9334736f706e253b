package events

import (
	"fmt"
	"regexp"
)

// Streams, buckets and subjects: the one place they are spelled.
const (
	StreamEvents   = "GANTRY_EVENTS"
	StreamTriggers = "GANTRY_TRIGGERS"
	StreamTasks    = "GANTRY_TASKS"
	StreamLogs     = "GANTRY_LOGS"
	StreamDLQ      = "GANTRY_DLQ"

	BucketArtifacts = "artifacts"
	BucketPipelines = "pipelines"
	BucketRuns      = "runs"
	// BucketSecrets holds secret values by name, for build and test workers
	// to resolve a task's secret references; nothing else reads it.
	BucketSecrets = "gantry_secrets"

	SubjectEventsAll   = "gantry.events.>"
	SubjectTriggersAll = "gantry.triggers.>"
	SubjectTasksAll    = "gantry.tasks.>"
	SubjectLogsAll     = "gantry.logs.>"
	SubjectDLQAll      = "gantry.dlq.>"
)

// namePattern keeps names safe as one subject token and one ID path segment.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidName reports whether s may name a pipeline, stage, action, artifact,
// kind or pool.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// CheckName returns ErrInvalidName with what was named when s is not a valid name.
func CheckName(what, s string) error {
	if !ValidName(s) {
		return fmt.Errorf("%w: %s %q must be 1-64 letters, digits, '-' or '_' and start with a letter or digit", ErrInvalidName, what, s)
	}
	return nil
}

// RunSubject is the subject of one run's event log.
func RunSubject(pipeline, run string) string { return "gantry.events." + pipeline + "." + run }

// PipelineEvents matches every run of one pipeline.
func PipelineEvents(pipeline string) string { return "gantry.events." + pipeline + ".*" }

// TriggerSubject is where anyone may ask for a run of a pipeline.
func TriggerSubject(pipeline string) string { return "gantry.triggers." + pipeline }

// TaskSubject is the work queue of one kind and pool.
func TaskSubject(kind, pool string) string { return "gantry.tasks." + kind + "." + pool }

// LogSubject carries the live output of one action of a run.
func LogSubject(run, stage, action string) string {
	return "gantry.logs." + run + "." + stage + "." + action
}

// DLQSubject is where refused messages from a stream go.
func DLQSubject(stream string) string { return "gantry.dlq." + stream }

// ArtifactKey is the object store key of an artifact an action attempt
// stored: <pipeline>/<run>/<stage>/<action>/<attempt>/<upload>/<name>.
// upload is unique to one delivery of the task (a worker's UUID), so two
// workers holding the same attempt (one stalled past AckWait, one given
// the redelivered task) never write the same key: objects are write-once,
// and the key and digest an event names stay true. Every key of a run
// starts with <pipeline>/<run>/.
func ArtifactKey(pipeline string, a ActionRef, upload, name string) string {
	return fmt.Sprintf("%s/%s/%s/%s/%d/%s/%s", pipeline, a.Run, a.Stage, a.Action, a.Attempt, upload, name)
}

// LogKey is the object store key of the archived log of one delivery
// (upload, as in ArtifactKey) of an action attempt.
func LogKey(pipeline, run, stage, action string, attempt int, upload string) string {
	return fmt.Sprintf("%s/%s/logs/%s/%s/%d/%s.log", pipeline, run, stage, action, attempt, upload)
}

// CmdSubject is the request/reply subject of a command verb.
func CmdSubject(verb string) string { return "gantry.cmd." + verb }

// Deployment streams, buckets and subjects.
const (
	StreamDeploys = "GANTRY_DEPLOYS"
	StreamAgents  = "GANTRY_AGENTS"
	StreamAlarms  = "GANTRY_ALARMS"

	BucketAgents       = "agents"
	BucketDeployGroups = "deploygroups"
	// BucketDeployments is the projection of folded deployments, as runs is of runs.
	BucketDeployments = "deployments"

	SubjectDeploysAll = "gantry.deploys.>"
	SubjectAgentsAll  = "gantry.agents.>"
	SubjectAlarmsAll  = "gantry.alarms.>"
)

// DeploySubject is the subject of one deployment's event log.
func DeploySubject(group, deployment string) string {
	return "gantry.deploys." + group + "." + deployment
}

// GroupDeploys matches every deployment of one deployment group.
func GroupDeploys(group string) string { return "gantry.deploys." + group + ".*" }

// AgentSubject carries the commands of one host's agent.
func AgentSubject(group, host string) string { return "gantry.agents." + group + "." + host }

// AlarmSubject is where alarms of a deployment group are raised.
func AlarmSubject(group string) string { return "gantry.alarms." + group }

// AgentKey is a host's key in the agents bucket.
func AgentKey(group, host string) string { return group + "." + host }

// Notification stream and subjects (services/chatops, the notify role):
// one delivery job per run event and target, and the outcome events of
// each attempt. A stream of their own, so the notifier never appends to a
// run's subject, which the conductor appends to with an expected sequence.
const (
	StreamNotify     = "GANTRY_NOTIFY"
	SubjectNotifyAll = "gantry.notify.>"
	// SubjectNotifyDeliveries matches every delivery job.
	SubjectNotifyDeliveries = "gantry.notify.deliveries.>"
	// SubjectNotifyOutcomes matches every outcome event.
	SubjectNotifyOutcomes = "gantry.notify.outcomes.>"
)

// NotifyDeliverySubject carries the delivery jobs of one target.
func NotifyDeliverySubject(target string) string { return "gantry.notify.deliveries." + target }

// NotifyOutcomeSubject carries the delivery outcomes of one run's events.
func NotifyOutcomeSubject(pipeline, run string) string {
	return "gantry.notify.outcomes." + pipeline + "." + run
}
