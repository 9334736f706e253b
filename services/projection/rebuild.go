package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
)

// Mismatch is one run whose live projection differs from the log's fold.
type Mismatch struct {
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

// Report is what Rebuild did.
type Report struct {
	Runs         int           `json:"runs"`
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

// Rebuild folds the whole log, compares every run with the live projection
// when verify is set, then throws the projection away and writes the rebuilt
// states.
func Rebuild(ctx context.Context, b *bus.Bus, verify bool) (Report, error) {
	start := time.Now()
	states, n, skipped, err := FoldAll(ctx, b)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Runs: len(states), Events: n, Skipped: skipped}
	rep.Duration = time.Since(start)
	if rep.Duration > 0 {
		rep.EventsPerSec = float64(n) / rep.Duration.Seconds()
	}
	kv, err := b.JetStream().KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return rep, fmt.Errorf("runs bucket: %w", err)
	}
	if verify {
		rep.Mismatches, err = compare(ctx, kv, states)
		if err != nil {
			return rep, err
		}
		rep.Verified = len(rep.Mismatches) == 0
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return rep, fmt.Errorf("list runs: %w", err)
	}
	for k := range keysOf(keys) {
		if err := kv.Purge(ctx, k); err != nil {
			return rep, fmt.Errorf("drop projection of %s: %w", k, err)
		}
	}
	for id, st := range states {
		v, err := json.Marshal(st)
		if err != nil {
			return rep, err
		}
		if _, err := kv.Put(ctx, id, v); err != nil {
			return rep, fmt.Errorf("write projection of %s: %w", id, err)
		}
	}
	rep.Written = true
	return rep, nil
}

func compare(ctx context.Context, kv jetstream.KeyValue, states map[string]run.State) ([]Mismatch, error) {
	var out []Mismatch
	live := map[string][]byte{}
	keys, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	for k := range keysOf(keys) {
		e, err := kv.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("read projection of %s: %w", k, err)
		}
		live[k] = e.Value()
	}
	for id, st := range states {
		want, err := json.Marshal(st)
		if err != nil {
			return nil, err
		}
		got, ok := live[id]
		switch {
		case !ok:
			out = append(out, Mismatch{Run: id, Reason: "missing from the live projection"})
		case !bytes.Equal(got, want):
			var g run.State
			_ = json.Unmarshal(got, &g)
			out = append(out, Mismatch{Run: id, Reason: fmt.Sprintf("live state differs from the log's fold (live at seq %d, log at seq %d)", g.LastSeq, st.LastSeq)})
		}
	}
	for id := range live {
		if _, ok := states[id]; !ok {
			out = append(out, Mismatch{Run: id, Reason: "in the live projection but not in the log"})
		}
	}
	slices.SortFunc(out, func(a, b Mismatch) int {
		if a.Run < b.Run {
			return -1
		}
		if a.Run > b.Run {
			return 1
		}
		return 0
	})
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
