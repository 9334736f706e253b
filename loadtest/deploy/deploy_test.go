package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/loadtest/deploy"
)

// TestMain lets the bundle's ApplicationStart hook run this test binary as
// the application's HTTP server.
func TestMain(m *testing.M) {
	deploy.MaybeServe()
	os.Exit(m.Run())
}

func TestDeployThreeHostsOneRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server, a deploy service and three agents")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := deploy.Run(ctx, deploy.Config{Hosts: 3, Runs: 1, PubSync: 50, Execs: 10, Timeout: time.Minute, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
	if !rep.OK() || rep.RunsSucceeded != 1 || len(rep.PerRun) != 1 {
		t.Fatalf("runs: %d succeeded, %d failed: %+v", rep.RunsSucceeded, rep.FailedRuns, rep.PerRun)
	}
	run := rep.PerRun[0]
	if run.WallS <= 0 || run.WallS > 60 || rep.DeployWallP50S != run.WallS || rep.DeployWallMaxS != run.WallS {
		t.Errorf("wall %v s, p50 %v, max %v", run.WallS, rep.DeployWallP50S, rep.DeployWallMaxS)
	}
	if rep.DeployAllAtOnce20HostsS != nil {
		t.Errorf("deploy_all_at_once_20_hosts_s is set with 3 hosts")
	}
	if rep.PerHostOverhead.N != 3 || rep.HookMs.N != 3 || rep.PerHostOverheadMs <= 0 || rep.HookMs.P50 <= 0 {
		t.Errorf("per host: overhead %+v, hooks %+v", rep.PerHostOverhead, rep.HookMs)
	}
	if rep.HookMs.Max > run.WallS*1000 {
		t.Errorf("a host's hooks took %v ms, longer than the deployment %v s", rep.HookMs.Max, run.WallS)
	}
	for _, ev := range []string{"BeforeInstall", "ApplicationStart", "ValidateService"} {
		if s := rep.HookByEvent[ev]; s.N != 3 {
			t.Errorf("hook %s: %+v, want 3 samples", ev, s)
		}
	}
	if s := rep.StepMs["HealthCheck"]; s.N != 3 {
		t.Errorf("HealthCheck: %+v, want 3 samples", s)
	}
	if rep.NatsPubSyncCount != 50 || rep.NatsPubSyncP50Ms <= 0 || rep.HookExecCount != 10 || rep.HookExecP50Ms <= 0 {
		t.Errorf("baselines: %d pubs p50 %v ms, %d execs p50 %v ms", rep.NatsPubSyncCount, rep.NatsPubSyncP50Ms, rep.HookExecCount, rep.HookExecP50Ms)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"hosts", "runs", "deploy_wall_p50_s", "deploy_wall_max_s", "per_host_overhead_ms",
		"per_host_overhead_def", "hook_ms", "hook_ms_by_event", "nats_pub_sync_p50_ms", "target_met_p50", "per_run"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON report lacks %q", k)
		}
	}
	if strings.Contains(buf.String(), "deploy_all_at_once_20_hosts_s") {
		t.Error("JSON report names 20 hosts for a 3-host run")
	}
}

func TestConfigValidate(t *testing.T) {
	err := deploy.Config{Hosts: 0, Runs: -1}.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"hosts must be 1 to 500, got 0", "runs must be at least 1, got -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
