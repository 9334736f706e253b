// Package retention removes the artifacts and archived logs of old runs
// from the object store, so that it does not grow forever (issue 7: about
// 4.8 MB per example run). Plan is the policy, a pure function of the runs,
// the deployments, the stored keys and the time; Sweeper is the thin shell
// that reads them from the bus and deletes what Plan names.
//
// What is never removed: anything of a run that is not finished, of the
// newest KeepRuns runs of each pipeline, or of a run that ended less than
// KeepFor ago; the revision of any deployment in progress, the newest
// deployment of each group and the two newest that succeeded (the current
// revision and the last known good one, which rollback and `gantry rollback`
// return to); and objects of runs the runs projection does not know. The
// event log is not touched: `state rebuild` folds it, and the events of a
// swept run still say what its artifacts were.
package retention

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Policy says what to keep. Both rules keep: a run's objects stay while
// either holds.
type Policy struct {
	// KeepRuns is how many of each pipeline's newest runs keep everything.
	KeepRuns int
	// KeepFor is how long after it ended a run keeps everything.
	KeepFor time.Duration
}

// Default policy: the last 20 runs of each pipeline and two weeks.
const (
	DefaultKeepRuns = 20
	DefaultKeepFor  = 14 * 24 * time.Hour
)

// Run is what the policy needs of a run.
type Run struct {
	Pipeline, ID string
	// Done is true once the run succeeded or failed.
	Done bool
	// Requested orders a pipeline's runs; Ended is when the run finished.
	Requested, Ended time.Time
}

// Deployment is what the policy needs of a deployment.
type Deployment struct {
	Group, ID string
	// InProgress is true until the deployment succeeded, failed or stopped.
	InProgress bool
	// Succeeded is true when it succeeded.
	Succeeded bool
	// Started orders a group's deployments; EndSeq (the log sequence of the
	// final event) orders the succeeded ones, as rollback does.
	Started time.Time
	EndSeq  uint64
	// RevisionKey is the object key of the bundle it deploys.
	RevisionKey string
}

// Deletion is one object to remove and the run it belongs to.
type Deletion struct {
	Key, Pipeline, Run string
}

// Plan returns the objects to delete, in key order. objects are the keys in
// the artifacts bucket; a key belongs to the run named by its first two
// segments, <pipeline>/<run>/...
func Plan(p Policy, now time.Time, runs []Run, deployments []Deployment, objects []string) []Deletion {
	sweep := sweptRuns(p, now, runs)
	protected := protectedKeys(deployments)
	var out []Deletion
	for _, key := range objects {
		pipeline, run, ok := owner(key)
		if !ok || !sweep[pipeline+"/"+run] || protected[key] {
			continue
		}
		out = append(out, Deletion{Key: key, Pipeline: pipeline, Run: run})
	}
	slices.SortFunc(out, func(a, b Deletion) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// sweptRuns names (pipeline/run) the runs whose objects may go.
func sweptRuns(p Policy, now time.Time, runs []Run) map[string]bool {
	byPipeline := map[string][]Run{}
	for _, r := range runs {
		byPipeline[r.Pipeline] = append(byPipeline[r.Pipeline], r)
	}
	out := map[string]bool{}
	for _, rs := range byPipeline {
		// Newest first; run IDs are UUIDv7, so they break ties by time too.
		slices.SortFunc(rs, func(a, b Run) int {
			return cmp.Or(b.Requested.Compare(a.Requested), strings.Compare(b.ID, a.ID))
		})
		for i, r := range rs {
			switch {
			case i < p.KeepRuns, !r.Done, r.Ended.IsZero(), now.Sub(r.Ended) < p.KeepFor:
				continue
			}
			out[r.Pipeline+"/"+r.ID] = true
		}
	}
	return out
}

// protectedKeys are the revisions deployments may still need.
func protectedKeys(deployments []Deployment) map[string]bool {
	byGroup := map[string][]Deployment{}
	for _, d := range deployments {
		byGroup[d.Group] = append(byGroup[d.Group], d)
	}
	out := map[string]bool{}
	for _, ds := range byGroup {
		for _, d := range ds {
			if d.InProgress {
				out[d.RevisionKey] = true
			}
		}
		newest := slices.MaxFunc(ds, func(a, b Deployment) int {
			return cmp.Or(a.Started.Compare(b.Started), strings.Compare(a.ID, b.ID))
		})
		out[newest.RevisionKey] = true
		var ok []Deployment
		for _, d := range ds {
			if d.Succeeded {
				ok = append(ok, d)
			}
		}
		slices.SortFunc(ok, func(a, b Deployment) int {
			return cmp.Or(cmp.Compare(b.EndSeq, a.EndSeq), strings.Compare(b.ID, a.ID))
		})
		for _, d := range ok[:min(2, len(ok))] {
			out[d.RevisionKey] = true
		}
	}
	delete(out, "")
	return out
}

// owner splits <pipeline>/<run>/... into its pipeline and run.
func owner(key string) (pipeline, run string, ok bool) {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}
