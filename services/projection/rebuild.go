package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
)

// Mismatch is one run or deployment whose live projection differs from the
// log's fold.
type Mismatch struct {
	Run        string `json:"run,omitempty"`
	Deployment string `json:"deployment,omitempty"`
	Reason     string `json:"reason"`
}

// Report is what Rebuild did.
type Report struct {
	Runs         int           `json:"runs"`
	Deployments  int           `json:"deployments"`
	Events       int           `json:"events"`
	Skipped      int           `json:"skipped"`
	Duration     time.Duration `json:"-"`
	EventsPerSec float64       `json:"eventsPerSec"`
	Mismatches   []Mismatch    `json:"mismatches,omitempty"`
	Verified     bool          `json:"verified"`
	Written      bool          `json:"written"`
}

// FoldAll reads the whole event log with an ordered consumer and folds every
// run. Skipped counts messages that do not decode (they sit in the DLQ).
func FoldAll(ctx context.Context, b *bus.Bus) (map[string]run.State, int, int, error) {
	js := b.JetStream()
	s, err := js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("event stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("event stream info: %w", err)
	}
	states := map[string]run.State{}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return states, 0, 0, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("read event log: %w", err)
	}
	codec := b.Codec()
	n, skipped := 0, 0
	var seq uint64
	for {
		// Ask for no more than is left, so the last batch does not wait
		// out FetchMaxWait for messages that will never come.
		want := min(1024, int(last-seq))
		batch, err := cons.Fetch(want, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, n, skipped, fmt.Errorf("read event log: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return nil, n, skipped, err
			}
			seq = meta.Sequence.Stream
			e, err := codec.Decode(m.Data())
			if err != nil {
				skipped++
				continue
			}
			e.Seq = seq
			key := e.Subject
			states[key] = run.Evolve(states[key], e)
			n++
		}
		if err := batch.Error(); err != nil {
			return nil, n, skipped, fmt.Errorf("read event log: %w", err)
		}
		if seq >= last || got == 0 {
			break
		}
	}
	for k, st := range states {
		if st.Run == "" {
			delete(states, k)
		}
	}
	return states, n, skipped, nil
}

// Rebuild folds the whole run log and the whole deployment log, compares
// every run and deployment with the live projections when verify is set,
// then throws the projections away and writes the rebuilt states.
func Rebuild(ctx context.Context, b *bus.Bus, verify bool) (Report, error) {
	start := time.Now()
	runs, n, skipped, err := FoldAll(ctx, b)
	if err != nil {
		return Report{}, err
	}
	deploys, dn, err := FoldAllDeploys(ctx, b)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Runs: len(runs), Deployments: len(deploys), Events: n + dn, Skipped: skipped}
	rep.Duration = time.Since(start)
	if rep.Duration > 0 {
		rep.EventsPerSec = float64(rep.Events) / rep.Duration.Seconds()
	}
	js := b.JetStream()
	runsKV, err := js.KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return rep, fmt.Errorf("runs bucket: %w", err)
	}
	deploysKV, err := js.KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		return rep, fmt.Errorf("deployments bucket: %w", err)
	}
	if verify {
		m1, err := compare(ctx, runsKV, runs, func(id, why string) Mismatch { return Mismatch{Run: id, Reason: why} })
		if err != nil {
			return rep, err
		}
		m2, err := compare(ctx, deploysKV, deploys, func(id, why string) Mismatch { return Mismatch{Deployment: id, Reason: why} })
		if err != nil {
			return rep, err
		}
		rep.Mismatches = append(m1, m2...)
		rep.Verified = len(rep.Mismatches) == 0
	}
	if err := rewrite(ctx, runsKV, runs); err != nil {
		return rep, err
	}
	if err := rewrite(ctx, deploysKV, deploys); err != nil {
		return rep, err
	}
	rep.Written = true
	return rep, nil
}

// rewrite throws a bucket's entries away and writes the rebuilt states.
func rewrite[S any](ctx context.Context, kv jetstream.KeyValue, states map[string]S) error {
	keys, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	for k := range keysOf(keys) {
		if err := kv.Purge(ctx, k); err != nil {
			return fmt.Errorf("drop projection of %s: %w", k, err)
		}
	}
	for id, st := range states {
		v, err := json.Marshal(st)
		if err != nil {
			return err
		}
		if _, err := kv.Put(ctx, id, v); err != nil {
			return fmt.Errorf("write projection of %s: %w", id, err)
		}
	}
	return nil
}

// compare lists what differs, byte for byte, between a bucket and the
// states folded from the log.
func compare[S any](ctx context.Context, kv jetstream.KeyValue, states map[string]S, mismatch func(id, why string) Mismatch) ([]Mismatch, error) {
	var out []Mismatch
	live := map[string][]byte{}
	keys, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	for k := range keysOf(keys) {
		e, err := kv.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read projection of %s: %w", k, err)
		}
		live[k] = e.Value()
	}
	for _, id := range slices.Sorted(maps.Keys(states)) {
		want, err := json.Marshal(states[id])
		if err != nil {
			return nil, err
		}
		got, ok := live[id]
		switch {
		case !ok:
			out = append(out, mismatch(id, "missing from the live projection"))
		case !bytes.Equal(got, want):
			var g struct {
				LastSeq uint64 `json:"lastSeq"`
			}
			_ = json.Unmarshal(got, &g)
			var w struct {
				LastSeq uint64 `json:"lastSeq"`
			}
			_ = json.Unmarshal(want, &w)
			out = append(out, mismatch(id, fmt.Sprintf("live state differs from the log's fold (live at seq %d, log at seq %d)", g.LastSeq, w.LastSeq)))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if _, ok := states[id]; !ok {
			out = append(out, mismatch(id, "in the live projection but not in the log"))
		}
	}
	return out, nil
}

// keysOf drains a key lister, which may be nil when the bucket is empty.
func keysOf(l jetstream.KeyLister) <-chan string {
	if l == nil {
		ch := make(chan string)
		close(ch)
		return ch
	}
	return l.Keys()
}
