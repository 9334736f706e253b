package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/retention"
)

// Against a real server: of three finished runs a month old, with the
// policy "newest 1 and one week", the newest keeps everything, the oldest
// loses its artifact and log, and the middle one keeps only the artifact
// the group's current deployment runs. The projections are written as the
// projector writes them (run.State, deploydecider.State).
func TestSweepKeepsTheDeployedRevision(t *testing.T) {
	b := natstest.Bus(t, natstest.Start(t).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	js := b.JetStream()
	now := time.Now().UTC()
	month := 30 * 24 * time.Hour
	runsKV, err := js.KeyValue(ctx, events.BucketRuns)
	if err != nil {
		t.Fatal(err)
	}
	depsKV, err := js.KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, events.BucketArtifacts)
	if err != nil {
		t.Fatal(err)
	}
	put := func(kv jetstream.KeyValue, key string, v any) {
		t.Helper()
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, raw); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"r1", "r2", "r3"} {
		at := now.Add(-month + time.Duration(i)*time.Hour)
		put(runsKV, id, run.State{Run: id, Pipeline: "hello", Phase: run.Succeeded, RequestedAt: at, EndedAt: at.Add(time.Minute)})
		for _, key := range []string{events.ArtifactKey("hello", events.ActionRef{Run: id, Stage: "Build", Action: "build", Attempt: 1}, "u1", "app"), events.LogKey("hello", id, "Build", "build", 1, "u1")} {
			if _, err := obs.PutBytes(ctx, key, bytes.Repeat([]byte("x"), 1000)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A run still going, older than all: untouched.
	put(runsKV, "r0", run.State{Run: "r0", Pipeline: "hello", Phase: run.Running, RequestedAt: now.Add(-2 * month)})
	if _, err := obs.PutBytes(ctx, events.ArtifactKey("hello", events.ActionRef{Run: "r0", Stage: "Build", Action: "build", Attempt: 1}, "u1", "app"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	deployed := events.ArtifactKey("hello", events.ActionRef{Run: "r2", Stage: "Build", Action: "build", Attempt: 1}, "u1", "app")
	put(depsKV, "d1", deploydecider.State{Created: events.DeploymentCreated{Deployment: "d1", Group: "prod",
		Revision: events.ArtifactRef{Name: "app", Key: deployed}}, Phase: deploydecider.Succeeded, Started: now.Add(-month), EndSeq: 7})

	s := &retention.Sweeper{Bus: b, Log: zerolog.Nop(), Policy: retention.Policy{KeepRuns: 1, KeepFor: 7 * 24 * time.Hour}}
	res, err := s.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Runs != 2 || res.Objects != 3 || res.Bytes != 3000 {
		t.Errorf("sweep result %+v, want 2 runs, 3 objects, 3000 bytes", res)
	}
	left := map[string]bool{}
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatal(err)
	}
	for _, info := range infos {
		left[info.Name] = true
	}
	want := []string{deployed, events.ArtifactKey("hello", events.ActionRef{Run: "r3", Stage: "Build", Action: "build", Attempt: 1}, "u1", "app"), events.LogKey("hello", "r3", "Build", "build", 1, "u1"),
		events.ArtifactKey("hello", events.ActionRef{Run: "r0", Stage: "Build", Action: "build", Attempt: 1}, "u1", "app")}
	var got []string
	for k := range left {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("left after the sweep:\n %q\nwant\n %q", got, want)
	}
	// Swept objects are gone, not just hidden: reading one fails.
	if _, err := obs.GetBytes(ctx, events.ArtifactKey("hello", events.ActionRef{Run: "r1", Stage: "Build", Action: "build", Attempt: 1}, "u1", "app")); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("read of a swept artifact: %v, want ErrObjectNotFound", err)
	}
	// A second sweep finds nothing more.
	if res, err := s.Sweep(ctx); err != nil || res.Objects != 0 {
		t.Errorf("second sweep: %+v, %v", res, err)
	}
}
