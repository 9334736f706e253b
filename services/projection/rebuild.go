package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
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
//
// Decoding (validation included) is most of the work, and each event
// decodes on its own, so batches are fetched, decoded on every core and
// then folded in log order: one goroutine fetches the next batch while the
// decoders work on this one and the fold takes the one before.
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
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	fetched := make(chan rawBatch, 2)
	decoded := make(chan decodedBatch, 2)
	wg.Go(func() { fetchLog(ctx, cons, last, fetched) })
	wg.Go(func() { decodeBatches(ctx, b.Codec(), fetched, decoded) })
	n, skipped := 0, 0
	for d := range decoded {
		if d.err != nil {
			return nil, n, skipped, d.err
		}
		for _, e := range d.evs {
			if e.ID == "" {
				skipped++
				continue
			}
			states[e.Subject] = run.EvolveOwned(states[e.Subject], e) // only this map holds them
			n++
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, n, skipped, err
	}
	for k, st := range states {
		if st.Run == "" {
			delete(states, k)
		}
	}
	return states, n, skipped, nil
}

// rawBatch is one fetch of the log: each message's data and sequence.
type rawBatch struct {
	data [][]byte
	seqs []uint64
	err  error
}

// decodedBatch is a rawBatch decoded, in the same order; an event with an
// empty ID did not decode.
type decodedBatch struct {
	evs []events.Event
	err error
}

// fetchLog sends the log up to sequence last in batches, then closes out.
func fetchLog(ctx context.Context, cons jetstream.Consumer, last uint64, out chan<- rawBatch) {
	defer close(out)
	send := func(rb rawBatch) bool {
		select {
		case out <- rb:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var seq uint64
	for seq < last {
		// Ask for no more than is left, so the last batch does not wait
		// out FetchMaxWait for messages that will never come.
		batch, err := cons.Fetch(min(1024, int(last-seq)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			send(rawBatch{err: fmt.Errorf("read event log: %w", err)})
			return
		}
		var rb rawBatch
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				send(rawBatch{err: err})
				return
			}
			seq = meta.Sequence.Stream
			rb.data = append(rb.data, m.Data())
			rb.seqs = append(rb.seqs, seq)
		}
		if err := batch.Error(); err != nil {
			send(rawBatch{err: fmt.Errorf("read event log: %w", err)})
			return
		}
		if len(rb.data) == 0 || !send(rb) {
			return
		}
	}
}

// decodeBatches decodes each batch on every core, keeping the order.
func decodeBatches(ctx context.Context, codec *events.Codec, in <-chan rawBatch, out chan<- decodedBatch) {
	defer close(out)
	workers := runtime.GOMAXPROCS(0)
	for rb := range in {
		d := decodedBatch{err: rb.err}
		if d.err == nil {
			d.evs = make([]events.Event, len(rb.data))
			chunk := (len(rb.data) + workers - 1) / workers
			var wg sync.WaitGroup
			for lo := 0; lo < len(rb.data); lo += chunk {
				hi := min(lo+chunk, len(rb.data))
				wg.Go(func() {
					for i := lo; i < hi; i++ {
						e, err := codec.Decode(rb.data[i])
						if err != nil {
							continue // counted as skipped; it sits in the DLQ
						}
						e.Seq = rb.seqs[i]
						d.evs[i] = e
					}
				})
			}
			wg.Wait()
		}
		select {
		case out <- d:
		case <-ctx.Done():
			return
		}
		if d.err != nil {
			return
		}
	}
}

// Rebuild folds the whole run log and the whole deployment log, compares
// every run and deployment with the live projections when verify is set,
// then swaps the rebuilt states in. The fold happens in memory, aside from
// the buckets, and the swap never empties a bucket first: it overwrites
// what changed and deletes what the logs no longer hold, and if any write
// fails (or ctx ends) it puts back what it had written, so a failed rebuild
// leaves both projections as it found them.
func Rebuild(ctx context.Context, b *bus.Bus, verify bool) (Report, error) {
	return rebuild(ctx, b, verify, func(kv jetstream.KeyValue) store { return kv })
}

// store is what the swap needs of a bucket; tests wrap it to inject
// failures.
type store interface {
	Bucket() string
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Purge(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	ListKeys(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyLister, error)
}

func rebuild(ctx context.Context, b *bus.Bus, verify bool, wrap func(jetstream.KeyValue) store) (Report, error) {
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
	rkv, err := js.KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return rep, fmt.Errorf("runs bucket: %w", err)
	}
	dkv, err := js.KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		return rep, fmt.Errorf("deployments bucket: %w", err)
	}
	runsKV, deploysKV := wrap(rkv), wrap(dkv)
	liveRuns, err := snapshot(ctx, runsKV)
	if err != nil {
		return rep, err
	}
	liveDeploys, err := snapshot(ctx, deploysKV)
	if err != nil {
		return rep, err
	}
	// Encode everything before writing anything: a state that cannot be
	// encoded or is too large to store fails the rebuild untouched.
	maxValue := int(b.Conn().MaxPayload()) - 4<<10
	newRuns, err := encodeAll(runs, maxValue)
	if err != nil {
		return rep, err
	}
	newDeploys, err := encodeAll(deploys, maxValue)
	if err != nil {
		return rep, err
	}
	if verify {
		rep.Mismatches = append(
			compare(liveRuns, newRuns, func(id, why string) Mismatch { return Mismatch{Run: id, Reason: why} }),
			compare(liveDeploys, newDeploys, func(id, why string) Mismatch { return Mismatch{Deployment: id, Reason: why} })...)
		rep.Verified = len(rep.Mismatches) == 0
	}
	var u undoLog
	if err := swap(ctx, runsKV, liveRuns, newRuns, &u); err != nil {
		return rep, u.rollback(ctx, err)
	}
	if err := swap(ctx, deploysKV, liveDeploys, newDeploys, &u); err != nil {
		return rep, u.rollback(ctx, err)
	}
	rep.Written = true
	return rep, nil
}

// snapshot reads every value of a bucket.
func snapshot(ctx context.Context, kv store) (map[string][]byte, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	live := map[string][]byte{}
	for k := range keysOf(keys) {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, fmt.Errorf("read projection of %s: %w", k, err)
		}
		live[k] = e.Value()
	}
	return live, nil
}

// encodeAll encodes the rebuilt states, refusing any over maxValue bytes.
func encodeAll[S any](states map[string]S, maxValue int) (map[string][]byte, error) {
	out := make(map[string][]byte, len(states))
	for id, st := range states {
		v, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("encode projection of %s: %w", id, err)
		}
		if len(v) > maxValue {
			return nil, fmt.Errorf("projection of %s is %d bytes, more than the %d a value may hold; nothing was written", id, len(v), maxValue)
		}
		out[id] = v
	}
	return out, nil
}

// undoLog records how to reverse each write of a swap, newest last.
type undoLog struct {
	steps []func(context.Context) error
}

// rollback reverses the recorded writes, newest first, and returns cause
// with what became of the projections. It runs even when ctx has ended:
// a cancelled rebuild must still not leave a half-written projection.
func (u *undoLog) rollback(ctx context.Context, cause error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		if err := u.steps[i](rctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("rebuild failed: %w; restoring the old projections also failed (run `gantry state rebuild` again): %w", cause, errors.Join(errs...))
	}
	return fmt.Errorf("rebuild failed, the old projections were kept: %w", cause)
}

// swap makes a bucket hold exactly want, given its live values: each key
// whose value changed is overwritten, each key want lacks is deleted, in
// key order, recording how to undo every write in u.
func swap(ctx context.Context, kv store, live, want map[string][]byte, u *undoLog) error {
	for _, id := range slices.Sorted(maps.Keys(want)) {
		old, had := live[id]
		if had && bytes.Equal(old, want[id]) {
			continue
		}
		if _, err := kv.Put(ctx, id, want[id]); err != nil {
			return fmt.Errorf("write projection of %s: %w", id, err)
		}
		if had {
			u.steps = append(u.steps, func(c context.Context) error {
				if _, err := kv.Put(c, id, old); err != nil {
					return fmt.Errorf("restore projection of %s: %w", id, err)
				}
				return nil
			})
		} else {
			u.steps = append(u.steps, func(c context.Context) error {
				if err := kv.Purge(c, id); err != nil {
					return fmt.Errorf("remove projection of %s: %w", id, err)
				}
				return nil
			})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if _, ok := want[id]; ok {
			continue
		}
		if err := kv.Purge(ctx, id); err != nil {
			return fmt.Errorf("drop projection of %s: %w", id, err)
		}
		old := live[id]
		u.steps = append(u.steps, func(c context.Context) error {
			if _, err := kv.Put(c, id, old); err != nil {
				return fmt.Errorf("restore projection of %s: %w", id, err)
			}
			return nil
		})
	}
	return nil
}

// compare lists what differs, byte for byte, between a bucket's live
// values and the states folded from the log.
func compare(live, want map[string][]byte, mismatch func(id, why string) Mismatch) []Mismatch {
	var out []Mismatch
	for _, id := range slices.Sorted(maps.Keys(want)) {
		got, ok := live[id]
		switch {
		case !ok:
			out = append(out, mismatch(id, "missing from the live projection"))
		case !bytes.Equal(got, want[id]):
			var g, w struct {
				LastSeq uint64 `json:"lastSeq"`
			}
			_ = json.Unmarshal(got, &g)
			_ = json.Unmarshal(want[id], &w)
			out = append(out, mismatch(id, fmt.Sprintf("live state differs from the log's fold (live at seq %d, log at seq %d)", g.LastSeq, w.LastSeq)))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if _, ok := want[id]; !ok {
			out = append(out, mismatch(id, "in the live projection but not in the log"))
		}
	}
	return out
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
