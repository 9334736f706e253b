package run_test

import (
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

func TestFoldSuperseded(t *testing.T) {
	req := e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Revision: 1, Definition: def(), Trigger: events.Trigger{ID: "t", Kind: "manual"}})
	sup := events.RunSuperseded{Run: id, Stage: "A", By: "newer", Reason: "superseded by run newer"}
	cases := []struct {
		name  string
		evs   []events.Event
		phase run.Phase
	}{
		{"a waiting run ends Superseded", []events.Event{req, e(t, 2, events.RunStarted{Run: id}), e(t, 3, sup)}, run.Superseded},
		{"a stopping run too", []events.Event{req, e(t, 2, events.RunStarted{Run: id}),
			e(t, 3, events.RunStopping{Run: id, Reason: "r"}), e(t, 4, sup)}, run.Superseded},
		{"an ended run stays as it ended", []events.Event{req, e(t, 2, events.RunStarted{Run: id}),
			e(t, 3, events.RunFailed{Run: id, Reason: "r"}), e(t, 4, sup)}, run.Failed},
		{"a run not started is not superseded", []events.Event{req, e(t, 2, sup)}, run.Requested},
	}
	for _, c := range cases {
		s := run.Fold(run.State{}, c.evs...)
		if s.Phase != c.phase {
			t.Errorf("%s: phase %s, want %s", c.name, s.Phase, c.phase)
		}
		if c.phase == run.Superseded && (s.SupersededBy != "newer" || !s.Done() || s.RequestedSeq != 1) {
			t.Errorf("%s: by %q done %v requestedSeq %d", c.name, s.SupersededBy, s.Done(), s.RequestedSeq)
		}
	}
}

func TestFoldRollbackRunStartsWithTheTargetsArtifacts(t *testing.T) {
	app := events.ArtifactRef{Name: "out", Key: "p/target/A/x/1/u/out", SHA256: "ab", Size: 9}
	s := run.Fold(run.State{}, e(t, 1, events.RunRequested{Pipeline: "p", Run: id, Revision: 1, Definition: def(),
		Trigger:  events.Trigger{ID: "t", Kind: "manual"},
		Rollback: &events.Rollback{Run: "target", Stage: "A", Artifacts: []events.ArtifactRef{app}}}))
	if s.Kind != events.KindRollback || s.Rollback == nil || s.Rollback.Run != "target" || s.Artifacts["out"] != app {
		t.Fatalf("kind %q rollback %+v artifacts %v", s.Kind, s.Rollback, s.Artifacts)
	}
}
