package conductor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/worker"
)

// deploySeen is what a Deploy action attempt read: its input's reference
// and bytes, by run.
type deploySeen struct {
	ref  events.ArtifactRef
	body []byte
}

// A stage rollback run re-runs Deploy with an earlier run's artifact: the
// same object key and digest, the same bytes. onFailure ROLLBACK starts one
// when Deploy fails; gantry run rollback starts one on request.
func TestStageRollbackReusesArtifacts(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	c, err := conductor.New(conductor.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, c.Run)
	var mu sync.Mutex
	seen := map[string]deploySeen{}
	w, err := worker.New(worker.Options{Bus: newBus(t, srv.ClientURL()), Log: zerolog.Nop(), Kind: "noop", Concurrency: 4,
		Handler: worker.HandlerFunc(func(ctx context.Context, tk *worker.Task) (worker.Result, error) {
			switch tk.Stage {
			case "Build":
				// Every build is different bytes: the run's own version.
				body := "app built by run " + tk.Run + " version " + tk.Variables["VERSION"]
				obj, err := tk.Artifacts.Put(ctx, tk.ArtifactKey("app"), strings.NewReader(body))
				if err != nil {
					return worker.Result{}, err
				}
				return worker.Result{Outputs: []events.ArtifactRef{{Name: "app", Key: obj.Key, SHA256: obj.SHA256, Size: obj.Size}}}, nil
			case "Deploy":
				var buf bytes.Buffer
				if err := tk.Artifacts.Fetch(ctx, tk.Inputs[0], &buf); err != nil {
					return worker.Result{}, err
				}
				mu.Lock()
				seen[tk.Run] = deploySeen{ref: tk.Inputs[0], body: buf.Bytes()}
				mu.Unlock()
				if tk.Variables["VERSION"] == "2-broken" {
					return worker.Result{}, errors.New("health check failed after deploying version 2-broken")
				}
			}
			return worker.Result{}, nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, &wg, w.Run)

	def := events.Definition{Name: "shop", ExecutionMode: events.ModeSuperseded, Stages: []events.StageDef{
		{Name: "Build", Actions: []events.ActionDef{{Name: "compile", Type: "noop", Pool: "default", RunOrder: 1, Outputs: []string{"app"}}}},
		{Name: "Deploy", OnFailure: &events.OnFailure{Result: events.OnFailureRollback},
			Actions: []events.ActionDef{{Name: "install", Type: "noop", Pool: "default", RunOrder: 1, Inputs: []string{"app"}}}},
	}}
	startRun := func(name, version string) string {
		id := events.RunIDForTrigger(name, time.Now().UnixMilli())
		e, err := events.New(events.RunID(id, "requested"), "/test", id, time.Now(), events.RunRequested{
			Pipeline: def.Name, Run: id, Revision: 1, Definition: def, Variables: map[string]string{"VERSION": version},
			Trigger: events.Trigger{ID: name, Kind: "manual", Commit: "c0ffee" + version[:1]}})
		if err != nil {
			t.Fatal(err)
		}
		zero := uint64(0)
		if _, _, err := b.Append(ctx, def.Name, e, &zero); err != nil {
			t.Fatal(err)
		}
		return id
	}
	good := startRun("good", "1")
	if st := waitDone(t, b, def.Name, good, 30*time.Second); st.Phase != run.Succeeded {
		t.Fatalf("run 1: %s %s", st.Phase, st.Reason)
	}
	goodState := waitDone(t, b, def.Name, good, time.Second)
	goodApp := goodState.Artifacts["app"]

	// Run 2 builds version 2, whose Deploy fails: onFailure ROLLBACK
	// starts a rollback run of Deploy with run 1's artifact and variables.
	bad := startRun("bad", "2-broken")
	if st := waitDone(t, b, def.Name, bad, 30*time.Second); st.Phase != run.Failed {
		t.Fatalf("run 2: %s, want Failed", st.Phase)
	}
	rb := findRollback(t, b, def.Name, bad)
	st := waitDone(t, b, def.Name, rb, 30*time.Second)
	if st.Phase != run.Succeeded || st.Kind != events.KindRollback || st.Rollback.Run != good || st.Rollback.Cause != bad {
		t.Fatalf("rollback run: phase %s kind %q rollback %+v", st.Phase, st.Kind, st.Rollback)
	}
	if len(st.Stages) != 1 || st.Stages[0].Name != "Deploy" || st.Trigger.Commit != goodState.Trigger.Commit {
		t.Fatalf("rollback run stages %v commit %q: want only Deploy at commit %q", st.Stages, st.Trigger.Commit, goodState.Trigger.Commit)
	}
	mu.Lock()
	got, first := seen[rb], seen[good]
	mu.Unlock()
	if got.ref != goodApp || got.ref.SHA256 != first.ref.SHA256 || got.ref.Key != first.ref.Key {
		t.Fatalf("rollback Deploy read %+v, run 1's Deploy read %+v (run 1's app: %+v)", got.ref, first.ref, goodApp)
	}
	if !bytes.Equal(got.body, first.body) || !bytes.Contains(got.body, []byte("version 1")) {
		t.Fatalf("rollback Deploy read %q, run 1's read %q", got.body, first.body)
	}

	// gantry run rollback: refused for a stage that never succeeded
	// there, started (by default to run 1, the latest non-rollback run in
	// which Deploy succeeded) otherwise.
	cmd := command.Client{Conn: b.Conn()}
	if _, err := cmd.Do(ctx, command.StageRollback, command.Request{Pipeline: def.Name, Stage: "Deploy", To: bad}); err == nil {
		t.Fatal("rollback to a run whose Deploy failed was accepted")
	}
	reply, err := cmd.Do(ctx, command.StageRollback, command.Request{Pipeline: def.Name, Stage: "Deploy", Actor: "alice@laptop"})
	if err != nil {
		t.Fatal(err)
	}
	st = waitDone(t, b, def.Name, reply.Run, 30*time.Second)
	if st.Phase != run.Succeeded || st.Rollback.Run != good || st.Trigger.Actor != "alice@laptop" {
		t.Fatalf("manual rollback: %s to %s by %q", st.Phase, st.Rollback.Run, st.Trigger.Actor)
	}
	mu.Lock()
	got = seen[reply.Run]
	mu.Unlock()
	if got.ref != goodApp || !bytes.Equal(got.body, first.body) {
		t.Fatalf("manual rollback Deploy read %+v %q, want run 1's %+v", got.ref, got.body, goodApp)
	}
}

// findRollback polls the log for the rollback run caused by a failed run.
func findRollback(t *testing.T, b interface {
	ReadRun(context.Context, string, string, uint64) ([]events.Event, error)
}, pipeline, cause string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// The rollback run's ID is derived from the failed run, as the
		// conductor derives it.
		evs, _ := b.ReadRun(context.Background(), pipeline, cause, 0)
		st := run.Fold(run.State{}, evs...)
		id := events.RunIDForTrigger("rollback/"+cause+"/Deploy", st.EndedAt.UnixMilli())
		if evs, _ := b.ReadRun(context.Background(), pipeline, id, 0); len(evs) > 0 {
			return id
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal(fmt.Sprintf("no rollback run for %s", cause))
	return ""
}
