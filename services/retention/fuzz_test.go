package retention

import (
	"fmt"
	"testing"
	"time"
)

// FuzzPlan builds runs, deployments and objects from the input and checks
// the rules that protect what must stay, whatever the mix: nothing of a run
// that is not finished, of the newest KeepRuns of its pipeline or of one
// that ended within KeepFor, and no revision of an in-progress or the
// latest succeeded deployment of any group.
func FuzzPlan(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(2), uint8(5))
	f.Add([]byte{0, 0, 0, 255, 255, 255, 7, 7, 7}, uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, keepRuns, keepDays uint8) {
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		p := Policy{KeepRuns: int(keepRuns % 8), KeepFor: time.Duration(keepDays%30) * 24 * time.Hour}
		var runs []Run
		var deps []Deployment
		var objects []string
		// EndSeq is a log sequence, so no two deployments share one; the
		// low bits keep generated ones apart.
		for i := 0; i+2 < len(data); i += 3 {
			a, b, c := data[i], data[i+1], data[i+2]
			pipeline := fmt.Sprintf("p%d", a%3)
			id := fmt.Sprintf("r%d", i/3)
			at := now.Add(-time.Duration(b) * 24 * time.Hour)
			r := Run{Pipeline: pipeline, ID: id, Done: c%4 != 0, Requested: at}
			if r.Done {
				r.Ended = at.Add(time.Hour)
			}
			runs = append(runs, r)
			objects = append(objects, pipeline+"/"+id+"/app", pipeline+"/"+id+"/logs/s/a/1.log")
			if c%3 == 0 {
				deps = append(deps, Deployment{Group: fmt.Sprintf("g%d", c%2), ID: "d" + id, InProgress: c%5 == 0,
					Succeeded: c%5 != 0 && c%2 == 0, Started: at, EndSeq: uint64(b)<<16 | uint64(i), RevisionKey: pipeline + "/" + id + "/app"})
			}
		}
		deleted := map[string]bool{}
		for _, d := range Plan(p, now, runs, deps, objects) {
			deleted[d.Key] = true
		}
		newer := func(r Run) int { // runs of the pipeline newer than r
			n := 0
			for _, o := range runs {
				if o.Pipeline == r.Pipeline && (o.Requested.After(r.Requested) || o.Requested.Equal(r.Requested) && o.ID > r.ID) {
					n++
				}
			}
			return n
		}
		for _, r := range runs {
			key := r.Pipeline + "/" + r.ID + "/app"
			if !deleted[key] && !deleted[r.Pipeline+"/"+r.ID+"/logs/s/a/1.log"] {
				continue
			}
			if !r.Done || newer(r) < p.KeepRuns || now.Sub(r.Ended) < p.KeepFor {
				t.Fatalf("deleted objects of %+v under %+v", r, p)
			}
		}
		best := map[string]Deployment{}
		for _, d := range deps {
			if d.InProgress && deleted[d.RevisionKey] {
				t.Fatalf("deleted the revision of in-progress %+v", d)
			}
			if b, ok := best[d.Group]; d.Succeeded && (!ok || d.EndSeq > b.EndSeq) {
				best[d.Group] = d
			}
		}
		for _, d := range best {
			if deleted[d.RevisionKey] {
				t.Fatalf("deleted the last known good revision %+v", d)
			}
		}
	})
}
