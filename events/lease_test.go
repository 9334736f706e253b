package events_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
)

func TestLeaseBindsAResultToItsTask(t *testing.T) {
	key := []byte("conductor key")
	id1 := events.TaskID("01a2154b-ea92-7634-ac3c-6b12b7b33cb5", "Build", "compile", 1)
	id2 := events.TaskID("01a2154b-ea92-7634-ac3c-6b12b7b33cb5", "Build", "compile", 2)
	tok := events.LeaseToken(key, id1)
	if tok != events.LeaseToken(key, id1) {
		t.Fatal("the lease is not deterministic")
	}
	if tok == events.LeaseToken(key, id2) || tok == events.LeaseToken([]byte("other key"), id1) {
		t.Fatal("the lease does not depend on the attempt and the key")
	}
	h := events.LeaseHash(tok)
	if !events.LeaseHolds(tok, h) || events.LeaseHolds("", h) || events.LeaseHolds(h, h) {
		t.Fatal("LeaseHolds accepts the wrong lease or refuses the right one")
	}
	ref := events.ActionRef{Run: "01a2154b-ea92-7634-ac3c-6b12b7b33cb5", Stage: "Build", Action: "compile", Attempt: 1}
	real := events.ResultID(ref, "succeeded", tok)
	if real == events.ActionID(ref, "succeeded") || !strings.HasPrefix(real, events.ActionID(ref, "succeeded")+"/") {
		t.Fatalf("result ID %q must extend the deterministic ID with a lease tag", real)
	}
	if strings.Contains(real, tok) || strings.Contains(real, h) {
		t.Fatal("the result ID reveals the lease or its hash")
	}
}

func TestTheLogNeverCarriesATaskLease(t *testing.T) {
	c, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	run := "01a2154b-ea92-7634-ac3c-6b12b7b33cb5"
	task := events.Task{ID: events.TaskID(run, "Build", "compile", 1), Pipeline: "p", Run: run, Stage: "Build",
		Action: "compile", Attempt: 1, Kind: "build", Pool: "default"}
	task.Lease = events.LeaseToken([]byte("k"), task.ID)
	task.LeaseHash = events.LeaseHash(task.Lease)
	e, err := events.New(task.ID+"/dispatched", "/test", run, time.Now(), events.ActionDispatched{Task: task})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Encode(e)
	if err == nil {
		_, err = c.Decode(raw)
	}
	if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("a dispatched event carrying the lease: err %v, want it refused", err)
	}
}

// TestLeasesRemembersTheSameValues: Leases gives exactly LeaseToken and
// LeaseHash, first time and remembered, and for other keys other values.
func TestLeasesRemembersTheSameValues(t *testing.T) {
	key := []byte("k1")
	l := events.NewLeases(key)
	for range 2 {
		for _, id := range []string{"run/a/stage/b/action/c/attempt/1", "x", ""} {
			if got, want := l.Token(id), events.LeaseToken(key, id); got != want {
				t.Errorf("Token(%q) = %s, want %s", id, got, want)
			}
			if got, want := l.Hash(id), events.LeaseHash(events.LeaseToken(key, id)); got != want {
				t.Errorf("Hash(%q) = %s, want %s", id, got, want)
			}
		}
	}
	if events.NewLeases([]byte("k2")).Token("x") == l.Token("x") {
		t.Error("two keys give one lease")
	}
}
