package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/lanes"
	"github.com/gantry-ci/gantry/services/source"
)

// ErrNotFound is returned by a Reader for a pipeline, run or deployment
// that does not exist; pages answer it with 404.
var ErrNotFound = errors.New("not found")

// Reader is everything the pages read. The gateway wires BusReader, or
// its own implementation if it keeps a faster projection.
type Reader interface {
	// Pipelines lists the applied pipelines, each with its latest run.
	Pipelines(ctx context.Context) ([]PipelineSummary, error)
	// Runs returns one page of a pipeline's runs, newest first, starting
	// after cursor (a run ID from a previous page's Next; "" for the first).
	Runs(ctx context.Context, pipeline string, limit int, cursor string) (RunsPage, error)
	// Run returns a run's folded state.
	Run(ctx context.Context, run string) (run.State, error)
	// Deployments lists deployments, newest first, of one group or of all
	// when group is "", at most limit.
	Deployments(ctx context.Context, group string, limit int) ([]deploydecider.State, error)
	// Deployment returns one folded deployment with its hosts' lifecycles.
	Deployment(ctx context.Context, id string) (deploydecider.State, error)
	// Stages lists a pipeline's stages with their transitions and the runs
	// in each or waiting for it (lanes.StagesOf).
	Stages(ctx context.Context, pipeline string) (lanes.Stages, error)
	// Hold says which stage a run waits to enter and why (a disabled
	// transition, another run in the stage), from the pipeline's lane;
	// false when it does not wait.
	Hold(ctx context.Context, st run.State) (lanes.Hold, bool)
}

// PipelineSummary is one row of the pipeline list.
type PipelineSummary struct {
	Name     string
	Revision uint64
	Stages   int
	// Latest is the newest run, nil if the pipeline never ran.
	Latest *run.State
	// Runs counts the runs still in the event log.
	Runs int
}

// RunsPage is one page of run history.
type RunsPage struct {
	Runs []run.State
	// Next is the cursor of the following page, "" on the last one.
	Next string
	// Total counts the pipeline's runs still in the event log.
	Total int
}

// BusReader reads straight from JetStream: definitions from the pipelines
// bucket, run lists from the subjects of the event stream (one per run, and
// run IDs sort by time), run states from the runs projection (folding the
// log where the projection has not caught up), deployments from theirs.
type BusReader struct {
	Bus *bus.Bus
}

var _ Reader = BusReader{}

// runIDs lists a pipeline's run IDs, newest first, from the event stream's
// subjects: one stream-info call, however many runs there are.
func (b BusReader) runIDs(ctx context.Context, pipeline string) ([]string, error) {
	return b.Bus.RunIDs(ctx, pipeline)
}

// state reads a run's projection, folding the log when the projection is
// missing (not yet written, or thrown away for a rebuild).
func (b BusReader) state(ctx context.Context, pipeline, id string) (run.State, error) {
	if kv, err := b.Bus.JetStream().KeyValue(ctx, events.BucketRuns); err == nil {
		if e, err := kv.Get(ctx, id); err == nil {
			var st run.State
			if json.Unmarshal(e.Value(), &st) == nil && st.Run != "" {
				return st, nil
			}
		}
	}
	evs, err := b.Bus.ReadRun(ctx, pipeline, id, 0)
	if err != nil {
		return run.State{}, fmt.Errorf("read run %s: %w", id, err)
	}
	if len(evs) == 0 {
		return run.State{}, fmt.Errorf("%w: run %q", ErrNotFound, id)
	}
	return run.Fold(run.State{}, evs...), nil
}

// Pipelines implements Reader.
func (b BusReader) Pipelines(ctx context.Context) ([]PipelineSummary, error) {
	kv, err := b.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return nil, fmt.Errorf("pipelines bucket: %w", err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	var names []string
	for k := range lister.Keys() {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]PipelineSummary, 0, len(names))
	for _, name := range names {
		e, err := kv.Get(ctx, name)
		if err != nil {
			continue // deleted since the listing
		}
		var d events.Definition
		if err := json.Unmarshal(e.Value(), &d); err != nil {
			return nil, fmt.Errorf("decode pipeline %s revision %d: %w", name, e.Revision(), err)
		}
		p := PipelineSummary{Name: name, Revision: e.Revision(), Stages: len(d.Stages)}
		ids, err := b.runIDs(ctx, name)
		if err != nil {
			return nil, err
		}
		p.Runs = len(ids)
		if len(ids) > 0 {
			if st, err := b.state(ctx, name, ids[0]); err == nil {
				p.Latest = &st
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Runs implements Reader.
func (b BusReader) Runs(ctx context.Context, pipeline string, limit int, cursor string) (RunsPage, error) {
	ids, err := b.runIDs(ctx, pipeline)
	if err != nil {
		return RunsPage{}, err
	}
	page := RunsPage{Total: len(ids)}
	start := 0
	if cursor != "" {
		// Newest first: the page starts at the first ID older than cursor.
		start, _ = slices.BinarySearchFunc(ids, cursor, func(id, c string) int { return strings.Compare(c, id) })
		if start < len(ids) && ids[start] == cursor {
			start++
		}
	}
	end := min(start+limit, len(ids))
	for _, id := range ids[start:end] {
		st, err := b.state(ctx, pipeline, id)
		if err != nil {
			return RunsPage{}, err
		}
		page.Runs = append(page.Runs, st)
	}
	if end < len(ids) && end > start {
		page.Next = ids[end-1]
	}
	return page, nil
}

// Run implements Reader. It folds the log, the truth, so the run page's
// first paint is never behind the events it then subscribes to.
func (b BusReader) Run(ctx context.Context, id string) (run.State, error) {
	p, err := b.Bus.FindRun(ctx, id)
	if errors.Is(err, bus.ErrNoRun) {
		return run.State{}, fmt.Errorf("%w: run %q", ErrNotFound, id)
	}
	if err != nil {
		return run.State{}, err
	}
	evs, err := b.Bus.ReadRun(ctx, p, id, 0)
	if err != nil {
		return run.State{}, fmt.Errorf("read run %s: %w", id, err)
	}
	return run.Fold(run.State{}, evs...), nil
}

// Stages implements Reader.
func (b BusReader) Stages(ctx context.Context, pipeline string) (lanes.Stages, error) {
	kv, err := b.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return lanes.Stages{}, fmt.Errorf("pipelines bucket: %w", err)
	}
	d, _, err := source.Pipelines{KV: kv}.Get(ctx, pipeline)
	if err != nil {
		return lanes.Stages{}, err
	}
	evs, err := b.Bus.ReadRun(ctx, pipeline, events.LaneToken, 0)
	if err != nil {
		return lanes.Stages{}, fmt.Errorf("read the lane of %s: %w", pipeline, err)
	}
	return lanes.StagesOf(d, lanes.Fold(lanes.State{}, evs...)), nil
}

// Hold implements Reader. A lane that cannot be read holds nothing the
// page can show; the run's own state still shows the stage not started.
func (b BusReader) Hold(ctx context.Context, st run.State) (lanes.Hold, bool) {
	if !lanes.MayWait(st) {
		return lanes.Hold{}, false
	}
	evs, err := b.Bus.ReadRun(ctx, st.Pipeline, events.LaneToken, 0)
	if err != nil {
		return lanes.Hold{}, false
	}
	l := lanes.Fold(lanes.State{}, evs...)
	return l.HoldOf(st.Run)
}

// Deployments implements Reader.
func (b BusReader) Deployments(ctx context.Context, group string, limit int) ([]deploydecider.State, error) {
	kv, err := b.Bus.JetStream().KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		return nil, fmt.Errorf("deployments bucket: %w", err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	var out []deploydecider.State
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var st deploydecider.State
		if json.Unmarshal(e.Value(), &st) != nil || (group != "" && st.Group() != group) {
			continue
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b deploydecider.State) int { return b.Started.Compare(a.Started) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Deployment implements Reader.
func (b BusReader) Deployment(ctx context.Context, id string) (deploydecider.State, error) {
	kv, err := b.Bus.JetStream().KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		return deploydecider.State{}, fmt.Errorf("deployments bucket: %w", err)
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return deploydecider.State{}, fmt.Errorf("%w: deployment %q", ErrNotFound, id)
	}
	if err != nil {
		return deploydecider.State{}, fmt.Errorf("read deployment %s: %w", id, err)
	}
	var st deploydecider.State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return deploydecider.State{}, fmt.Errorf("decode deployment %s: %w", id, err)
	}
	return st, nil
}
