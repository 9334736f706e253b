package projection

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
)

// failingStore fails the n-th Put, after calling before (which may cancel
// the rebuild's context).
type failingStore struct {
	jetstream.KeyValue
	puts, n int
	before  func()
}

func (f *failingStore) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	f.puts++
	if f.puts == f.n {
		f.before()
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return 0, errors.New("injected write failure")
	}
	return f.KeyValue.Put(ctx, key, value)
}

// A rebuild that fails half-way through its writes, by an error or by its
// context ending, leaves the runs bucket exactly as it was (a stale value,
// a key the log does not hold, a missing run); the old rebuild purged every
// key before writing. A rebuild that succeeds then verifies byte-equal.
func TestRebuildFailingMidwayKeepsTheOldProjection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"write error", false}, {"context cancelled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			b := natstest.Bus(t, natstest.Start(t).ClientURL())
			ctx, cancelAll := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancelAll()
			def := events.Definition{Name: "p", Stages: []events.StageDef{
				{Name: "one", Actions: []events.ActionDef{{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}}}}}
			var ids []string
			for i := range 4 {
				id := events.RunIDForTrigger(fmt.Sprint("t", i), time.Now().UnixMilli())
				e, err := events.New(events.RunID(id, "requested"), "/test", id, time.Now(), events.RunRequested{
					Pipeline: "p", Run: id, Definition: def, Trigger: events.Trigger{ID: id, Kind: "api"}})
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := b.Append(ctx, "p", e, nil); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			if _, err := Rebuild(ctx, b, false); err != nil {
				t.Fatal(err)
			}
			kv, err := b.JetStream().KeyValue(ctx, events.BucketRuns)
			if err != nil {
				t.Fatal(err)
			}
			// Damage the projection three ways.
			if _, err := kv.Put(ctx, ids[0], []byte(`{"stale":true}`)); err != nil {
				t.Fatal(err)
			}
			if err := kv.Purge(ctx, ids[1]); err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Put(ctx, "ghost", []byte(`{"ghost":true}`)); err != nil {
				t.Fatal(err)
			}
			before, err := snapshot(ctx, kv)
			if err != nil {
				t.Fatal(err)
			}

			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			before2 := func() {
				if tc.cancel {
					cancel()
				}
			}
			_, err = rebuild(rctx, b, false, func(kv jetstream.KeyValue) store {
				if kv.Bucket() != events.BucketRuns {
					return kv
				}
				return &failingStore{KeyValue: kv, n: 2, before: before2}
			})
			if err == nil {
				t.Fatal("rebuild with a failing write succeeded")
			}
			after, err := snapshot(ctx, kv)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(before, after, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Fatalf("a failed rebuild changed the projection:\nbefore %q\nafter  %q", keys(before), keys(after))
			}

			rep, err := Rebuild(ctx, b, true)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verified || len(rep.Mismatches) != 3 {
				t.Fatalf("verify of the damaged projection: %+v, want 3 mismatches", rep.Mismatches)
			}
			if rep, err = Rebuild(ctx, b, true); err != nil || !rep.Verified {
				t.Fatalf("verify after a rebuild: %+v, %v", rep.Mismatches, err)
			}
			if final, _ := snapshot(ctx, kv); len(final) != 4 || final["ghost"] != nil {
				t.Fatalf("rebuilt projection holds %q, want the 4 runs", keys(final))
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+string(v[:min(len(v), 20)]))
	}
	return out
}
