package conductor

import (
	"context"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events/natstest"
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
