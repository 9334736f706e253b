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
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	// provisioning twice is harmless
	if err := b.Provision(context.Background(), bus.Config{}); err != nil {
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
}
