package retention

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	policy := Policy{KeepRuns: 2, KeepFor: 7 * day}
	// run makes a finished run of pipeline p, requested and ended age ago.
	run := func(p, id string, age time.Duration) Run {
		return Run{Pipeline: p, ID: id, Done: true, Requested: now.Add(-age), Ended: now.Add(-age + time.Minute)}
	}
	objs := func(p string, ids ...string) []string {
		var out []string
		for _, id := range ids {
			out = append(out, p+"/"+id+"/app", p+"/"+id+"/logs/Build/build/1.log")
		}
		return out
	}
	dels := func(p string, ids ...string) []string {
		var out []string
		for _, k := range objs(p, ids...) {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	old4 := []Run{run("web", "r1", 40*day), run("web", "r2", 30*day), run("web", "r3", 20*day), run("web", "r4", 10*day)}
	for _, tc := range []struct {
		name    string
		policy  Policy
		runs    []Run
		deps    []Deployment
		objects []string
		want    []string
	}{
		{"nothing stored", policy, old4, nil, nil, nil},
		{"old runs beyond the newest two go", policy, old4, nil, objs("web", "r1", "r2", "r3", "r4"), dels("web", "r1", "r2")},
		{"a young run stays though not among the newest", policy,
			[]Run{run("web", "r1", 3*day), run("web", "r2", 2*day), run("web", "r3", day)}, nil,
			objs("web", "r1", "r2", "r3"), nil},
		{"a run still running stays", policy,
			append([]Run{{Pipeline: "web", ID: "r0", Requested: now.Add(-50 * day)}}, old4...), nil,
			objs("web", "r0", "r1"), dels("web", "r1")},
		{"each pipeline keeps its own newest", policy,
			append(old4, run("api", "a1", 90*day)), nil,
			append(objs("web", "r1"), objs("api", "a1")...), dels("web", "r1")},
		{"objects of unknown runs and odd keys stay", policy, old4, nil,
			append(objs("web", "r1", "unknown"), "loose", "web/r1", "/x/y"), dels("web", "r1")},
		{"keep-runs 0 leaves only the age rule", Policy{KeepFor: 15 * day}, old4, nil,
			objs("web", "r1", "r2", "r3", "r4"), dels("web", "r1", "r2", "r3")},
		{"the current and last known good revisions stay", policy, old4, []Deployment{
			{Group: "prod", ID: "d1", Succeeded: true, Started: now.Add(-40 * day), EndSeq: 10, RevisionKey: "web/r1/app"},
			{Group: "prod", ID: "d2", Succeeded: true, Started: now.Add(-30 * day), EndSeq: 20, RevisionKey: "web/r2/app"},
			{Group: "prod", ID: "d3", Succeeded: false, Started: now.Add(-29 * day), EndSeq: 30, RevisionKey: "web/r3/app"},
		}, objs("web", "r1", "r2"), []string{"web/r1/logs/Build/build/1.log", "web/r2/logs/Build/build/1.log"}},
		{"an older succeeded revision goes, the two newest stay", policy, old4, []Deployment{
			{Group: "prod", ID: "d0", Succeeded: true, Started: now.Add(-50 * day), EndSeq: 5, RevisionKey: "web/r1/app"},
			{Group: "prod", ID: "d1", Succeeded: true, Started: now.Add(-40 * day), EndSeq: 10, RevisionKey: "web/r2/app"},
			{Group: "prod", ID: "d2", Succeeded: true, Started: now.Add(-30 * day), EndSeq: 20, RevisionKey: "web/r3/app"},
		}, objs("web", "r1", "r2"), []string{"web/r1/app", "web/r1/logs/Build/build/1.log", "web/r2/logs/Build/build/1.log"}},
		{"an in-progress deployment's revision stays, in any group", policy, old4, []Deployment{
			{Group: "staging", ID: "s1", Succeeded: true, Started: now.Add(-day), EndSeq: 50, RevisionKey: "web/r3/app"},
			{Group: "staging", ID: "s0", InProgress: true, Started: now.Add(-2 * day), RevisionKey: "web/r1/app"},
			{Group: "prod", ID: "p1", Started: now.Add(-3 * day), RevisionKey: "web/r2/app"},
		}, objs("web", "r1", "r2"), []string{"web/r1/logs/Build/build/1.log", "web/r2/logs/Build/build/1.log"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range Plan(tc.policy, now, tc.runs, tc.deps, tc.objects) {
				if want := fmt.Sprintf("%s/%s/", d.Pipeline, d.Run); d.Key[:len(want)] != want {
					t.Errorf("deletion %+v names the wrong run", d)
				}
				got = append(got, d.Key)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Plan deletes\n %q\nwant\n %q", got, tc.want)
			}
		})
	}
}
