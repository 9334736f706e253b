package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
)

// RunSummary is a run in a list: what a table row shows.
type RunSummary struct {
	Run         string    `json:"run"`
	Pipeline    string    `json:"pipeline"`
	Revision    uint64    `json:"revision"`
	Phase       run.Phase `json:"phase"`
	Trigger     string    `json:"trigger"`
	Commit      string    `json:"commit,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Current     string    `json:"current,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	EndedAt     time.Time `json:"endedAt,omitzero"`
}

func summarize(s run.State) RunSummary {
	out := RunSummary{Run: s.Run, Pipeline: s.Pipeline, Revision: s.Revision, Phase: s.Phase, Trigger: s.Trigger.Kind,
		Commit: s.Trigger.Commit, Actor: s.Trigger.Actor, Reason: s.Reason,
		RequestedAt: s.RequestedAt, StartedAt: s.StartedAt, EndedAt: s.EndedAt}
	for _, st := range s.Stages {
		if st.Phase == run.Running || st.Phase == run.Failed {
			out.Current = st.Name
			break
		}
	}
	return out
}

// runIndex is the gateway's in-memory copy of the runs projection, kept
// up to date by a watch on the bucket: run summaries sorted by run ID
// (UUIDv7, so by time), so a page is a binary search and a short walk
// however many runs there are, with no bucket reads per request. It is a
// cache of a cache: a restart rebuilds it from the bucket.
type runIndex struct {
	mu     sync.RWMutex
	sorted []RunSummary // ascending run ID
	ready  chan struct{}
	once   sync.Once
}

func newRunIndex() *runIndex { return &runIndex{ready: make(chan struct{})} }

func (x *runIndex) cmp(a RunSummary, id string) int { return strings.Compare(a.Run, id) }

func (x *runIndex) put(s RunSummary) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i, found := slices.BinarySearchFunc(x.sorted, s.Run, x.cmp)
	if found {
		x.sorted[i] = s
		return
	}
	x.sorted = slices.Insert(x.sorted, i, s)
}

func (x *runIndex) remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if i, found := slices.BinarySearchFunc(x.sorted, id, x.cmp); found {
		x.sorted = slices.Delete(x.sorted, i, i+1)
	}
}

func (x *runIndex) markReady() { x.once.Do(func() { close(x.ready) }) }

// wait blocks until the initial load is done or ctx ends.
func (x *runIndex) wait(ctx context.Context) error {
	select {
	case <-x.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the runs index is still loading: %w", ctx.Err())
	}
}

// RunFilter selects runs.
type RunFilter struct {
	Pipeline string
	Phase    run.Phase
}

func (f RunFilter) match(s RunSummary) bool {
	return (f.Pipeline == "" || s.Pipeline == f.Pipeline) && (f.Phase == "" || s.Phase == f.Phase)
}

// page returns up to limit runs matching f, newest first, older than the
// run ID cursor (all when empty), and the cursor of the next page (empty
// at the end).
func (x *runIndex) page(f RunFilter, cursor string, limit int) ([]RunSummary, string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	end := len(x.sorted)
	if cursor != "" {
		end, _ = slices.BinarySearchFunc(x.sorted, cursor, x.cmp)
	}
	out := []RunSummary{}
	i := end - 1
	for ; i >= 0 && len(out) < limit; i-- {
		if f.match(x.sorted[i]) {
			out = append(out, x.sorted[i])
		}
	}
	// A next page exists if any older run matches.
	for ; i >= 0; i-- {
		if f.match(x.sorted[i]) {
			return out, out[len(out)-1].Run
		}
	}
	return out, ""
}

// latest returns the newest run of each pipeline.
func (x *runIndex) latest() map[string]RunSummary {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := map[string]RunSummary{}
	for i := len(x.sorted) - 1; i >= 0; i-- {
		s := x.sorted[i]
		if _, ok := out[s.Pipeline]; !ok {
			out[s.Pipeline] = s
		}
	}
	return out
}

// run watches the runs bucket until ctx ends.
func (x *runIndex) run(ctx context.Context, b *bus.Bus, log zerolog.Logger) error {
	kv, err := b.JetStream().KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return fmt.Errorf("runs bucket: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch runs bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				x.markReady() // the initial values are all in
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				x.remove(e.Key())
				continue
			}
			var s run.State
			if err := json.Unmarshal(e.Value(), &s); err != nil || s.Run == "" {
				log.Warn().Err(err).Str("run", e.Key()).Msg("runs projection entry does not decode; left out of lists")
				continue
			}
			x.put(summarize(s))
		}
	}
}
