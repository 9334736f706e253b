package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
)

func newBus(t *testing.T) *bus.Bus {
	t.Helper()
	return newBusWith(t, bus.Config{})
}

func newBusWith(t *testing.T, cfg bus.Config) *bus.Bus {
	t.Helper()
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	// provisioning again is harmless, and applies cfg
	if err := b.Provision(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return b
}

const runID = "01a2154b-ea92-7634-ac3c-6b12b7b33cb5"

func started(t *testing.T) events.Event {
	t.Helper()
	e, err := events.New(events.RunID(runID, "started"), "/test", runID, time.Now(), events.RunStarted{Run: runID})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAppendDeduplicatesAndGuardsTheRun(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	zero := uint64(0)
	seq, dup, err := b.Append(ctx, "p", started(t), &zero)
	if err != nil || dup || seq == 0 {
		t.Fatalf("first append: %d %v %v", seq, dup, err)
	}
	// The same event again: dropped by the duplicate window, original sequence.
	again, dup, err := b.Append(ctx, "p", started(t), nil)
	if err != nil || !dup || again != seq {
		t.Fatalf("repeat: %d %v %v", again, dup, err)
	}
	// A decision made on a stale view of the run is refused.
	other, _ := events.New(events.RunID(runID, "succeeded"), "/test", runID, time.Now(), events.RunSucceeded{Run: runID})
	if _, _, err := b.Append(ctx, "p", other, &zero); !errors.Is(err, bus.ErrConflict) {
		t.Fatalf("stale append: %v, want ErrConflict", err)
	}
	// An invalid event is never published.
	bad := started(t)
	bad.Data = []byte(`{"run": 7}`)
	if _, _, err := b.Append(ctx, "p", bad, nil); !errors.Is(err, events.ErrInvalidEvent) {
		t.Fatalf("invalid append: %v", err)
	}
	evs, err := b.ReadRun(ctx, "p", runID, 0)
	if err != nil || len(evs) != 1 || evs[0].Seq != seq {
		t.Fatalf("read: %v %v", evs, err)
	}
	if p, err := b.FindRun(ctx, runID); err != nil || p != "p" {
		t.Fatalf("find: %q %v", p, err)
	}
	if _, err := b.FindRun(ctx, "nope"); !errors.Is(err, bus.ErrNoRun) {
		t.Fatalf("find missing: %v", err)
	}
	if next, ok, err := b.NextSeq(ctx, "p", runID, 0); err != nil || !ok || next != seq {
		t.Fatalf("next: %d %v %v", next, ok, err)
	}
	if _, ok, err := b.NextSeq(ctx, "p", runID, seq); err != nil || ok {
		t.Fatalf("next after the last: %v %v", ok, err)
	}
	if last, err := b.RunLastSeq(ctx, "p", runID); err != nil || last != seq {
		t.Fatalf("run's last sequence: %d %v, want %d", last, err, seq)
	}
	if last, err := b.RunLastSeq(ctx, "p", "nope"); err != nil || last != 0 {
		t.Fatalf("a run without events: last sequence %d %v, want 0", last, err)
	}
}

func chainOf(t *testing.T) []events.Event {
	t.Helper()
	var out []events.Event
	for _, st := range []string{"A", "B"} {
		e, err := events.New(events.StageID(runID, st, 1, "started"), "/test", runID, time.Now(),
			events.StageStarted{Run: runID, Stage: st, Attempt: 1})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// A chain is appended whole right after the expected sequence, or not at
// all: in one atomic batch, or event by event each expecting the last.
func TestAppendChain(t *testing.T) {
	for _, atomic := range []bool{false, true} {
		t.Run(map[bool]string{false: "one by one", true: "atomic batch"}[atomic], func(t *testing.T) {
			b := newBusWith(t, bus.Config{AtomicBatches: atomic})
			if b.Atomic() != atomic {
				t.Fatalf("atomic batches %v, want %v", b.Atomic(), atomic)
			}
			testAppendChain(t, b)
		})
	}
}

func testAppendChain(t *testing.T, b *bus.Bus) {
	ctx := context.Background()
	zero := uint64(0)
	first, _, err := b.Append(ctx, "p", started(t), &zero)
	if err != nil {
		t.Fatal(err)
	}
	// Stale: expects an empty run.
	if seqs, err := b.AppendChain(ctx, "p", chainOf(t), 0); !errors.Is(err, bus.ErrConflict) || len(seqs) != 0 {
		t.Fatalf("stale chain: %v %v", seqs, err)
	}
	if evs, _ := b.ReadRun(ctx, "p", runID, 0); len(evs) != 1 {
		t.Fatalf("a refused chain left %d events", len(evs))
	}
	seqs, err := b.AppendChain(ctx, "p", chainOf(t), first)
	if err != nil || len(seqs) != 2 || seqs[0] != first+1 || seqs[1] != first+2 {
		t.Fatalf("chain: %v %v", seqs, err)
	}
	// The same chain again is a duplicate: refused as stale.
	if _, err := b.AppendChain(ctx, "p", chainOf(t), seqs[1]); !errors.Is(err, bus.ErrConflict) {
		t.Fatalf("repeated chain: %v", err)
	}
	evs, _ := b.ReadRun(ctx, "p", runID, 0)
	if len(evs) != 3 {
		t.Fatalf("log holds %d events, want 3", len(evs))
	}
}

// RunIDs lists runs newest first and never the pipeline's lane subject.
func TestRunIDsLeavesOutTheLane(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	older, newer := "01a2154b-ea92-7634-ac3c-6b12b7b33cb5", "01a2154c-0000-7634-ac3c-6b12b7b33cb5"
	for _, id := range []string{older, newer} {
		e, err := events.New(events.RunID(id, "started"), "/test", id, time.Now(), events.RunStarted{Run: id})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Append(ctx, "p", e, nil); err != nil {
			t.Fatal(err)
		}
	}
	lane, err := events.New("lane/p/x", "/test", events.LaneToken, time.Now(), events.LaneLeft{Pipeline: "p", Run: older, Stage: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(ctx, "p", lane, nil); err != nil {
		t.Fatal(err)
	}
	ids, err := b.RunIDs(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] != newer || ids[1] != older {
		t.Fatalf("RunIDs = %v, want [%s %s]", ids, newer, older)
	}
}
