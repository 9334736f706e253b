package rollbackpolicy

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deploydecider"
)

const (
	ok      = deploydecider.Succeeded
	failed  = deploydecider.Failed
	stopped = deploydecider.Stopped
	running = deploydecider.InProgress
)

// dep is a folded deployment created at sequence created and ended at end.
func dep(id string, phase deploydecider.Phase, created, end uint64) deploydecider.State {
	return deploydecider.State{
		Created: events.DeploymentCreated{Deployment: id, Group: "web", Revision: events.ArtifactRef{Key: "shop/" + id + "/app"}},
		Phase:   phase, CreatedSeq: created, EndSeq: end, LastSeq: end,
	}
}

func with(s deploydecider.State, f func(*deploydecider.State)) deploydecider.State {
	f(&s)
	return s
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name      string
		history   []deploydecider.State
		of        string
		onFailure bool
		want      Action
		target    string // Deploy's target, or Answer's existing rollback
		message   string // a part of Message
	}{
		{name: "unknown deployment", history: []deploydecider.State{dep("a", ok, 1, 2)}, of: "x", onFailure: true},
		{name: "still in progress", history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", running, 3, 0)}, of: "b", onFailure: true},
		{name: "succeeded", history: []deploydecider.State{dep("a", ok, 1, 2)}, of: "a", onFailure: true},
		{name: "failure, group does not roll back on failure",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4)}, of: "b"},
		{name: "stopped without rollback",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", stopped, 3, 4)}, of: "b", onFailure: true},
		{name: "failure rolls back to the last known good",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4)}, of: "b", onFailure: true,
			want: Deploy, target: "a", message: "rolling back to shop/a/app"},
		{name: "stop with rollback rolls back whatever the failure setting",
			history: []deploydecider.State{dep("a", ok, 1, 2), with(dep("b", stopped, 3, 4), func(s *deploydecider.State) { s.Rollback = true })},
			of:      "b", want: Deploy, target: "a"},
		{name: "the success that ended last, not the one with the last event",
			history: []deploydecider.State{with(dep("a", ok, 1, 5), func(s *deploydecider.State) { s.LastSeq = 40 }), dep("b", ok, 6, 9), dep("c", failed, 10, 12)},
			of:      "c", onFailure: true, want: Deploy, target: "b"},
		{name: "a succeeded rollback is a good revision",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4),
				with(dep("r", ok, 5, 6), func(s *deploydecider.State) { s.Created.RollbackOf = "b" }), dep("c", failed, 7, 8)},
			of: "c", onFailure: true, want: Deploy, target: "r"},
		{name: "first deployment: nothing to roll back to",
			history: []deploydecider.State{dep("a", failed, 1, 2)}, of: "a", onFailure: true,
			want: Answer, message: "nothing to roll back to"},
		{name: "a failed rollback is not rolled back",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4),
				with(dep("r", failed, 5, 6), func(s *deploydecider.State) { s.Created.RollbackOf = "b" })},
			of: "r", onFailure: true, want: Answer, message: "not rolled back again"},
		{name: "answered already",
			history: []deploydecider.State{dep("a", ok, 1, 2),
				with(dep("b", failed, 3, 4), func(s *deploydecider.State) { s.RollbackInfo = &deploydecider.RollbackInfo{Message: "x"} })},
			of: "b", onFailure: true},
		{name: "the rollback exists (created before a crash): answer with it",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4),
				with(dep("rb-of-b", running, 5, 0), func(s *deploydecider.State) { s.Created.RollbackOf = "b" })},
			of: "b", onFailure: true, want: Answer, target: "rb-of-b", message: "rolling back to"},

		// The race of issue 7: never roll back over a newer deployment.
		{name: "a newer deployment succeeded before the failure was handled",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4), dep("c", ok, 5, 6)},
			of:      "b", onFailure: true, want: Answer, message: "deployment c of shop/c/app was created on web after this one"},
		{name: "a newer deployment is in progress",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 9), dep("c", running, 5, 0)},
			of:      "b", onFailure: true, want: Answer, message: "rolling back would undo it"},
		{name: "a newer deployment failed too: still not rolled back over",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4), dep("c", failed, 5, 6)},
			of:      "b", onFailure: true, want: Answer, message: "deployment c"},
		{name: "the newest of several newer deployments is named",
			history: []deploydecider.State{dep("a", ok, 1, 2), dep("b", failed, 3, 4), dep("d", ok, 9, 10), dep("c", ok, 5, 6)},
			of:      "b", onFailure: true, want: Answer, message: "deployment d"},
		{name: "a success that ended after the failure but was created before it is not newer",
			history: []deploydecider.State{dep("a", ok, 1, 8), dep("b", failed, 3, 4)},
			of:      "b", onFailure: true, want: Deploy, target: "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(Input{History: c.history, Deployment: c.of, OnFailure: c.onFailure, RollbackID: "rb-of-" + c.of})
			if d.Action != c.want {
				t.Fatalf("action %q (%s), want %q", d.Action, d.Message, c.want)
			}
			var got string
			switch {
			case d.Target != nil:
				got = d.Target.ID()
			case d.Rollback != nil:
				got = d.Rollback.ID()
			}
			if got != c.target {
				t.Errorf("target %q, want %q", got, c.target)
			}
			if !strings.Contains(d.Message, c.message) {
				t.Errorf("message %q, want it to contain %q", d.Message, c.message)
			}
		})
	}
}
