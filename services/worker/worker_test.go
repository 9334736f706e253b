package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/worker"
)

// TestStaleDeliveryCannotReplaceAnArtifact is issue 7's stale worker: a
// worker holds a task, stalls (SIGSTOP past AckWait), another worker gets
// the same attempt and finishes it, then the first resumes and uploads its
// own build of the artifact. Here the second delivery is a copy of the
// task message, and the stalled worker is a handler held on a channel
// until the run has ended: deterministic, and the same race.
//
// The artifact the log names must still be in the store with the digest
// the log names (before, the stale upload replaced the object at the
// run's one key, and the stored artifact no longer matched its event), and
// the stale delivery must add nothing to the log.
func TestStaleDeliveryCannotReplaceAnArtifact(t *testing.T) {
	r := newRig(t)
	b, ctx := r.b, r.ctx
	const pipeline = "shop"
	runID := r.request(pipeline, events.ActionDef{Name: "compile", Type: "art", Pool: "default", RunOrder: 1, Outputs: []string{"app"}})

	// The task as the conductor dispatched it, and a second delivery of it.
	task := r.dispatched("art")
	if _, err := b.JetStream().Publish(ctx, task.Subject, task.Data); err != nil {
		t.Fatal(err)
	}

	// The first delivery to start stalls until the run has ended; each
	// builds different bytes, as real builds do (timestamps, paths).
	var calls atomic.Int32
	release, staleDone := make(chan struct{}), make(chan error, 1)
	handler := worker.HandlerFunc(func(ctx context.Context, task *worker.Task) (worker.Result, error) {
		n := calls.Add(1)
		if n == 1 {
			select {
			case <-release:
			case <-ctx.Done():
				return worker.Result{}, ctx.Err()
			}
		}
		res, err := store(ctx, task, fmt.Sprintf("built by delivery %d", n))
		if n == 1 {
			staleDone <- err
		}
		return res, err
	})
	w, err := worker.New(worker.Options{Bus: r.bus(), Log: zerolog.Nop(), Kind: "art",
		Concurrency: 2, Handler: handler, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r.goRun(w.Run)

	var st run.State
	for deadline := time.Now().Add(20 * time.Second); !st.Done(); time.Sleep(20 * time.Millisecond) {
		evs, err := b.ReadRun(ctx, pipeline, runID, 0)
		if err != nil {
			t.Fatal(err)
		}
		st = run.Fold(run.State{}, evs...)
		if time.Now().After(deadline) {
			t.Fatalf("run did not end: %+v", st)
		}
	}
	if st.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", st.Phase, st.Reason)
	}
	close(release)
	select {
	case err := <-staleDone:
		if !errors.Is(err, worker.ErrAttemptClosed) {
			t.Errorf("the stale delivery's publish: %v, want ErrAttemptClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stale delivery did not finish")
	}
	// Both deliveries are acked: nothing is left to redeliver.
	cons, err := b.JetStream().Consumer(ctx, events.StreamTasks, worker.ConsumerName("art", "default"))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task deliveries left: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
	}

	// The log names one artifact, and the store holds exactly that.
	evs, err := b.ReadRun(ctx, pipeline, runID, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stored []events.ArtifactRef
	var results int
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.ArtifactStored:
			stored = append(stored, p.Artifact)
		case events.ActionSucceeded:
			results++
			if len(p.Outputs) != 1 || len(stored) != 1 || p.Outputs[0] != stored[0] {
				t.Errorf("action.succeeded outputs %+v, artifact.stored %+v: want the same artifact", p.Outputs, stored)
			}
		case events.ActionFailed:
			t.Errorf("the stale delivery appended a failure: %s", p.Reason)
		}
	}
	if len(stored) != 1 || results != 1 {
		t.Fatalf("%d artifact.stored and %d action.succeeded, want one each", len(stored), results)
	}
	obs, err := artifact.OpenStore(ctx, b.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := obs.FetchAndUnpack(ctx, stored[0], filepath.Join(dst, "app")); err != nil {
		t.Fatalf("the artifact the log names (%s, sha256 %s): %v", stored[0].Key, stored[0].SHA256, err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "app", "app.txt"))
	if err != nil || !bytes.Equal(got, []byte("built by delivery 2")) {
		t.Errorf("the stored artifact holds %q (%v), want the finishing delivery's build", got, err)
	}
}

// store builds artifact app from content, as a build handler does.
func store(ctx context.Context, t *worker.Task, content string) (worker.Result, error) {
	dir := filepath.Join(t.Workspace, "out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return worker.Result{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte(content), 0o644); err != nil {
		return worker.Result{}, err
	}
	files, err := artifact.DirFiles(dir)
	if err != nil {
		return worker.Result{}, err
	}
	ref, err := t.Artifacts.PutDir(ctx, t.ArtifactKey("app"), "app", files)
	if err != nil {
		return worker.Result{}, err
	}
	if err := t.Publish(ctx, events.ArtifactStored{ActionRef: t.Ref, Artifact: ref}, "artifact/app"); err != nil {
		return worker.Result{}, err
	}
	return worker.Result{Outputs: []events.ArtifactRef{ref}}, nil
}
