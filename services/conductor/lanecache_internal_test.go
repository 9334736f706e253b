package conductor

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// TestEmptyLaneIsCached: a pipeline whose lane log is empty (every PARALLEL
// pipeline that never had a transition disabled) is known after one read.
// Before, an empty lane was never cached, so every decision of every run
// read the lane again: 19 extra direct gets per 3-stage run in the
// load test.
func TestEmptyLaneIsCached(t *testing.T) {
	srv := natstest.Start(t)
	c, err := New(Options{Bus: natstest.Bus(t, srv.ClientURL()), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.lane(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	c.lanes.mu.Lock()
	_, known := c.lanes.m["shop"]
	c.lanes.mu.Unlock()
	if !known {
		t.Fatal("the empty lane of shop is not cached after a read")
	}
}

// TestLaneCurrent: a cached lane is current for a delivered event when
// every delivery since the lane was read reached this process and no lane
// event of the pipeline among them is missing from the cache.
func TestLaneCurrent(t *testing.T) {
	lc := laneCache{m: map[string]laneEntry{"shop": {tip: 10, at: consume.Position{N: 100, Epoch: 1}}}, noted: map[string]uint64{"shop": 10}}
	for _, tc := range []struct {
		name  string
		span  consume.Span
		noted uint64
		want  bool
	}{
		{"unbroken since before the read", consume.Span{Since: 90, Epoch: 1}, 10, true},
		{"unbroken from the first delivery after the read", consume.Span{Since: 101, Epoch: 1}, 10, true},
		{"delivery 101 went to another conductor", consume.Span{Since: 102, Epoch: 1}, 10, false},
		{"a lane event arrived since", consume.Span{Since: 90, Epoch: 1}, 11, false},
		{"the consumer was recreated", consume.Span{Since: 90, Epoch: 2}, 10, false},
	} {
		lc.noted["shop"] = tc.noted
		if _, got := lc.current("shop", tc.span); got != tc.want {
			t.Errorf("%s: current = %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, got := lc.current("other", consume.Span{Since: 1, Epoch: 1}); got {
		t.Error("a lane never read is current")
	}
}
