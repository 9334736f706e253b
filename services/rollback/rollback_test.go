package rollback

import (
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deploydecider"
)

func TestLastSucceeded(t *testing.T) {
	st := func(id string, phase deploydecider.Phase, endSeq, lastSeq uint64) deploydecider.State {
		return deploydecider.State{Created: events.DeploymentCreated{Deployment: id}, Phase: phase, EndSeq: endSeq, LastSeq: lastSeq}
	}
	cases := []struct {
		name   string
		states []deploydecider.State
		except string
		want   string // "" for none
	}{
		{name: "none", want: ""},
		{name: "only failures and stops", states: []deploydecider.State{
			st("a", deploydecider.Failed, 5, 5), st("b", deploydecider.Stopped, 9, 9), st("c", deploydecider.InProgress, 0, 12)}},
		{name: "the latest success", states: []deploydecider.State{
			st("a", deploydecider.Succeeded, 5, 5), st("b", deploydecider.Succeeded, 9, 9), st("c", deploydecider.Failed, 12, 12)}, want: "b"},
		// a's hosts kept appending after it ended: its last event is later
		// than b's, but b succeeded after a did.
		{name: "by the end event, not the last event", states: []deploydecider.State{
			st("a", deploydecider.Succeeded, 5, 30), st("b", deploydecider.Succeeded, 9, 10)}, want: "b"},
		{name: "leaving out the deployment being rolled back", states: []deploydecider.State{
			st("a", deploydecider.Succeeded, 5, 5), st("b", deploydecider.Succeeded, 9, 9)}, except: "b", want: "a"},
		{name: "a succeeded rollback counts", states: []deploydecider.State{
			st("a", deploydecider.Succeeded, 5, 5), st("b", deploydecider.Failed, 9, 9),
			{Created: events.DeploymentCreated{Deployment: "r", RollbackOf: "b"}, Phase: deploydecider.Succeeded, EndSeq: 15, LastSeq: 15}}, want: "r"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := lastSucceeded(c.states, c.except)
			switch {
			case got == nil && c.want != "":
				t.Fatalf("none, want %s", c.want)
			case got != nil && got.ID() != c.want:
				t.Fatalf("%s, want %q", got.ID(), c.want)
			}
		})
	}
}
