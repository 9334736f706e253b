package gateway

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/events/run"
)

func ids(rs []RunSummary) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Run
	}
	return out
}

// TestIndexPage: pages walk newest first from the cursor; a cursor whose
// run was deleted still pages on from where it stood; the next cursor is
// empty exactly when no older run matches; puts out of order and repeated
// puts keep the index sorted and unique.
func TestIndexPage(t *testing.T) {
	x := newRunIndex()
	for _, i := range []int{5, 1, 9, 3, 7, 2, 8, 4, 6, 0, 5} {
		p := "a"
		if i%2 == 1 {
			p = "b"
		}
		x.put(RunSummary{Run: fmt.Sprintf("r%d", i), Pipeline: p, Phase: run.Succeeded})
	}
	if got := ids(x.sorted); !slices.Equal(got, []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"}) {
		t.Fatalf("sorted %v", got)
	}
	for _, c := range []struct {
		f          RunFilter
		cursor     string
		limit      int
		want       []string
		wantCursor string
	}{
		{RunFilter{}, "", 3, []string{"r9", "r8", "r7"}, "r7"},
		{RunFilter{}, "r7", 3, []string{"r6", "r5", "r4"}, "r4"},
		{RunFilter{}, "r3", 3, []string{"r2", "r1", "r0"}, ""},
		{RunFilter{}, "r0", 3, []string{}, ""},
		{RunFilter{}, "", 10, []string{"r9", "r8", "r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"}, ""},
		{RunFilter{Pipeline: "b"}, "", 2, []string{"r9", "r7"}, "r7"},
		{RunFilter{Pipeline: "b"}, "r3", 2, []string{"r1"}, ""},
		{RunFilter{Pipeline: "a"}, "r2", 5, []string{"r0"}, ""},
		{RunFilter{Phase: run.Failed}, "", 5, []string{}, ""},
		// r45 sits between r4 and r5, as a deleted run's cursor would.
		{RunFilter{}, "r45", 2, []string{"r4", "r3"}, "r3"},
	} {
		got, next := x.page(c.f, c.cursor, c.limit)
		if !slices.Equal(ids(got), c.want) || next != c.wantCursor {
			t.Errorf("page(%+v, %q, %d) = %v, %q; want %v, %q", c.f, c.cursor, c.limit, ids(got), next, c.want, c.wantCursor)
		}
	}
	x.remove("r9")
	x.remove("nope")
	if got, _ := x.page(RunFilter{}, "", 1); len(got) != 1 || got[0].Run != "r8" {
		t.Errorf("after removing r9: %v", ids(got))
	}
	if l := x.latest(); l["a"].Run != "r8" || l["b"].Run != "r7" {
		t.Errorf("latest %v", l)
	}
}

func TestActionOver(t *testing.T) {
	st := func(runPhase, actPhase run.Phase) run.State {
		return run.State{Phase: runPhase, Stages: []run.Stage{{Name: "B", Actions: []run.Action{{Name: "a", Phase: actPhase}}}}}
	}
	for _, c := range []struct {
		s        run.State
		action   string
		want     string
		wantOver bool
	}{
		{st(run.Running, run.Running), "a", "", false},
		{st(run.Running, run.NotStarted), "a", "", false},
		{st(run.Running, run.Succeeded), "a", "Succeeded", true},
		{st(run.Failed, run.Failed), "a", "Failed", true},
		{st(run.Failed, run.NotStarted), "a", "NotStarted", true},
		{st(run.Stopped, run.Abandoned), "a", "Abandoned", true},
		{st(run.Stopped, run.Running), "a", "Running", true},
		{st(run.Succeeded, run.Succeeded), "nope", "NotStarted", true},
	} {
		got, over := actionOver(c.s, "B", c.action)
		if got != c.want || over != c.wantOver {
			t.Errorf("actionOver(run %s, action %s %v) = %q %v, want %q %v", c.s.Phase, c.action, c.s.Stages[0].Actions[0].Phase, got, over, c.want, c.wantOver)
		}
	}
}
