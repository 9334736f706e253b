package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/stack"
)

const appRepo = "app"

var appFiles = map[string]string{
	"input.txt": "hello from the test repository\n",
	"slow.yml": `version: 0.2
phases:
  build:
    commands:
      - echo "building for ${SLEEP:-0}s"
      - sleep ${SLEEP:-0}
      - mkdir -p dist && cp input.txt dist/out.txt
      - test "${FAIL:-no}" = no
artifacts:
  base-directory: dist
  files: ["**/*"]
`,
	"check.yml": `version: 0.2
phases:
  build:
    commands:
      - sleep ${SLEEP:-0}
      - test -f input.txt
`,
}

const slowPipeline = `name: slow
executionMode: PARALLEL
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: app, branch: main}
  - name: Build
    actions:
      - name: compile
        type: build
        inputs: [source]
        outputs: [out]
        configuration: {buildspec: slow.yml}
`

// The example pipeline with every service as its own process.
func TestExamplePipelineOnSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests the example with the Go toolchain")
	}
	e := newEnv(t)
	exs, err := stack.LoadExamples("../../examples")
	if err != nil || len(exs) == 0 {
		t.Fatalf("examples: %v", err)
	}
	if _, _, err := stack.SeedRepo(context.Background(), exs[0], e.repos); err != nil {
		t.Fatal(err)
	}
	e.services("30s")
	e.deployServices()
	ports := e.agents("hello-dev", 3)
	if _, code := e.gantry("deploy", "group", "apply", "-f", "../../examples/hello/deploygroup.yaml"); code != 0 {
		t.Fatal("group apply failed")
	}
	if _, code := e.gantry("pipeline", "apply", "-f", "../../examples/hello/pipeline.yaml"); code != 0 {
		t.Fatal("apply failed")
	}
	// Wait for the agents to register.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := e.gantry("deploy", "group", "list", "-o", "json")
		if strings.Count(out, `"host"`) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, code := e.gantry("run", "start", "hello", "--watch")
	if code != 0 {
		t.Fatalf("the example run failed:\n%s", out)
	}
	runID := strings.Fields(out)[1]
	st := e.waitDone("hello", runID, time.Minute)
	if st.Artifacts["source"].SHA256 == "" || st.Artifacts["app"].SHA256 == "" {
		t.Fatalf("artifacts missing: %+v", st.Artifacts)
	}
	rep := st.Action("Test", "unit").Report
	if rep == nil || rep.Total < 3 || rep.Failed != 0 {
		t.Fatalf("test report: %+v", rep)
	}
	// The app artifact holds a working binary.
	dir := t.TempDir()
	if _, code := e.gantry("artifact", "get", runID, "app", "--extract", dir); code != 0 {
		t.Fatal("artifact get failed")
	}
	if fi, err := os.Stat(filepath.Join(dir, "hello")); err != nil || fi.Mode()&0o100 == 0 {
		t.Fatalf("hello binary not in the app artifact: %v", err)
	}
	if out, code := e.gantry("logs", runID, "Build/compile"); code != 0 || !strings.Contains(out, "built hello") {
		t.Fatalf("logs: %d %s", code, out)
	}
	// Every host serves the version the run built.
	version := st.Action("Build", "compile").Variables["APP_VERSION"]
	for host, port := range ports {
		got, err := get(fmt.Sprintf("http://127.0.0.1:%d/version", port))
		if err != nil || got != version {
			t.Fatalf("%s serves %q (%v), want %q", host, got, err, version)
		}
	}
}

// SIGKILL the build worker that holds a task: the other worker takes it
// after AckWait, the run succeeds, and the log holds one success for it.
func TestKilledBuildWorkerTaskIsRedone(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("2s")
	second := e.start("build-2", "build", "--name", "build-2", "--ack-wait", "2s")
	workers := map[string]*proc{"build-2": second}
	e.apply(slowPipeline)
	runID := e.startRun("slow", "--var", "SLEEP=4")
	st := e.waitFor("slow", runID, 30*time.Second, "compile started", func(st run.State, _ []events.Event) bool {
		a := st.Action("Build", "compile")
		return a != nil && a.Phase == run.Running
	})
	victim := st.Action("Build", "compile").Worker
	if p, ok := workers[victim]; ok {
		p.kill()
	} else {
		// build-1 was started by services(); find it by name.
		for _, p := range e.procs {
			if p.name == "build" {
				p.kill()
			}
		}
	}
	final := e.waitDone("slow", runID, 45*time.Second)
	if final.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", final.Phase, final.Reason)
	}
	evs := e.events("slow", runID)
	if n := count(evs, events.TypeActionSucceeded, "/stage/Build/action/compile/attempt/1/succeeded"); n != 1 {
		t.Fatalf("%d success events for compile, want exactly 1", n)
	}
	if w := final.Action("Build", "compile").Worker; w == victim {
		t.Fatalf("the killed worker %s is recorded as finishing the task", victim)
	}
}

// SIGKILL the conductor mid-run and start another: the run completes.
func TestKilledConductorRunCompletes(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	ps := e.services("30s")
	e.apply(slowPipeline)
	runID := e.startRun("slow", "--var", "SLEEP=2")
	e.waitFor("slow", runID, 30*time.Second, "compile started", func(st run.State, _ []events.Event) bool {
		a := st.Action("Build", "compile")
		return a != nil && a.Phase == run.Running
	})
	ps["conductor"].kill()
	e.start("conductor-2", "conductor")
	final := e.waitDone("slow", runID, 45*time.Second)
	if final.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", final.Phase, final.Reason)
	}
}

// The same trigger published twice starts one run, whether JetStream's
// duplicate window or the run subject's expected sequence catches it.
func TestSameTriggerTwiceStartsOneRun(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("30s")
	e.apply(slowPipeline)
	a := e.startRun("slow", "--id", "push-abc123-main")
	b := e.startRun("slow", "--id", "push-abc123-main")
	if a != b {
		t.Fatalf("the same trigger named two runs: %s and %s", a, b)
	}
	// A publisher that bypasses deduplication (no Nats-Msg-Id) twice.
	raw := []byte(`{"id":"hook-42","pipeline":"slow","kind":"webhook","time":"2026-11-26T10:00:00Z"}`)
	for range 2 {
		if _, err := e.bus.JetStream().Publish(context.Background(), events.TriggerSubject("slow"), raw); err != nil {
			t.Fatal(err)
		}
	}
	e.waitDone("slow", a, 30*time.Second)
	hookRun := events.RunIDForTrigger("hook-42", time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).UnixMilli())
	e.waitDone("slow", hookRun, 30*time.Second)
	if n := countRuns(t, e.bus, "slow"); n != 2 {
		t.Fatalf("%d runs of slow, want 2 (one per distinct trigger)", n)
	}
}

func countRuns(t *testing.T, b *bus.Bus, pipeline string) int {
	t.Helper()
	ids, err := b.RunIDs(context.Background(), pipeline)
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// A malformed event lands in the dead-letter stream with its reason, the
// run goes on, and nothing else in the log is lost.
func TestMalformedEventsGoToTheDLQ(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("30s")
	e.apply(slowPipeline)
	runID := e.startRun("slow", "--var", "SLEEP=1")
	e.waitFor("slow", runID, 30*time.Second, "the run started", func(st run.State, _ []events.Event) bool { return st.Phase != run.NotStarted })
	subj := events.RunSubject("slow", runID)
	js := e.bus.JetStream()
	ctx := context.Background()
	garbage := [][]byte{
		[]byte(`{not json`),
		[]byte(`{"specversion":"1.0","id":"x","source":"/evil","type":"dev.gantry.action.succeeded","time":"2026-11-26T10:00:00Z","subject":"` + runID + `","data":{"run":"` + runID + `","stage":"Build","action":"compile"}}`),
	}
	for _, g := range garbage {
		if _, err := js.Publish(ctx, subj, g); err != nil {
			t.Fatal(err)
		}
	}
	final := e.waitDone("slow", runID, 30*time.Second)
	if final.Phase != run.Succeeded {
		t.Fatalf("run %s: %s", final.Phase, final.Reason)
	}
	dlq, err := js.Stream(ctx, events.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var reasons []string
	for len(reasons) < len(garbage) && time.Now().Before(deadline) {
		reasons = reasons[:0]
		for seq := uint64(1); ; seq++ {
			m, err := dlq.GetMsg(ctx, seq)
			if err != nil {
				break
			}
			if m.Header.Get(bus.HeaderOrigSubject) == subj {
				reasons = append(reasons, m.Header.Get(bus.HeaderReason))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(reasons) != len(garbage) {
		t.Fatalf("DLQ holds %d of the %d malformed events: %v", len(reasons), len(garbage), reasons)
	}
	for _, r := range reasons {
		if !strings.Contains(r, "invalid event") {
			t.Fatalf("DLQ reason %q does not say why", r)
		}
	}
	// Nothing else lost: every message on the subject is still in the stream.
	s, _ := js.Stream(ctx, events.StreamEvents)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.Subjects[subj], uint64(len(e.events("slow", runID))+len(garbage)); got != want {
		t.Fatalf("stream holds %d messages for the run, want %d (valid events plus the refused ones)", got, want)
	}
}

// A malformed pipeline file is refused with the line and field, and nothing
// is stored.
func TestMalformedPipelineFileIsRefused(t *testing.T) {
	e := newEnv(t)
	f := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "name: bad\nstages:\n  - name: Build\n    actions:\n      - name: compile\n        type: build\n        runOrder: 0\n"
	if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := []string{"pipeline", "apply", "-f", f}
	out, code := e.gantry(cmd...)
	if code == 0 {
		t.Fatalf("a bad pipeline was applied: %s", out)
	}
	list, _ := e.gantry("pipeline", "list", "-o", "json")
	if strings.Contains(list, `"bad"`) {
		t.Fatal("the bad pipeline was stored")
	}
}

// After succeeded and failed runs, the projection rebuilt from the log
// equals the live one.
func TestRebuildVerifyAfterMixedWorkload(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("30s")
	e.apply(slowPipeline)
	var ids []string
	for i := range 6 {
		args := []string{}
		if i%2 == 1 {
			args = append(args, "--var", "FAIL=yes")
		}
		ids = append(ids, e.startRun("slow", args...))
	}
	phases := map[run.Phase]int{}
	for _, id := range ids {
		phases[e.waitDone("slow", id, time.Minute).Phase]++
	}
	if phases[run.Succeeded] != 3 || phases[run.Failed] != 3 {
		t.Fatalf("phases %v, want 3 succeeded and 3 failed", phases)
	}
	var out string
	var code int
	for range 50 { // the projector may still be catching up
		out, code = e.gantry("state", "rebuild", "--verify", "-o", "json")
		if code == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("rebuild --verify failed: %s", out)
	}
	var rep struct {
		Runs     int
		Verified bool
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Runs != 6 || !rep.Verified {
		t.Fatalf("rebuild report %s: %v", out, err)
	}
	// The failed runs say why.
	list, _ := e.gantry("run", "list", "-o", "json")
	if strings.Count(list, `"Failed"`) != 3 {
		t.Fatalf("run list: %s", list)
	}
}

// An artifact altered in the store after it was recorded is refused by the
// action that consumes it, and the run fails saying so.
func TestAlteredArtifactIsRefused(t *testing.T) {
	e := newEnv(t)
	e.repo(appRepo, appFiles)
	e.services("30s")
	e.apply(`name: tamper
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration: {repository: app, branch: main}
      - name: wait
        type: build
        runOrder: 2
        inputs: [source]
        configuration: {buildspec: check.yml}
  - name: Build
    actions:
      - name: compile
        type: build
        inputs: [source]
        outputs: [out]
        configuration: {buildspec: slow.yml}
`)
	runID := e.startRun("tamper", "--var", "SLEEP=2")
	st := e.waitFor("tamper", runID, 30*time.Second, "source stored", func(st run.State, _ []events.Event) bool {
		a := st.Action("Source", "wait")
		return a != nil && a.Phase == run.Running
	})
	ref := st.Artifacts["source"]
	obs, err := e.bus.JetStream().ObjectStore(context.Background(), events.BucketArtifacts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(context.Background(), ref.Key, []byte("not the bytes that were recorded")); err != nil {
		t.Fatal(err)
	}
	final := e.waitDone("tamper", runID, 30*time.Second)
	if final.Phase != run.Failed {
		t.Fatalf("run %s with an altered artifact", final.Phase)
	}
	a := final.Action("Build", "compile")
	if a.Phase != run.Failed || !strings.Contains(a.Reason, "digest") {
		t.Fatalf("compile: %s %q, want a digest refusal", a.Phase, a.Reason)
	}
}

// gantry demo runs the example in one process; the data directory it
// leaves verifies offline.
func TestDemoThenOfflineRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests the example with the Go toolchain")
	}
	dir := t.TempDir()
	cmd := []string{"demo", "--data-dir", dir, "--examples", "../../examples", "-o", "json"}
	e := &env{t: t}
	out, code := e.gantry(cmd...)
	if code != 0 {
		t.Fatalf("demo failed: %s", out)
	}
	type summary struct {
		Run, Status, Version string
		Stages               []struct{ Name, Status string }
		Artifacts            []events.ArtifactRef
	}
	var s struct {
		Passed                               bool
		Good                                 summary
		Broken                               *summary
		FailedDeployment, RollbackDeployment string
		Deployments                          []struct{ ID, Phase, RollbackOf string }
		Hosts                                []struct{ Host, URL, Serves string }
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("demo output %q: %v", out, err)
	}
	if !s.Passed || s.Good.Status != "Succeeded" || len(s.Good.Stages) != 4 || len(s.Good.Artifacts) != 2 || s.Good.Version == "" {
		t.Fatalf("demo summary: %s", out)
	}
	// The broken revision failed in Deploy, its deployment failed, the
	// rollback succeeded, and every host serves the good version again.
	if s.Broken == nil || s.Broken.Status != "Failed" || s.Broken.Version == s.Good.Version {
		t.Fatalf("broken run: %s", out)
	}
	phases := map[string]string{}
	for _, d := range s.Deployments {
		phases[d.ID] = d.Phase
		if d.ID == s.RollbackDeployment && d.RollbackOf != s.FailedDeployment {
			t.Fatalf("rollback %s rolls back %q, want %s", d.ID, d.RollbackOf, s.FailedDeployment)
		}
	}
	if phases[s.FailedDeployment] != "Failed" || phases[s.RollbackDeployment] != "Succeeded" || len(s.Deployments) != 3 {
		t.Fatalf("deployments: %s", out)
	}
	if len(s.Hosts) != 3 {
		t.Fatalf("hosts: %s", out)
	}
	for _, h := range s.Hosts {
		if h.Serves != s.Good.Version {
			t.Fatalf("%s serves %q, want %q", h.Host, h.Serves, s.Good.Version)
		}
	}
	// On its way out the demo's agents stopped the apps they deployed.
	for _, h := range s.Hosts {
		if got, err := get(h.URL); err == nil {
			t.Errorf("%s still serves %q at %s after the demo ended", h.Host, got, h.URL)
		}
	}
	out, code = e.gantry("state", "rebuild", "--verify", "--data-dir", dir, "--nats", "")
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("offline rebuild --verify: %d %s", code, out)
	}
	// Offline, the CLI sees what the demo's server (its own account and
	// users) stored: both runs and the three deployments.
	if !strings.Contains(out, "rebuilt 2 runs and 3 deployments") {
		t.Fatalf("offline rebuild read another log than the demo wrote: %s", out)
	}
}
