package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/worker"
)

// TaskKind is the task kind of pipeline deploy actions.
const TaskKind = "deploy"

// ErrDeploymentFailed fails a deploy action whose deployment failed or was
// stopped.
var ErrDeploymentFailed = errors.New("deployment failed")

// Action is the worker handler of pipeline actions of type deploy:
// configuration.group (or deploymentGroup) names the deployment group, the
// first input artifact is the revision, and
// configuration.ignoreApplicationStopFailures "true" sets the deployment's
// flag of that name. It creates the deployment (its
// ID derived from the task, so a redelivered task waits for the same
// deployment), waits for its end and succeeds or fails with it. While
// another deployment is in progress on the group it waits for that one's
// end first: deployments of a group are serialised (see Create).
type Action struct {
	Bus *bus.Bus
}

var _ worker.Handler = (*Action)(nil)

// DeploymentIDForTask is the deployment a deploy task creates.
func DeploymentIDForTask(t events.Task) string {
	var ms int64
	if u, err := uuid.Parse(t.Run); err == nil && u.Version() == 7 {
		sec, nsec := u.Time().UnixTime()
		ms = sec*1000 + nsec/1e6
	}
	return events.RunIDForTrigger("pipeline/"+t.ID, ms)
}

// Handle runs one deploy task.
func (h *Action) Handle(ctx context.Context, t *worker.Task) (worker.Result, error) {
	group := t.Configuration["group"]
	if group == "" {
		group = t.Configuration["deploymentGroup"]
	}
	if group == "" {
		return worker.Result{}, fmt.Errorf("deploy action: configuration.group names no deployment group")
	}
	if len(t.Inputs) == 0 {
		return worker.Result{}, fmt.Errorf("deploy action: no input artifact to deploy")
	}
	id := DeploymentIDForTask(t.Task)
	d, err := h.Bus.Deploys(ctx)
	if err != nil {
		return worker.Result{}, err
	}
	// A group runs one deployment at a time: wait for the one in progress
	// (the worker heartbeats the task meanwhile), then try again.
	for {
		_, err = Create(ctx, h.Bus, Request{Group: group, Revision: t.Inputs[0], ID: id, Variables: t.Variables,
			IgnoreApplicationStopFailures: t.Configuration["ignoreApplicationStopFailures"] == "true",
			Trigger:                       &events.DeploymentTrigger{Pipeline: t.Pipeline, Run: t.Run, Stage: t.Stage, Action: t.Action, Attempt: t.Attempt}})
		var busy *BusyError
		if !errors.As(err, &busy) {
			break
		}
		t.Log.Printf("waiting for deployment %s, in progress on group %s", busy.Active, group)
		var active deploydecider.State
		if err := d.Watch(ctx, group, busy.Active, func(e events.Event) bool {
			active = deploydecider.Evolve(active, e)
			return !active.Phase.Ended()
		}); err != nil {
			return worker.Result{}, fmt.Errorf("wait for deployment %s on %s: %w", busy.Active, group, err)
		}
	}
	if err != nil && !errors.Is(err, bus.ErrConflict) {
		return worker.Result{}, err
	}
	t.Log.Printf("deployment %s of %s to group %s (gantry deploy show %s)", id, t.Inputs[0].Key, group, id)
	var st deploydecider.State
	err = d.Watch(ctx, group, id, func(e events.Event) bool {
		st = deploydecider.Evolve(st, e)
		switch p := e.Payload.(type) {
		case events.DeployHostSucceeded:
			t.Log.Printf("host %s succeeded", p.Host)
		case events.DeployHostFailed:
			t.Log.Printf("host %s failed: %s", p.Host, p.Reason)
		}
		return !st.Phase.Ended()
	})
	if err != nil {
		return worker.Result{}, err
	}
	if st.Phase != deploydecider.Succeeded {
		return worker.Result{}, fmt.Errorf("%w: %s %s: %s", ErrDeploymentFailed, id, st.Phase, st.Reason)
	}
	t.Log.Printf("deployment %s succeeded", id)
	return worker.Result{Variables: map[string]string{"DEPLOYMENT_ID": id}}, nil
}
