package events_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/schemas"
)

// The catalogue tests tie three things together: the payload structs in
// types.go, their JSON Schemas in schemas/events and the catalogue in
// docs/events.md, which is generated from the schemas by renderCatalogue.
//
// Regenerate the doc with:
//
//	cd events && GANTRY_UPDATE_DOCS=1 go test -run TestCatalogueDoc .

const docPath = "../docs/events.md"

// sampleTime is when the sample run happened.
var sampleTime = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// samples returns a realistic payload of every type, each setting every field
// its type has (TestSamplesSetEveryField), so a round trip exercises them all.
func samples() map[string]events.Payload {
	const pipeline = "webshop"
	commit := "3f1c2a9e8b7d6c5f4e3a2b1c0d9e8f7a6b5c4d3e"
	trigger := "github/push/acme/webshop/refs/heads/main/" + commit
	run := events.RunIDForTrigger(trigger, sampleTime.UnixMilli())
	def := events.Definition{
		ExecutionMode: events.ModeQueued,
		Name:          pipeline,
		Variables:     map[string]string{"GOFLAGS": "-mod=readonly", "REGISTRY": "registry.internal:5000"},
		Triggers: []events.TriggerDef{{Repository: "acme/webshop", Events: []string{"push", "pullRequest"},
			PullRequestActions: []string{"opened", "updated"},
			Branches:           &events.GlobFilter{Includes: []string{"main", "release/**"}, Excludes: []string{"release/old"}},
			Tags:               &events.GlobFilter{Includes: []string{"v*"}},
			FilePaths:          &events.GlobFilter{Includes: []string{"src/**"}, Excludes: []string{"**/*.md"}},
			Poll:               &events.PollDef{Interval: "5m"}}},
		Stages: []events.StageDef{
			{Name: "Build", DependsOn: []string{"Source"}, OnFailure: &events.OnFailure{Result: "RETRY", Retries: 2}, Actions: []events.ActionDef{
				{
					Name: "compile", Type: "build", Pool: "linux-amd64", RunOrder: 1, Namespace: "Compile",
					Inputs: []string{"source"}, Outputs: []string{"app", "test-bin"},
					Configuration:  map[string]string{"buildspec": "buildspec.yml"},
					TimeoutSeconds: 1800,
					Secrets:        map[string]string{"NPM_TOKEN": "npm-token"},
				},
				{
					Name: "unit", Type: "test", Pool: "linux-amd64", RunOrder: 2,
					Inputs: []string{"test-bin"}, Configuration: map[string]string{"reports": "reports/*.xml"},
				},
			}},
			{Name: "Staging", OnFailure: &events.OnFailure{Result: events.OnFailureRetry, Retries: 2}, Actions: []events.ActionDef{
				{Name: "deploy", Type: "deploy", Pool: "default", RunOrder: 1, Inputs: []string{"app"},
					Configuration: map[string]string{"application": "webshop", "deploymentGroup": "staging"}},
			},
				BeforeEntry: &events.Condition{Result: events.ResultFail, Rules: []events.Rule{
					{Name: "office-hours", Type: events.RuleDeploymentWindow,
						Configuration: map[string]string{"cron": "* 9-17 * * MON-FRI", "timeZone": "Europe/Berlin"}},
				}},
				OnSuccess: &events.Condition{Result: events.ResultRollback, Rules: []events.Rule{
					{Name: "no-alarms", Type: events.RuleNoActiveAlarm,
						Configuration: map[string]string{"group": "staging", "windowSeconds": "600"}},
				}},
			},
		},
	}
	ref := events.ActionRef{Run: run, Stage: "Build", Action: "compile", Attempt: 2}
	testRef := events.ActionRef{Run: run, Stage: "Build", Action: "unit", Attempt: 1}
	// upload is the delivery of the task that stored an object: keys are
	// write-once.
	const upload = "01a2154c-03f1-7d2e-9b5a-2f0c7e41d8a3"
	sourceRef := events.ActionRef{Run: run, Stage: "Source", Action: "checkout", Attempt: 1}
	app := events.ArtifactRef{Name: "app", Key: events.ArtifactKey(pipeline, ref, upload, "app"), SHA256: digest("app"), Size: 18_874_368}
	source := events.ArtifactRef{Name: "source", Key: events.ArtifactKey(pipeline, sourceRef, upload, "source"), SHA256: digest("source"), Size: 2_411_520}
	dep := events.RunIDForTrigger("deploy/"+run, sampleTime.UnixMilli())
	return map[string]events.Payload{
		events.TypeRunRequested: events.RunRequested{
			Pipeline: pipeline, Run: run, Revision: 7, Definition: def,
			Trigger:   events.Trigger{ID: trigger, Kind: "webhook", Commit: commit, Ref: "refs/heads/main", Actor: "octocat"},
			Variables: map[string]string{"DEPLOY_ENV": "staging"},
			Rollback:  &events.Rollback{Run: dep, Stage: "Staging", Artifacts: []events.ArtifactRef{app}, Cause: dep},
		},
		events.TypeRunStarted:   events.RunStarted{Run: run},
		events.TypeRunSucceeded: events.RunSucceeded{Run: run},
		events.TypeRunFailed:    events.RunFailed{Run: run, Stage: "Staging", Reason: "action deploy failed: health check /healthz returned 503"},
		events.TypeStageStarted: events.StageStarted{Run: run, Stage: "Build", Attempt: 1},
		events.TypeStageSucceeded: events.StageSucceeded{
			Run: run, Stage: "Build", Attempt: 1,
		},
		events.TypeStageFailed: events.StageFailed{Run: run, Stage: "Staging", Attempt: 2,
			Reason: "onSuccess rule no-alarms did not pass: alarm error-rate raised on group staging 2m ago; a rollback of the stage is requested", Rollback: true},
		events.TypeActionWaiting: events.ActionWaiting{ActionRef: events.ActionRef{Run: run, Stage: "Staging", Action: "sign-off", Attempt: 1},
			Instructions: "Check the staging dashboard before production.", URL: "https://grafana.example.com/d/staging",
			Approvers: []string{"alice@laptop", "slack:bob"}, Expires: "2026-03-08T09:30:00Z"},
		events.TypeActionApproved: events.ActionApproved{ActionRef: events.ActionRef{Run: run, Stage: "Staging", Action: "sign-off", Attempt: 1},
			Actor: "alice@laptop", Comment: "dashboards green", Lease: sampleLease},
		events.TypeActionRejected: events.ActionRejected{ActionRef: events.ActionRef{Run: run, Stage: "Staging", Action: "sign-off", Attempt: 1},
			Actor: "slack:bob", Comment: "error rate is up", Lease: sampleLease},
		events.TypeConditionEvaluated: events.ConditionEvaluated{Run: run, Stage: "Staging", Attempt: 1, When: events.BeforeEntry,
			Rule: "office-hours", Type: events.RuleDeploymentWindow, Passed: true, Reason: "2026-03-01T10:30:00+01:00 is inside * 9-17 * * MON-FRI (Europe/Berlin)"},
		events.TypeStageSkipped: events.StageSkipped{Run: run, Stage: "Staging", Attempt: 1,
			Reason: "beforeEntry rule on-main did not pass: GANTRY_REF is refs/heads/feature, want EQ refs/heads/main"},
		events.TypeActionDispatched: events.ActionDispatched{Task: events.Task{
			ID:       events.TaskID(ref.Run, ref.Stage, ref.Action, ref.Attempt),
			Pipeline: pipeline, Run: ref.Run, Stage: ref.Stage, Action: ref.Action, Attempt: ref.Attempt,
			Kind: "build", Pool: "linux-amd64",
			Configuration:  map[string]string{"buildspec": "buildspec.yml"},
			Inputs:         []events.ArtifactRef{source},
			Outputs:        []string{"app", "test-bin"},
			Variables:      map[string]string{"GOFLAGS": "-mod=readonly", "DEPLOY_ENV": "staging"},
			TimeoutSeconds: 1800,
			LeaseHash:      events.LeaseHash(sampleLease),
			Secrets:        map[string]string{"NPM_TOKEN": "npm-token", "SIGNING_KEY": "file:/run/secrets/signing.key"},
		}},
		events.TypeActionStarted:   events.ActionStarted{ActionRef: ref, Worker: "build-7f9c4-2"},
		events.TypeActionHeartbeat: events.ActionHeartbeat{ActionRef: ref, Worker: "build-7f9c4-2", Beat: 3},
		events.TypeActionSucceeded: events.ActionSucceeded{
			ActionRef: ref, Worker: "build-7f9c4-2",
			Outputs:   []events.ArtifactRef{app},
			Variables: map[string]string{"VERSION": "1.4.2-3f1c2a9"},
			Lease:     sampleLease,
		},
		events.TypeActionFailed: events.ActionFailed{ActionRef: ref, Worker: "build-7f9c4-2", Reason: "phase build: command `go build ./...` exited with status 1",
			Lease: sampleLease},
		events.TypeArtifactStored: events.ArtifactStored{ActionRef: ref, Artifact: app},
		events.TypeRunStopping:    events.RunStopping{Run: run, Abandon: true, Reason: "wrong branch", Actor: "alice@laptop"},
		events.TypeStageRetrying: events.StageRetrying{Run: run, Stage: "Staging", Attempt: 2, Mode: events.RetryFailed, Auto: true,
			Actor: "gantry", Reason: "onFailure RETRY 1 of 3"},
		events.TypeRunStopped:      events.RunStopped{Run: run, Reason: "wrong branch"},
		events.TypeActionAbandoned: events.ActionAbandoned{ActionRef: ref, Reason: "run stopped: wrong branch", Lease: sampleLease},
		events.TypeLogArchived: events.LogArchived{
			ActionRef: ref, Key: events.LogKey(pipeline, run, ref.Stage, ref.Action, ref.Attempt, upload),
			SHA256: digest("log"), Size: 1_048_576, Lines: 20_311, Truncated: true,
		},
		events.TypeDeploymentCreated: events.DeploymentCreated{
			Deployment: dep, Group: "staging", Application: pipeline, Revision: app,
			Config: events.DeploymentConfig{Name: "CodeDeployDefault.OneAtATime", Type: "MOST_CONCURRENCY", Value: 1},
			Hosts:  []string{"web-1", "web-2", "web-3"},
			HealthCheck: &events.HealthCheck{URL: "http://127.0.0.1:{{.Labels.port}}/healthz", ExpectedStatus: 200,
				IntervalSeconds: 1, HealthyThreshold: 2, TimeoutSeconds: 60},
			RollbackOf:                    events.RunIDForTrigger("deploy/previous", sampleTime.UnixMilli()-60_000),
			Trigger:                       &events.DeploymentTrigger{Pipeline: pipeline, Run: run, Stage: "Staging", Action: "deploy", Attempt: 1},
			Variables:                     map[string]string{"GANTRY_PIPELINE": pipeline, "GANTRY_RUN_ID": run, "VERSION": "1.4.2"},
			IgnoreApplicationStopFailures: true,
			Actor:                         "api:release-bot",
		},
		events.TypeDeployHostDispatched: events.DeployHostDispatched{Deployment: dep, Group: "staging", Host: "web-1"},
		events.TypeDeployHostLifecycle: events.DeployHostLifecycle{Deployment: dep, Group: "staging", Host: "web-1",
			Event: "ValidateService", Status: events.StepFailed, ExitCode: 1, Duration: 0.75,
			LogTail: "curl: (7) Failed to connect to 127.0.0.1 port 8080"},
		events.TypeDeployHostSucceeded: events.DeployHostSucceeded{Deployment: dep, Group: "staging", Host: "web-1"},
		events.TypeDeployHostFailed: events.DeployHostFailed{Deployment: dep, Group: "staging", Host: "web-2",
			Reason: "ValidateService: scripts/check.sh exited with status 1"},
		events.TypeDeploymentSucceeded: events.DeploymentSucceeded{Deployment: dep, Group: "staging"},
		events.TypeDeploymentFailed: events.DeploymentFailed{Deployment: dep, Group: "staging",
			Reason: "1 of 3 hosts failed with 1 still to deploy"},
		events.TypeDeploymentStopped: events.DeploymentStopped{Deployment: dep, Group: "staging",
			Reason: "alarm on staging: error rate above 5%", Rollback: true},
		events.TypeDeploymentRollback: events.DeploymentRollback{Deployment: dep, Group: "staging",
			RollbackDeployment: events.RunIDForTrigger("rollback/"+dep, sampleTime.UnixMilli()), Revision: app.Key,
			Message: "rolling back to " + app.Key + ", the last revision that succeeded on staging"},
		events.TypeNotificationDelivered: events.NotificationDelivered{Run: run, Pipeline: pipeline, Target: "team-slack",
			Kind: "slack", Event: events.RunID(run, "failed"), OfType: events.TypeRunFailed, Attempt: 2, StatusCode: 200},
		events.TypeNotificationFailed: events.NotificationFailed{Run: run, Pipeline: pipeline, Target: "audit-hook",
			Kind: "cloudevents", Event: events.RunID(run, "failed"), OfType: events.TypeRunFailed, Attempt: 1, StatusCode: 503,
			Reason: "https://audit.example.com/*** answered 503 Service Unavailable", Retry: true},
		events.TypeTestReported: events.TestReported{
			ActionRef: testRef, Total: 412, Passed: 407, Failed: 2, Skipped: 3, Duration: 38.25,
			Failures: []events.TestCase{
				{Suite: "cart", Name: "TestCheckoutAppliesCoupon", Message: "cart_test.go:88: total = 90, want 81", Duration: 0.012},
				{Suite: "payments", Name: "TestRefundTwice", Message: "timeout after 10s"},
			},
		},
		events.TypeTriggerAccepted: events.TriggerAccepted{Pipeline: pipeline, Trigger: "webhook-github-" + commit[:32], Run: run,
			Change: events.TriggerChange{Source: "webhook", Forge: "github", Repository: "acme/webshop", Event: "pullRequest",
				Action: "updated", Ref: "refs/heads/main", Commit: commit, Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Files: 3},
			Reason: "trigger 1 accepted: branch main matches main; file src/cart.go matches src/**"},
		events.TypeTriggerFiltered: events.TriggerFiltered{Pipeline: pipeline, Trigger: "webhook-github-" + commit[:32],
			Change: events.TriggerChange{Source: "poll", Forge: "git", Repository: "https://git.example.com/acme/webshop.git", Event: "push",
				Action: "closed", Ref: "refs/heads/docs", Commit: commit, Delivery: "d1", Files: 2},
			Reason: "trigger 1: branch docs matches no include of main, release/**"},
		events.TypeRunSuperseded:  events.RunSuperseded{Run: run, Stage: "Staging", By: dep, Reason: "superseded by run " + dep},
		events.TypeLaneWaiting:    events.LaneWaiting{Pipeline: pipeline, Run: run, Stage: "Staging", Order: 4711, Mode: events.ModeQueued},
		events.TypeLaneEntered:    events.LaneEntered{Pipeline: pipeline, Run: run, Stage: "Staging"},
		events.TypeLaneLeft:       events.LaneLeft{Pipeline: pipeline, Run: run, Stage: "Staging"},
		events.TypeLaneSuperseded: events.LaneSuperseded{Pipeline: pipeline, Run: run, Stage: "Staging", By: dep},
		events.TypeLaneTransition: events.LaneTransition{Pipeline: pipeline, Stage: "Staging", Disabled: true,
			Reason: "release freeze until Monday", Actor: "alice@laptop"},
	}
}

// idOf returns the deterministic event ID of a payload, built with the
// helpers in ids.go the way the services build it. The catalogue documents
// these patterns.
func idOf(p events.Payload) string {
	switch p := p.(type) {
	case events.RunRequested:
		return events.RunID(p.Run, "requested")
	case events.RunStarted:
		return events.RunID(p.Run, "started")
	case events.RunSucceeded:
		return events.RunID(p.Run, "succeeded")
	case events.RunFailed:
		return events.RunID(p.Run, "failed")
	case events.StageStarted:
		return events.StageID(p.Run, p.Stage, p.Attempt, "started")
	case events.StageSucceeded:
		return events.StageID(p.Run, p.Stage, p.Attempt, "succeeded")
	case events.StageFailed:
		return events.StageID(p.Run, p.Stage, p.Attempt, "failed")
	case events.ActionDispatched:
		t := p.Task
		return events.ActionID(events.ActionRef{Run: t.Run, Stage: t.Stage, Action: t.Action, Attempt: t.Attempt}, "dispatched")
	case events.ActionStarted:
		return events.ActionID(p.ActionRef, "started")
	case events.ActionHeartbeat:
		return events.ActionID(p.ActionRef, "heartbeat/"+strconv.Itoa(p.Beat))
	case events.ActionSucceeded:
		return events.ResultID(p.ActionRef, "succeeded", p.Lease)
	case events.ActionFailed:
		return events.ResultID(p.ActionRef, "failed", p.Lease)
	case events.ArtifactStored:
		return events.ActionID(p.ActionRef, "artifact/"+p.Artifact.Name)
	case events.RunStopping:
		return events.StopID(p.Run, p.Abandon)
	case events.RunStopped:
		return events.RunID(p.Run, "stopped")
	case events.StageRetrying:
		return events.RetryID(p.Run, p.Stage, p.Attempt)
	case events.ActionAbandoned:
		return events.ResultID(p.ActionRef, "abandoned", p.Lease)
	case events.ActionWaiting:
		return events.ActionID(p.ActionRef, "waiting")
	case events.ActionApproved:
		return events.ResultID(p.ActionRef, "approved", p.Lease)
	case events.ActionRejected:
		return events.ResultID(p.ActionRef, "rejected", p.Lease)
	case events.ConditionEvaluated:
		return events.ConditionID(p.Run, p.Stage, p.Attempt, p.When, p.Rule)
	case events.StageSkipped:
		return events.StageID(p.Run, p.Stage, p.Attempt, "skipped")
	case events.LogArchived:
		return events.ActionID(p.ActionRef, "log-archived")
	case events.TestReported:
		return events.ActionID(p.ActionRef, "test-reported")
	case events.RunSuperseded:
		return events.RunID(p.Run, "superseded")
	case events.LaneWaiting:
		return events.LaneID(p.Pipeline, p.Run, p.Stage, "waiting")
	case events.LaneEntered:
		return events.LaneID(p.Pipeline, p.Run, p.Stage, "entered")
	case events.LaneLeft:
		return events.LaneID(p.Pipeline, p.Run, p.Stage, "left")
	case events.LaneSuperseded:
		return events.LaneID(p.Pipeline, p.Run, p.Stage, "superseded")
	case events.LaneTransition:
		return events.TransitionID(p.Pipeline, p.Stage, p.Disabled, attemptMark)
	case events.DeploymentCreated:
		return events.DeployID(p.Deployment, "created")
	case events.DeployHostDispatched:
		return events.DeployHostID(p.Deployment, p.Host, "dispatched")
	case events.DeployHostLifecycle:
		return events.DeployHostID(p.Deployment, p.Host, "lifecycle/"+p.Event+"/"+p.Status)
	case events.DeployHostSucceeded:
		return events.DeployHostID(p.Deployment, p.Host, "succeeded")
	case events.DeployHostFailed:
		return events.DeployHostID(p.Deployment, p.Host, "failed")
	case events.DeploymentSucceeded:
		return events.DeployID(p.Deployment, "succeeded")
	case events.DeploymentFailed:
		return events.DeployID(p.Deployment, "failed")
	case events.DeploymentStopped:
		return events.DeployID(p.Deployment, "stopped")
	case events.DeploymentRollback:
		return events.DeployID(p.Deployment, "rollback")
	case events.TriggerAccepted:
		return events.TriggerDecisionID(p.Pipeline, p.Trigger, "accepted")
	case events.TriggerFiltered:
		return events.TriggerDecisionID(p.Pipeline, p.Trigger, "filtered")
	case events.NotificationDelivered:
		return events.NotificationID(p.Run, p.Target, p.Event, p.Attempt, "delivered")
	case events.NotificationFailed:
		return events.NotificationID(p.Run, p.Target, p.Event, p.Attempt, "failed")
	}
	panic(fmt.Sprintf("idOf: no ID for %T", p))
}

// Placeholder numbers that idPattern turns back into <attempt> and <beat>.
const (
	attemptMark = 909090901
	beatMark    = 909090902
)

// leaseMark is a lease whose tag idPattern shows as <lease-tag>.
const leaseMark = "lease"

// idPattern renders a type's ID with placeholders, e.g.
// run/<run>/stage/<stage>/attempt/<attempt>/started.
func idPattern(t string) string {
	ref := events.ActionRef{Run: "<run>", Stage: "<stage>", Action: "<action>", Attempt: attemptMark}
	var p events.Payload
	switch t {
	case events.TypeRunRequested:
		p = events.RunRequested{Run: ref.Run}
	case events.TypeRunStarted:
		p = events.RunStarted{Run: ref.Run}
	case events.TypeRunSucceeded:
		p = events.RunSucceeded{Run: ref.Run}
	case events.TypeRunFailed:
		p = events.RunFailed{Run: ref.Run}
	case events.TypeStageStarted:
		p = events.StageStarted{Run: ref.Run, Stage: ref.Stage, Attempt: attemptMark}
	case events.TypeStageSucceeded:
		p = events.StageSucceeded{Run: ref.Run, Stage: ref.Stage, Attempt: attemptMark}
	case events.TypeStageFailed:
		p = events.StageFailed{Run: ref.Run, Stage: ref.Stage, Attempt: attemptMark}
	case events.TypeActionDispatched:
		p = events.ActionDispatched{Task: events.Task{Run: ref.Run, Stage: ref.Stage, Action: ref.Action, Attempt: attemptMark}}
	case events.TypeActionStarted:
		p = events.ActionStarted{ActionRef: ref}
	case events.TypeActionHeartbeat:
		p = events.ActionHeartbeat{ActionRef: ref, Beat: beatMark}
	case events.TypeActionSucceeded:
		p = events.ActionSucceeded{ActionRef: ref, Lease: leaseMark}
	case events.TypeActionFailed:
		p = events.ActionFailed{ActionRef: ref, Lease: leaseMark}
	case events.TypeActionAbandoned:
		p = events.ActionAbandoned{ActionRef: ref, Lease: leaseMark}
	case events.TypeActionWaiting:
		p = events.ActionWaiting{ActionRef: ref}
	case events.TypeActionApproved:
		p = events.ActionApproved{ActionRef: ref, Lease: leaseMark}
	case events.TypeActionRejected:
		p = events.ActionRejected{ActionRef: ref, Lease: leaseMark}
	case events.TypeConditionEvaluated:
		p = events.ConditionEvaluated{Run: ref.Run, Stage: ref.Stage, Attempt: attemptMark, When: "<when>", Rule: "<rule>"}
	case events.TypeStageSkipped:
		p = events.StageSkipped{Run: ref.Run, Stage: ref.Stage, Attempt: attemptMark}
	case events.TypeRunStopping:
		p = events.RunStopping{Run: ref.Run}
	case events.TypeStageRetrying:
		p = events.StageRetrying{Run: ref.Run, Stage: ref.Stage, Attempt: attemptMark}
	case events.TypeRunStopped:
		p = events.RunStopped{Run: ref.Run}
	case events.TypeArtifactStored:
		p = events.ArtifactStored{ActionRef: ref, Artifact: events.ArtifactRef{Name: "<artifact>"}}
	case events.TypeLogArchived:
		p = events.LogArchived{ActionRef: ref}
	case events.TypeTestReported:
		p = events.TestReported{ActionRef: ref}
	case events.TypeDeploymentCreated:
		p = events.DeploymentCreated{Deployment: "<deployment>"}
	case events.TypeDeployHostDispatched:
		p = events.DeployHostDispatched{Deployment: "<deployment>", Host: "<host>"}
	case events.TypeDeployHostLifecycle:
		p = events.DeployHostLifecycle{Deployment: "<deployment>", Host: "<host>", Event: "<event>", Status: "<status>"}
	case events.TypeDeployHostSucceeded:
		p = events.DeployHostSucceeded{Deployment: "<deployment>", Host: "<host>"}
	case events.TypeDeployHostFailed:
		p = events.DeployHostFailed{Deployment: "<deployment>", Host: "<host>"}
	case events.TypeDeploymentSucceeded:
		p = events.DeploymentSucceeded{Deployment: "<deployment>"}
	case events.TypeDeploymentFailed:
		p = events.DeploymentFailed{Deployment: "<deployment>"}
	case events.TypeDeploymentStopped:
		p = events.DeploymentStopped{Deployment: "<deployment>"}
	case events.TypeDeploymentRollback:
		p = events.DeploymentRollback{Deployment: "<deployment>"}
	case events.TypeTriggerAccepted:
		p = events.TriggerAccepted{Pipeline: "<pipeline>", Trigger: "<trigger>"}
	case events.TypeTriggerFiltered:
		p = events.TriggerFiltered{Pipeline: "<pipeline>", Trigger: "<trigger>"}
	case events.TypeNotificationDelivered:
		p = events.NotificationDelivered{Run: ref.Run, Target: "<target>", Event: "<event>", Attempt: attemptMark}
	case events.TypeNotificationFailed:
		p = events.NotificationFailed{Run: ref.Run, Target: "<target>", Event: "<event>", Attempt: attemptMark}
	case events.TypeRunSuperseded:
		p = events.RunSuperseded{Run: ref.Run}
	case events.TypeLaneWaiting:
		p = events.LaneWaiting{Pipeline: "<pipeline>", Run: ref.Run, Stage: ref.Stage}
	case events.TypeLaneEntered:
		p = events.LaneEntered{Pipeline: "<pipeline>", Run: ref.Run, Stage: ref.Stage}
	case events.TypeLaneLeft:
		p = events.LaneLeft{Pipeline: "<pipeline>", Run: ref.Run, Stage: ref.Stage}
	case events.TypeLaneSuperseded:
		p = events.LaneSuperseded{Pipeline: "<pipeline>", Run: ref.Run, Stage: ref.Stage}
	case events.TypeLaneTransition:
		p = events.LaneTransition{Pipeline: "<pipeline>", Stage: ref.Stage}
	default:
		panic("idPattern: unknown type " + t)
	}
	id := idOf(p)
	// A result's ID ends in a tag of its lease: show where, not a value.
	tag := id[strings.LastIndex(id, "/")+1:]
	if !strings.HasPrefix(t, "dev.gantry.action.") || len(tag) != 16 {
		tag = "\x00"
	}
	return strings.NewReplacer(strconv.Itoa(attemptMark), "<attempt>", strconv.Itoa(beatMark), "<beat>", tag, "<lease-tag>").Replace(id)
}

// sampleEvent wraps a sample payload in its envelope the way a service does.
func sampleEvent(t testing.TB, p events.Payload) events.Event {
	t.Helper()
	e, err := events.New(idOf(p), "/gantry/test", runOf(p), sampleTime, p)
	if err != nil {
		t.Fatalf("events.New(%s): %v", p.EventType(), err)
	}
	return e
}

// runOf finds the run a payload belongs to; every payload names one.
func runOf(p events.Payload) string {
	v := reflect.ValueOf(p)
	if f := v.FieldByName("Deployment"); f.IsValid() {
		return f.String()
	}
	if strings.HasPrefix(p.EventType(), "dev.gantry.lane.") {
		return events.LaneToken
	}
	if f := v.FieldByName("Run"); f.IsValid() {
		return f.String()
	}
	if f := v.FieldByName("Trigger"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return v.FieldByName("Task").FieldByName("Run").String()
}

func newCodec(t testing.TB) *events.Codec {
	t.Helper()
	c, err := events.NewCodec()
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func TestCatalogueRoundTrip(t *testing.T) {
	c := newCodec(t)
	all := samples()
	for _, typ := range events.Types {
		t.Run(typ, func(t *testing.T) {
			p, ok := all[typ]
			if !ok {
				t.Fatalf("no sample payload for %s", typ)
			}
			if p.EventType() != typ {
				t.Fatalf("sample for %s has type %s", typ, p.EventType())
			}
			in := sampleEvent(t, p)
			raw, err := c.Encode(in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			out, err := c.Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v\n%s", err, raw)
			}
			if !reflect.DeepEqual(out.Payload, p) {
				t.Errorf("payload changed in a round trip:\n got %#v\nwant %#v", out.Payload, p)
			}
			if out.ID != in.ID || out.Type != typ || out.Source != in.Source || out.Subject != in.Subject ||
				!out.Time.Equal(in.Time) || out.DataSchema != events.SchemaURI(typ) || out.SpecVersion != events.SpecVersion {
				t.Errorf("envelope changed in a round trip:\n got %+v\nwant %+v", out.Envelope, in.Envelope)
			}
			if !strings.HasPrefix(out.ID, "run/"+runOf(p)+"/") && !strings.HasPrefix(out.ID, "deploy/"+runOf(p)+"/") &&
				!strings.HasPrefix(out.ID, "trigger/") &&
				!(runOf(p) == events.LaneToken && strings.HasPrefix(out.ID, "lane/")) {
				t.Errorf("ID %q does not start with the run", out.ID)
			}
		})
	}
}

// sampleLease is a lease as a conductor would compute it.
var sampleLease = events.LeaseToken([]byte("sample key"), events.TaskID("01a2154b-ea92-7634-ac3c-6b12b7b33cb5", "Build", "compile", 1))

// TestSamplesSetEveryField keeps the samples complete: a field a sample leaves
// zero is a field the round trip does not test.
func TestSamplesSetEveryField(t *testing.T) {
	for typ, p := range samples() {
		all, set := map[string]bool{}, map[string]bool{}
		typePaths(reflect.TypeOf(p), "", all)
		valuePaths(reflect.ValueOf(p), "", set)
		var missing []string
		for path := range all {
			if typ == events.TypeActionDispatched && path == "task.lease" {
				continue // the lease is the task message's secret, refused in the log
			}
			if !set[path] {
				missing = append(missing, path)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("sample %s leaves fields zero: %s", typ, strings.Join(missing, ", "))
		}
	}
}

// typePaths records the JSON path of every field of a struct type.
func typePaths(t reflect.Type, prefix string, out map[string]bool) {
	for _, f := range jsonFields(t) {
		path := prefix + f.name
		out[path] = true
		switch ft := f.typ; {
		case ft.Kind() == reflect.Struct:
			typePaths(ft, path+".", out)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			typePaths(ft.Elem(), path+"[].", out)
		}
	}
}

// valuePaths records the JSON path of every field that is not zero, in any
// element of a slice.
func valuePaths(v reflect.Value, prefix string, out map[string]bool) {
	for _, f := range jsonFields(v.Type()) {
		path := prefix + f.name
		fv := v.FieldByIndex(f.index)
		if !fv.IsZero() {
			out[path] = true
		}
		switch {
		case fv.Kind() == reflect.Struct:
			valuePaths(fv, path+".", out)
		case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct:
			for i := range fv.Len() {
				valuePaths(fv.Index(i), path+"[].", out)
			}
		}
	}
}

// jsonField is a struct field as encoding/json sees it, embedded structs
// flattened.
type jsonField struct {
	name      string
	typ       reflect.Type
	index     []int
	omitempty bool
}

func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for _, inner := range jsonFields(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{
			name: name, typ: f.Type, index: []int{i},
			omitempty: slices.Contains(strings.Split(opts, ","), "omitempty"),
		})
	}
	return out
}

// TestSchemaFilesMatchTypes checks that every file under schemas/events/ is a
// type Gantry knows and every type has a schema.
func TestSchemaFilesMatchTypes(t *testing.T) {
	files := map[string]bool{}
	for _, n := range schemas.Names() {
		if rest, ok := strings.CutPrefix(n, "events/"); ok {
			typ, ok := strings.CutSuffix(rest, ".json")
			if !ok {
				t.Errorf("schemas/events/%s is not a .json file", rest)
			}
			files[typ] = true
		}
	}
	known := map[string]bool{}
	for _, typ := range events.Types {
		if known[typ] {
			t.Errorf("events.Types lists %s twice", typ)
		}
		known[typ] = true
		if !files[typ] {
			t.Errorf("type %s has no schemas/events/%s.json", typ, typ)
		}
		p, err := events.ZeroPayload(typ)
		if err != nil {
			t.Errorf("ZeroPayload(%s): %v", typ, err)
		} else if p.EventType() != typ {
			t.Errorf("ZeroPayload(%s) is a %T of type %s", typ, p, p.EventType())
		}
	}
	for typ := range files {
		if !known[typ] {
			t.Errorf("schemas/events/%s.json is not a type in events.Types", typ)
		}
	}
}

// TestSchemasMatchStructs walks each payload struct and its schema together:
// the same JSON names, required exactly when the field has no omitempty, and
// JSON types that the Go types can hold.
func TestSchemasMatchStructs(t *testing.T) {
	ss := loadSchemas(t)
	for _, typ := range events.Types {
		p, err := events.ZeroPayload(typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, problem := range ss.compare(reflect.TypeOf(p), ss.doc("events/"+typ+".json"), typ) {
			t.Error(problem)
		}
	}
}

func (ss *schemaSet) compare(gt reflect.Type, s map[string]any, path string) []string {
	s = ss.deref(s)
	var out []string
	wantType := func(want ...string) {
		got := schemaTypes(s)
		for _, g := range got {
			if !slices.Contains(want, g) {
				out = append(out, fmt.Sprintf("%s: schema allows %s, Go type %s holds %v", path, g, gt, want))
			}
		}
		if len(got) == 0 {
			out = append(out, fmt.Sprintf("%s: schema names no type for Go type %s", path, gt))
		}
	}
	switch gt.Kind() {
	case reflect.Pointer:
		return ss.compare(gt.Elem(), s, path)
	case reflect.String:
		wantType("string")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		wantType("integer")
	case reflect.Float32, reflect.Float64:
		wantType("number", "integer")
	case reflect.Bool:
		wantType("boolean")
	case reflect.Slice:
		wantType("array")
		items, _ := s["items"].(map[string]any)
		if items == nil {
			return append(out, path+": array schema has no items")
		}
		out = append(out, ss.compare(gt.Elem(), items, path+"[]")...)
	case reflect.Map:
		wantType("object")
		if gt.Key().Kind() != reflect.String {
			return append(out, path+": map key is not a string")
		}
		_, values := mapValues(s)
		if values == nil {
			return append(out, path+": map schema has no additionalProperties or single patternProperties schema")
		}
		out = append(out, ss.compare(gt.Elem(), values, path+"{}")...)
	case reflect.Struct:
		wantType("object")
		if s["additionalProperties"] != false {
			out = append(out, path+": object schema must set additionalProperties: false")
		}
		props, _ := s["properties"].(map[string]any)
		required := map[string]bool{}
		for _, r := range asSlice(s["required"]) {
			required[r.(string)] = true
		}
		seen := map[string]bool{}
		for _, f := range jsonFields(gt) {
			fp := path + "." + f.name
			seen[f.name] = true
			ps, ok := props[f.name].(map[string]any)
			if !ok {
				out = append(out, fp+": field missing from the schema")
				continue
			}
			if required[f.name] == f.omitempty {
				out = append(out, fmt.Sprintf("%s: omitempty=%v but required=%v", fp, f.omitempty, required[f.name]))
			}
			out = append(out, ss.compare(f.typ, ps, fp)...)
		}
		for name := range props {
			if !seen[name] {
				out = append(out, fmt.Sprintf("%s.%s: schema property has no Go field", path, name))
			}
		}
		for name := range required {
			if !seen[name] {
				out = append(out, fmt.Sprintf("%s.%s: required property has no Go field", path, name))
			}
		}
	default:
		out = append(out, fmt.Sprintf("%s: unexpected Go kind %s", path, gt.Kind()))
	}
	return out
}

// schemaTypes lists the JSON types a (dereferenced) schema allows.
func schemaTypes(s map[string]any) []string {
	switch t := s["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, x.(string))
		}
		return out
	}
	var out []string
	for _, v := range asSlice(s["enum"]) {
		out = append(out, jsonType(v))
	}
	if c, ok := s["const"]; ok {
		out = append(out, jsonType(c))
	}
	return out
}

func jsonType(v any) string {
	switch v := v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := v.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// TestCatalogueRejects checks, for every type and every payload property, that
// leaving out a required property, giving a property the wrong JSON type and
// adding an unknown property each fail to encode and to decode with
// ErrInvalidEvent and a message that names the property.
func TestCatalogueRejects(t *testing.T) {
	c := newCodec(t)
	ss := loadSchemas(t)
	all := samples()
	for _, typ := range events.Types {
		t.Run(typ, func(t *testing.T) {
			good := sampleEvent(t, all[typ])
			s := ss.doc("events/" + typ + ".json")
			props, _ := s["properties"].(map[string]any)
			check := func(what, wantText string, mutate func(data map[string]any)) {
				t.Helper()
				var data map[string]any
				if err := json.Unmarshal(good.Data, &data); err != nil {
					t.Fatal(err)
				}
				mutate(data)
				bad := good
				var err error
				if bad.Data, err = json.Marshal(data); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Encode(bad); !errors.Is(err, events.ErrInvalidEvent) {
					t.Errorf("%s: Encode error = %v, want ErrInvalidEvent", what, err)
				}
				raw, err := json.Marshal(bad.Envelope)
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.Decode(raw)
				if !errors.Is(err, events.ErrInvalidEvent) {
					t.Errorf("%s: Decode error = %v, want ErrInvalidEvent", what, err)
				} else if !strings.Contains(err.Error(), wantText) {
					t.Errorf("%s: Decode error %q does not contain %q", what, err, wantText)
				}
			}
			for _, r := range asSlice(s["required"]) {
				name := r.(string)
				check("without "+name, "missing property '"+name+"'", func(d map[string]any) { delete(d, name) })
			}
			for name, p := range props {
				wrong := wrongValue(ss.deref(p.(map[string]any)))
				check(fmt.Sprintf("%s=%v", name, wrong), "at /"+name+":", func(d map[string]any) { d[name] = wrong })
			}
			check("with a misspelt property", "additional properties 'attmept' not allowed", func(d map[string]any) { d["attmept"] = 1 })
		})
	}
}

// wrongValue returns a JSON value of a type the schema does not allow.
func wrongValue(s map[string]any) any {
	types := schemaTypes(s)
	for _, v := range []any{"not a number", 17, []any{}, map[string]any{}, true} {
		var name string
		switch v.(type) {
		case string:
			name = "string"
		case int:
			name = "integer"
		case []any:
			name = "array"
		case map[string]any:
			name = "object"
		case bool:
			name = "boolean"
		}
		if !slices.Contains(types, name) && !(name == "integer" && slices.Contains(types, "number")) {
			return v
		}
	}
	return nil
}

// TestOmittedFieldsRoundTrip checks that a zero value written out for an
// omitempty field is either refused by the schema or survives a round trip:
// otherwise Decode would accept a form that re-encodes differently (an empty
// map decodes to an empty map, but encodes as nothing and comes back nil).
func TestOmittedFieldsRoundTrip(t *testing.T) {
	c := newCodec(t)
	for typ, p := range samples() {
		good := sampleEvent(t, p)
		for _, path := range omitemptyPaths(reflect.TypeOf(p), nil) {
			for _, zero := range zeroJSON(path.typ) {
				var data any
				if err := json.Unmarshal(good.Data, &data); err != nil {
					t.Fatal(err)
				}
				if !setAt(data, path.keys, zero) {
					t.Errorf("%s: sample has no parent for %s", typ, strings.Join(path.keys, "/"))
					continue
				}
				bad := good
				bad.Data, _ = json.Marshal(data)
				raw, _ := json.Marshal(bad.Envelope)
				got, err := c.Decode(raw)
				if err != nil {
					if !errors.Is(err, events.ErrInvalidEvent) {
						t.Errorf("%s: /%s=%v: Decode error %v does not wrap ErrInvalidEvent", typ, strings.Join(path.keys, "/"), zero, err)
					}
					continue
				}
				if err := roundTrip(c, got); err != nil {
					t.Errorf("%s: /%s=%s is accepted but %v; refuse it in the schema (minLength, minItems, minProperties, minimum)",
						typ, strings.Join(path.keys, "/"), mustJSON(zero), err)
				}
			}
		}
	}
}

type fieldPath struct {
	keys []string
	typ  reflect.Type
}

// omitemptyPaths lists the JSON paths of omitempty fields; slices of structs
// are entered at their first element.
func omitemptyPaths(t reflect.Type, prefix []string) []fieldPath {
	var out []fieldPath
	for _, f := range jsonFields(t) {
		keys := append(slices.Clone(prefix), f.name)
		if f.omitempty {
			out = append(out, fieldPath{keys, f.typ})
		}
		switch {
		case f.typ.Kind() == reflect.Struct:
			out = append(out, omitemptyPaths(f.typ, keys)...)
		case f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.Struct:
			out = append(out, omitemptyPaths(f.typ.Elem(), append(keys, "0"))...)
		}
	}
	return out
}

// zeroJSON lists the JSON spellings of a Go type's zero value.
func zeroJSON(t reflect.Type) []any {
	switch t.Kind() {
	case reflect.String:
		return []any{""}
	case reflect.Bool:
		return []any{false}
	case reflect.Slice:
		return []any{[]any{}, nil}
	case reflect.Map:
		return []any{map[string]any{}, nil}
	case reflect.Struct:
		return []any{map[string]any{}}
	}
	return []any{0}
}

// setAt sets a value at a path of object keys and array indexes; it reports
// false when a parent is missing.
func setAt(doc any, keys []string, v any) bool {
	for i, k := range keys {
		last := i == len(keys)-1
		switch d := doc.(type) {
		case map[string]any:
			if last {
				d[k] = v
				return true
			}
			doc = d[k]
		case []any:
			n, err := strconv.Atoi(k)
			if err != nil || n >= len(d) {
				return false
			}
			if last {
				d[n] = v
				return true
			}
			doc = d[n]
		default:
			return false
		}
	}
	return false
}

// roundTrip re-encodes a decoded event both ways — as it came and rebuilt
// from its typed payload — and reports how either differs after decoding.
func roundTrip(c *events.Codec, e events.Event) error {
	again, err := c.Encode(e)
	if err != nil {
		return fmt.Errorf("re-encoding it fails: %w", err)
	}
	e2, err := c.Decode(again)
	if err != nil {
		return fmt.Errorf("decoding it re-encoded fails: %w", err)
	}
	if !reflect.DeepEqual(e2.Payload, e.Payload) {
		return fmt.Errorf("re-encoded it decodes to %#v, not %#v", e2.Payload, e.Payload)
	}
	fresh, err := events.New(e.ID, e.Source, e.Subject, e.Time, e.Payload)
	if err != nil {
		return fmt.Errorf("events.New from its payload fails: %w", err)
	}
	raw, err := c.Encode(fresh)
	if err != nil {
		return fmt.Errorf("encoding its payload fails: %w", err)
	}
	e3, err := c.Decode(raw)
	if err != nil {
		return fmt.Errorf("decoding its encoded payload fails: %w", err)
	}
	if !reflect.DeepEqual(e3.Payload, e.Payload) {
		return fmt.Errorf("its encoded payload decodes to %#v, not %#v", e3.Payload, e.Payload)
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestDecodeRefuses covers envelopes that are not events Gantry can use.
func TestDecodeRefuses(t *testing.T) {
	c := newCodec(t)
	good, err := c.Encode(sampleEvent(t, samples()[events.TypeRunStarted]))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		return []byte(mustJSON(m))
	}
	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"not JSON", []byte(`{"specversion":`), "not JSON"},
		{"array", []byte(`[]`), "at /:"},
		{"no data", edit(func(m map[string]any) { delete(m, "data") }), "missing property 'data'"},
		{"unknown type", edit(func(m map[string]any) { m["type"] = "dev.gantry.run.exploded" }), "dev.gantry.run.exploded"},
		{"wrong payload for type", edit(func(m map[string]any) { m["type"] = events.TypeStageStarted }), "missing properties 'stage', 'attempt'"},
		{"bad time", edit(func(m map[string]any) { m["time"] = "yesterday" }), "envelope"},
		// encoding/json matches keys case-insensitively (and folds 'ſ' to
		// 's'), so a second spelling of an attribute would replace the value
		// that was validated by one that was not.
		{"type spelt twice", edit(func(m map[string]any) { m["Type"] = events.TypeStageStarted }), "envelope"},
		{"data spelt twice", edit(func(m map[string]any) { m["DATA"] = map[string]any{"run": "-not a run-"} }), "envelope"},
		{"source spelt with a long s", edit(func(m map[string]any) { m["\u017fource"] = "" }), "envelope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Decode(tc.raw)
			if !errors.Is(err, events.ErrInvalidEvent) && !errors.Is(err, events.ErrUnknownType) {
				t.Fatalf("Decode error = %v, want ErrInvalidEvent or ErrUnknownType", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// schemaSet reads the embedded schemas as plain JSON (numbers kept as
// written) and follows the absolute $refs between them.
type schemaSet struct {
	docs map[string]map[string]any
}

func loadSchemas(t testing.TB) *schemaSet {
	t.Helper()
	ss := &schemaSet{docs: map[string]map[string]any{}}
	for _, n := range schemas.Names() {
		b, err := schemas.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var doc map[string]any
		if err := d.Decode(&doc); err != nil {
			t.Fatalf("schema %s: %v", n, err)
		}
		ss.docs[n] = doc
	}
	return ss
}

func (ss *schemaSet) doc(name string) map[string]any {
	d, ok := ss.docs[name]
	if !ok {
		panic("no embedded schema " + name)
	}
	return d
}

// resolve finds the schema an absolute $ref such as
// https://gantry.dev/schemas/defs.json#/$defs/name points at.
func (ss *schemaSet) resolve(ref string) map[string]any {
	file, frag, _ := strings.Cut(ref, "#")
	name, ok := strings.CutPrefix(file, schemas.Base)
	if !ok {
		panic("$ref " + ref + " is not under " + schemas.Base)
	}
	var cur any = ss.doc(name)
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, _ := cur.(map[string]any)
		if cur = m[tok]; cur == nil {
			panic("$ref " + ref + " points at nothing")
		}
	}
	return cur.(map[string]any)
}

// deref follows $ref, keeping the referring schema's own keywords (such as
// its description) over the target's.
func (ss *schemaSet) deref(s map[string]any) map[string]any {
	for {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		merged := map[string]any{}
		for k, v := range ss.resolve(ref) {
			merged[k] = v
		}
		for k, v := range s {
			if k != "$ref" {
				merged[k] = v
			}
		}
		s = merged
	}
}

// TestCatalogueDoc keeps docs/events.md equal to what the schemas say.
func TestCatalogueDoc(t *testing.T) {
	got := renderCatalogue(loadSchemas(t))
	if os.Getenv("GANTRY_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(docPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", docPath)
		return
	}
	want, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("%v; generate it with GANTRY_UPDATE_DOCS=1 go test -run TestCatalogueDoc .", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with the schemas; regenerate it with\n\tcd events && GANTRY_UPDATE_DOCS=1 go test -run TestCatalogueDoc .\nfirst difference: %s",
			filepath.Clean(docPath), firstDiff(want, got))
	}
}

func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d\n\thave: %s\n\twant: %s", i+1, x, y)
		}
	}
	return "none"
}

// envelopeMeaning explains the envelope attributes, which envelope.json does
// not describe.
var envelopeMeaning = map[string]string{
	"specversion":     "Always `1.0`.",
	"id":              "The event's deterministic ID (see [Event IDs](#event-ids)); also its `Nats-Msg-Id`.",
	"source":          "The publishing service, e.g. `/gantry/pipeline` or `/gantry/worker/<kind>`.",
	"type":            "One of the types below, e.g. `dev.gantry.action.succeeded`.",
	"subject":         "The run ID the event belongs to.",
	"time":            "When the fact happened, RFC 3339 in UTC.",
	"datacontenttype": "Always `application/json`.",
	"dataschema":      "The payload's schema, `https://gantry.dev/schemas/events/<type>.json`.",
	"data":            "The payload, validated against the type's schema.",
}

// renderCatalogue writes docs/events.md from the embedded schemas.
func renderCatalogue(ss *schemaSet) []byte {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Event catalogue\n\n")
	w("<!-- Code generated by events/catalogue_test.go from schemas/events/*.json and schemas/defs.json. DO NOT EDIT.\n")
	w("     Regenerate: cd events && GANTRY_UPDATE_DOCS=1 go test -run TestCatalogueDoc . -->\n\n")
	w("Every fact about a run is an event appended to the JetStream stream `%s`. ", events.StreamEvents)
	w("The log is the truth: the run table, the UI and the rollback target are folded from it. ")
	w("This catalogue lists every event type with its payload, generated from the JSON Schemas ")
	w("(draft 2020-12) in [`schemas/events/`](../schemas/events/) that every publisher and consumer validates against.\n\n")

	w("## Envelope\n\n")
	w("Events use the [CloudEvents 1.0](https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) ")
	w("structured JSON envelope ([`schemas/envelope.json`](../schemas/envelope.json)), so any CloudEvents tool ")
	w("and `nats sub '%s'` can read them. Trace context travels in the W3C `traceparent` header, not in the envelope.\n\n", events.SubjectEventsAll)
	env := ss.doc("envelope.json")
	envReq := map[string]bool{}
	for _, r := range asSlice(env["required"]) {
		envReq[r.(string)] = true
	}
	w("| Attribute | Required | Meaning |\n|---|---|---|\n")
	envProps, _ := env["properties"].(map[string]any)
	for _, name := range envelopeOrder(envProps) {
		meaning := envelopeMeaning[name]
		if d, ok := envProps[name].(map[string]any)["description"].(string); ok {
			meaning = d
		}
		w("| `%s` | %s | %s |\n", name, yesNo(envReq[name]), cell(meaning))
	}
	w("\n")

	w("## Subjects\n\n")
	w("A run's events go to the subject `%s`, one subject per run. ", events.RunSubject("<pipeline>", "<run>"))
	w("That makes folding a run a read of one subject, and lets appends use optimistic concurrency: ")
	w("a publisher sends `Nats-Expected-Last-Subject-Sequence` with the last sequence it folded, so two ")
	w("replicas of a decider can never fork a run. `%s` matches every run of a pipeline.\n\n", events.PipelineEvents("<pipeline>"))

	w("A deployment's events go to the stream `%s`, subject `%s`, one subject per deployment, ", events.StreamDeploys, events.DeploySubject("<group>", "<deployment>"))
	w("appended to with the same deduplication and optimistic concurrency; for them the envelope's `subject` is the ")
	w("deployment ID, and their IDs start with `deploy/<deployment>/` (`DeployID`, `DeployHostID`). ")
	w("See [deploy.md](deploy.md).\n\n")
	w("## Event IDs\n\n")
	w("Each event's `id` names its fact deterministically and is sent as the `Nats-Msg-Id` header, so a fact ")
	w("published twice (a redelivered message, a service that died after publishing and before acking) is ")
	w("stored once: JetStream drops the repeat within the stream's duplicate window. IDs are built by the ")
	w("helpers in [`events/ids.go`](../events/ids.go) (`RunID`, `StageID`, `TaskID`, `ActionID`); ")
	w("the pattern of each type is listed below, with `<attempt>` the stage's attempt for stage events and the ")
	w("action's attempt for action events. Action attempts keep counting across retries of their stage, so that ")
	w("the actions of a retried stage get new IDs. Run IDs are UUIDv7 derived from the trigger ID ")
	w("(`RunIDForTrigger`), so a redelivered trigger names the same run and run IDs sort by time.\n\n")

	w("## Validation\n\n")
	w("`Codec.Encode` validates an event before it is published and `Codec.Decode` validates it before it is ")
	w("acted on; both fail with `ErrInvalidEvent` and the JSON pointer of each violation, and a consumer moves ")
	w("what it cannot decode to the dead-letter stream `%s` with that reason. ", events.StreamDLQ)
	w("Payload objects refuse unknown properties, so a misspelt field is an error rather than a lost value. ")
	w("Optional fields are omitted rather than written empty, and the schemas refuse their empty forms ")
	w("(`\"\"`, `[]`, `{}`, `0`), so every payload has one encoding.\n\n")
	w("Every field is bounded, so that no input can grow an event past what the bus carries: strings by ")
	w("`maxLength` (names 64, reasons %d characters), lists by `maxItems` (stages %d; actions of a stage, ", events.MaxReason, events.MaxStages)
	w("inputs, outputs and test failures %d), variables maps by `maxProperties` (%d entries in the log, 100 where they enter: ", events.MaxItems, events.MaxVariables)
	w("trigger, pipeline file, buildspec) with values of at most %d characters, configuration maps %d entries ", events.MaxVariableValue, events.MaxConfiguration)
	w("of at most %d characters. On top of the field bounds, a whole encoded event is at most %d bytes ", events.MaxConfigurationValue, events.MaxEventBytes)
	w("(`events.MaxEventBytes`, below NATS's default 1 MiB `max_payload`): `Encode` and `Decode` refuse a larger ")
	w("one with `ErrTooLarge` and the size. Producers cut free text to fit (`events.TruncateReason`).\n\n")

	w("## Types\n\n| Type | Description |\n|---|---|\n")
	for _, typ := range events.Types {
		s := ss.doc("events/" + typ + ".json")
		w("| [`%s`](#%s) | %s |\n", typ, slug(typ), cell(str(s["description"])))
	}
	w("\nIn the field tables below, a nested field (`a.b`, `a[].b`) is required when its parent is present, ")
	w("and a linked type is one of the [value types](#value-types) that several fields share.\n\n")

	for _, typ := range events.Types {
		s := ss.doc("events/" + typ + ".json")
		w("## %s\n\n%s\n\n", typ, prose(str(s["description"])))
		w("- ID: `%s`\n", idPattern(typ))
		w("- Schema: [`schemas/events/%s.json`](../schemas/events/%s.json)\n\n", typ, typ)
		w("| Field | Type | Required | Description |\n|---|---|---|---|\n")
		for _, r := range ss.rows(s, "") {
			w("| `%s` | %s | %s | %s |\n", r.path, r.typ, yesNo(r.required), cell(r.description))
		}
		w("\n")
	}

	w("## Value types\n\n")
	w("Fields of these types share the constraints in [`schemas/defs.json`](../schemas/defs.json).\n\n")
	defs, _ := ss.doc("defs.json")["$defs"].(map[string]any)
	var values []map[string]any
	for _, d := range defs {
		d := d.(map[string]any)
		if _, ok := d["properties"]; !ok {
			values = append(values, d)
		}
	}
	sort.Slice(values, func(i, j int) bool { return str(values[i]["title"]) < str(values[j]["title"]) })
	for _, d := range values {
		w("### %s\n\n%s\n\n%s.\n\n", str(d["title"]), prose(str(d["description"])), upperFirst(ss.constraint(d)))
	}
	return []byte(b.String())
}

type row struct {
	path, typ, description string
	required               bool
}

// rows flattens an object schema's properties into table rows, nested
// objects and arrays of objects as dotted paths.
func (ss *schemaSet) rows(s map[string]any, prefix string) []row {
	s = ss.deref(s)
	props, _ := s["properties"].(map[string]any)
	required := map[string]bool{}
	for _, r := range asSlice(s["required"]) {
		required[r.(string)] = true
	}
	var out []row
	for _, name := range propertyOrder(s) {
		raw := props[name].(map[string]any)
		p := ss.deref(raw)
		path := prefix + name
		out = append(out, row{path: path, typ: ss.typeText(raw), description: str(p["description"]), required: required[name]})
		if _, ok := p["properties"]; ok {
			out = append(out, ss.rows(p, path+".")...)
		} else if items, ok := p["items"].(map[string]any); ok {
			if it := ss.deref(items); it["properties"] != nil {
				out = append(out, ss.rows(it, path+"[].")...)
			}
		}
	}
	return out
}

// propertyOrder lists an object's properties required first, each group in
// the order of the schema's required list and then by name.
func propertyOrder(s map[string]any) []string {
	props, _ := s["properties"].(map[string]any)
	var out []string
	req := map[string]bool{}
	for _, r := range asSlice(s["required"]) {
		if _, ok := props[r.(string)]; ok {
			out = append(out, r.(string))
			req[r.(string)] = true
		}
	}
	var rest []string
	for name := range props {
		if !req[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func envelopeOrder(props map[string]any) []string {
	order := []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data"}
	var out []string
	for _, n := range order {
		if _, ok := props[n]; ok {
			out = append(out, n)
		}
	}
	var rest []string
	for n := range props {
		if !slices.Contains(order, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// typeText is the Type column: a link to a value type, or the schema's type
// with its constraints.
func (ss *schemaSet) typeText(raw map[string]any) string {
	if ref, ok := raw["$ref"].(string); ok {
		target := ss.deref(ss.resolve(ref))
		if _, isObject := target["properties"]; !isObject {
			if title := str(target["title"]); title != "" {
				return fmt.Sprintf("[%s](#%s)", title, slug(title))
			}
		}
	}
	return ss.constraint(ss.deref(raw))
}

// constraint describes a schema's type and limits in words.
func (ss *schemaSet) constraint(s map[string]any) string {
	if e := asSlice(s["enum"]); e != nil {
		var vs []string
		for _, v := range e {
			if s, ok := v.(string); ok {
				vs = append(vs, "`"+s+"`")
			} else {
				vs = append(vs, "`"+mustJSON(v)+"`")
			}
		}
		return "one of " + strings.Join(vs, ", ")
	}
	types := schemaTypes(s)
	t := strings.Join(types, " or ")
	var limits []string
	num := func(k, op string) {
		if v, ok := s[k].(json.Number); ok {
			limits = append(limits, op+" "+v.String())
		}
	}
	switch t {
	case "string":
		if p := str(s["pattern"]); p != "" {
			limits = append(limits, "matching `"+p+"`")
		}
		if n, ok := s["minLength"].(json.Number); ok && n.String() != "0" {
			if n.String() == "1" {
				limits = append(limits, "not empty")
			} else {
				limits = append(limits, "at least "+n.String()+" characters")
			}
		}
		if n, ok := s["maxLength"].(json.Number); ok {
			limits = append(limits, "at most "+n.String()+" characters")
		}
	case "integer", "number":
		num("minimum", "≥")
		num("exclusiveMinimum", ">")
		num("maximum", "≤")
		num("exclusiveMaximum", "<")
	case "array":
		item := "values"
		if items, ok := s["items"].(map[string]any); ok {
			if it := ss.deref(items); it["properties"] != nil {
				item = "objects"
				if title := str(it["title"]); title != "" {
					item = title + " objects"
				}
			} else {
				item = ss.typeText(items)
			}
		}
		t = "array of " + item
		if n, ok := s["minItems"].(json.Number); ok && n.String() != "0" {
			limits = append(limits, "at least "+n.String())
		}
		if n, ok := s["maxItems"].(json.Number); ok {
			limits = append(limits, "at most "+n.String())
		}
	case "object":
		if s["properties"] != nil {
			if title := str(s["title"]); title != "" {
				t = "object (" + title + ")"
			}
			break
		}
		if key, v := mapValues(s); v != nil {
			t = "map from string to " + ss.constraint(ss.deref(v))
			if key != "" {
				limits = append(limits, "keys matching `"+key+"`")
			}
		}
		if n, ok := s["minProperties"].(json.Number); ok && n.String() != "0" {
			limits = append(limits, "at least "+n.String()+" entry")
		}
		if n, ok := s["maxProperties"].(json.Number); ok {
			limits = append(limits, "at most "+n.String()+" entries")
		}
	}
	if len(limits) > 0 {
		t += ", " + strings.Join(limits, ", ")
	}
	return t
}

func str(v any) string { s, _ := v.(string); return s }

// mapValues returns the key pattern and value schema of a map schema: an
// object with one patternProperties entry, or with an additionalProperties
// schema.
func mapValues(s map[string]any) (keyPattern string, values map[string]any) {
	if pp, ok := s["patternProperties"].(map[string]any); ok && len(pp) == 1 {
		for k, v := range pp {
			values, _ = v.(map[string]any)
			return k, values
		}
	}
	values, _ = s["additionalProperties"].(map[string]any)
	return "", values
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cell makes text safe in a markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(prose(s))
}

// prose escapes a schema description for markdown: outside `code`, <run> and
// the like would be read as HTML tags.
func prose(s string) string {
	var b strings.Builder
	code := false
	for _, r := range s {
		switch {
		case r == '`':
			code = !code
			b.WriteRune(r)
		case !code && r == '<':
			b.WriteString("&lt;")
		case !code && r == '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// slug is GitHub's heading anchor: lower case, spaces to '-', other
// punctuation dropped.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDeploymentRollbackNamesBoth: a rollback answer names the rollback
// deployment and its revision together, or neither.
func TestDeploymentRollbackNamesBoth(t *testing.T) {
	c := newCodec(t)
	good := samples()[events.TypeDeploymentRollback].(events.DeploymentRollback)
	for name, p := range map[string]events.DeploymentRollback{
		"without revision":            {Deployment: good.Deployment, Group: good.Group, RollbackDeployment: good.RollbackDeployment, Message: "m"},
		"without rollback deployment": {Deployment: good.Deployment, Group: good.Group, Revision: good.Revision, Message: "m"},
	} {
		e := sampleEvent(t, p)
		raw, err := json.Marshal(e.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Decode(raw); !errors.Is(err, events.ErrInvalidEvent) {
			t.Errorf("%s: Decode error = %v, want ErrInvalidEvent", name, err)
		}
	}
	skipped := events.DeploymentRollback{Deployment: good.Deployment, Group: good.Group, Message: "nothing to roll back to"}
	raw, err := json.Marshal(sampleEvent(t, skipped).Envelope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(raw); err != nil {
		t.Errorf("an answer without a rollback: %v", err)
	}
}
