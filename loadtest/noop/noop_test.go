package noop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/loadtest/noop"
)

func TestNoopReportIsSane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server and runs 20 pipelines")
	}
	const runs, stages, lowLoad = 20, 3, 5
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := time.Now()
	rep, err := noop.Run(ctx, noop.Config{
		Runs: runs, Stages: stages, Concurrency: 8, Inflight: runs, LowLoadRuns: lowLoad,
		PubSync: 200, PubAsync: 2000, TempDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("benchmark took %s; phases %+v", time.Since(started), rep.Phases)

	if !rep.OK() || rep.FailedRuns != 0 || rep.UnfinishedRuns != 0 || rep.RunsSucceeded != runs || rep.RunsRequested != runs {
		t.Fatalf("runs: requested %d, succeeded %d, failed %d, unfinished %d; want all %d succeeded",
			rep.RunsRequested, rep.RunsSucceeded, rep.FailedRuns, rep.UnfinishedRuns, runs)
	}
	if rep.LowLoadRuns != lowLoad || rep.LowLoadFailedRuns != 0 {
		t.Fatalf("low-load runs %d, %d failed; want %d, none failed", rep.LowLoadRuns, rep.LowLoadFailedRuns, lowLoad)
	}
	if got := rep.EventsByType[events.TypeRunSucceeded]; got != runs+lowLoad {
		t.Errorf("run.succeeded events = %d, want %d", got, runs+lowLoad)
	}
	if got := rep.EventsByType[events.TypeActionSucceeded]; got != (runs+lowLoad)*stages {
		t.Errorf("action.succeeded events = %d, want %d", got, (runs+lowLoad)*stages)
	}
	// One sample per action after the first: the low-load runs' are the
	// transition, the loaded phase's the loaded transition.
	if want := lowLoad * (stages - 1); rep.TransitionSamples != want {
		t.Errorf("transition samples = %d, want %d", rep.TransitionSamples, want)
	}
	if want := runs * (stages - 1); rep.LoadedTransitionSamples != want {
		t.Errorf("loaded transition samples = %d, want %d", rep.LoadedTransitionSamples, want)
	}
	positive := map[string]float64{
		"runs_per_sec":                rep.RunsPerSec,
		"wall_seconds":                rep.WallSeconds,
		"run_p50_ms":                  rep.RunP50Ms,
		"transition_p50_ms":           rep.TransitionP50Ms,
		"transition_p99_ms":           rep.TransitionP99Ms,
		"loaded_transition_p50_ms":    rep.LoadedTransitionP50Ms,
		"handler_transition_p50_ms":   rep.HandlerTransitionP50Ms,
		"events_per_sec":              rep.EventsPerSec,
		"rebuild_events_per_sec":      rep.RebuildEventsPerSec,
		"nats_pub_sync_p50_ms":        rep.NatsPubSyncP50Ms,
		"nats_pub_async_msgs_per_sec": rep.NatsPubAsyncMsgsPerSec,
		"ratio pub sync":              rep.TransitionP50VsPubSyncP50,
		"ratio pub async":             rep.EventsPerSecVsPubAsync,
	}
	for name, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	if rep.TransitionP99Ms < rep.TransitionP50Ms {
		t.Errorf("transition p99 %v < p50 %v", rep.TransitionP99Ms, rep.TransitionP50Ms)
	}
	// The rebuild folds exactly what the log holds: every event, every run.
	if rep.Events == 0 || rep.RebuildEvents != rep.Events || rep.RebuildSkipped != 0 || rep.RebuildRuns != runs+lowLoad {
		t.Errorf("rebuild folded %d events (%d skipped) into %d runs; the log holds %d events of %d runs",
			rep.RebuildEvents, rep.RebuildSkipped, rep.RebuildRuns, rep.Events, runs+lowLoad)
	}
	if len(rep.Targets) != 4 {
		t.Errorf("targets = %v, want 4", rep.Targets)
	}

	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"runs", "runs_per_sec", "transition_p50_ms", "transition_p99_ms", "loaded_transition_p50_ms", "low_load_runs", "events", "events_per_sec",
		"rebuild_events_per_sec", "nats_pub_sync_p50_ms", "nats_pub_async_msgs_per_sec",
		"transition_p50_vs_pub_sync_p50", "events_per_sec_vs_pub_async", "go_version", "cpus", "failed_runs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	buf.Reset()
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "transition_p50_ms") {
		t.Errorf("table lacks transition_p50_ms:\n%s", buf.String())
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	err := noop.Config{Runs: -1, Stages: 0, Concurrency: 1, Inflight: 1, Requesters: 1}.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"runs must be at least 1, got -1", "stages must be at least 1, got 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestUnmetNamesMissedTargets(t *testing.T) {
	r := &noop.Report{Targets: []noop.Target{
		{Metric: "runs_per_sec", Goal: ">= 500", Value: 299, Met: false},
		{Metric: "transition_p50_ms", Goal: "<= 1", Value: 0.8, Met: true},
	}}
	got := r.Unmet()
	if len(got) != 1 || got[0] != "runs_per_sec 299 (goal >= 500)" {
		t.Fatalf("Unmet() = %q", got)
	}
}
