// Package rollbackpolicy is the pure rule of automatic rollback: given every
// deployment of a group, folded from the group's log, and the one that just
// ended, it says whether to roll back and to what. It does no I/O; the
// rollback service reads the group, asks Decide, and appends the created
// event of the rollback expecting the group's tip, so the decision still
// holds when it lands.
//
// The rule that matters most: a rollback never undoes a newer deployment.
// A deployment that fails after another one was created in its group (the
// rollback service lagging, a redelivery, a deployment stopped and replaced)
// is answered, not rolled back: the newer deployment is what the group is
// meant to run.
package rollbackpolicy

import (
	"fmt"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deploydecider"
)

// Action is what the rollback service does.
type Action string

const (
	// Ignore: the deployment asks for no rollback (it succeeded, its group
	// does not roll back on failure, it was stopped without rollback) or it
	// has been answered already. Nothing is appended.
	Ignore Action = ""
	// Answer: no rollback; Message, recorded on the deployment, says why.
	// With Rollback set, that deployment already is this one's rollback.
	Answer Action = "answer"
	// Deploy: create a deployment of Target's revision, rolling back the
	// failed one.
	Deploy Action = "deploy"
)

// Input is the group's history and the question.
type Input struct {
	// History is every deployment of the group, in any order.
	History []deploydecider.State
	// Deployment is the one that ended.
	Deployment string
	// OnFailure: the group rolls back automatically when a deployment
	// fails (autoRollback DEPLOYMENT_FAILURE). A stop asks for a rollback
	// itself (deployment.stopped's rollback flag, set from the group's
	// DEPLOYMENT_STOP_ON_ALARM or DEPLOYMENT_STOP_ON_REQUEST).
	OnFailure bool
	// RollbackID is the ID the rollback of Deployment gets; a deployment of
	// that ID in History means the rollback was created already.
	RollbackID string
}

// Decision is the policy's answer.
type Decision struct {
	Action Action
	// Target is the deployment whose revision to deploy (Deploy).
	Target *deploydecider.State
	// Rollback is the rollback that exists already (Answer).
	Rollback *deploydecider.State
	// Message explains the decision; recorded with Answer.
	Message string
}

// Decide applies the policy. It is pure and total: any history, however
// inconsistent, gets a decision.
func Decide(in Input) Decision {
	var failed *deploydecider.State
	for i := range in.History {
		if in.History[i].ID() == in.Deployment && in.History[i].Phase != "" {
			failed = &in.History[i]
			break
		}
	}
	if failed == nil {
		return Decision{}
	}
	switch {
	case failed.Phase == deploydecider.Failed && in.OnFailure:
	case failed.Phase == deploydecider.Stopped && failed.Rollback:
	default:
		return Decision{}
	}
	if failed.RollbackInfo != nil {
		return Decision{}
	}
	group := failed.Group()
	if in.RollbackID != "" && in.RollbackID != failed.ID() {
		for i := range in.History {
			if r := &in.History[i]; r.ID() == in.RollbackID && r.Phase != "" {
				return Decision{Action: Answer, Rollback: r, Message: RolledBackTo(r.Created, group)}
			}
		}
	}
	if failed.Created.RollbackOf != "" {
		return Decision{Action: Answer, Message: fmt.Sprintf(
			"this deployment rolled back %s and failed; a failed rollback is not rolled back again: fix the revision, or roll back by hand with `gantry rollback --group %s --to DEPLOYMENT`",
			failed.Created.RollbackOf, group)}
	}
	if n := newest(in.History, failed); n != nil {
		return Decision{Action: Answer, Message: fmt.Sprintf(
			"not rolled back: deployment %s of %s was created on %s after this one; rolling back would undo it",
			n.ID(), n.Created.Revision.Key, group)}
	}
	t := lastKnownGood(in.History, failed)
	if t == nil {
		return Decision{Action: Answer, Message: fmt.Sprintf("nothing to roll back to: no earlier deployment succeeded on %s", group)}
	}
	return Decision{Action: Deploy, Target: t, Message: RolledBackTo(t.Created, group)}
}

// RolledBackTo is the answer recorded on a deployment that was rolled back.
func RolledBackTo(c events.DeploymentCreated, group string) string {
	return fmt.Sprintf("rolling back to %s, the last revision that succeeded on %s", c.Revision.Key, group)
}

// newest returns the latest deployment created after failed, or nil.
func newest(history []deploydecider.State, failed *deploydecider.State) *deploydecider.State {
	var n *deploydecider.State
	for i := range history {
		s := &history[i]
		if s.Phase == "" || s.ID() == failed.ID() || s.CreatedSeq <= failed.CreatedSeq {
			continue
		}
		if n == nil || s.CreatedSeq > n.CreatedSeq {
			n = s
		}
	}
	return n
}

// lastKnownGood returns, among deployments created before failed, the one
// whose succeeded event is latest in the log (not the one with the latest
// event: hosts' events may follow a deployment's end), or nil.
func lastKnownGood(history []deploydecider.State, failed *deploydecider.State) *deploydecider.State {
	var best *deploydecider.State
	for i := range history {
		s := &history[i]
		if s.Phase != deploydecider.Succeeded || s.ID() == failed.ID() || s.CreatedSeq >= failed.CreatedSeq {
			continue
		}
		// Ties (impossible in one log) break on creation, so the answer
		// never depends on the history's order.
		if best == nil || s.EndSeq > best.EndSeq || (s.EndSeq == best.EndSeq && s.CreatedSeq > best.CreatedSeq) {
			best = s
		}
	}
	return best
}
