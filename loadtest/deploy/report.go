package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events/bus"
)

// TargetSeconds is the target for a 20-host AllAtOnce deployment.
const TargetSeconds = 2.0

// How the overheads are computed; the report says it too.
const (
	PerHostOverheadDef    = "per host and run: host.succeeded time (agent) - host.dispatched time (deploy service) - the host's script hook time (sum of the durations the agent reports for ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService)"
	DeploymentOverheadDef = "per run: deploy wall time - the largest script hook time of any host"
)

// Stats are milliseconds over a set of samples (nearest rank).
type Stats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

// RunReport is one deployment.
type RunReport struct {
	Deployment string  `json:"deployment"`
	Succeeded  bool    `json:"succeeded"`
	Reason     string  `json:"reason,omitempty"`
	WallS      float64 `json:"wall_s"`
	ObservedS  float64 `json:"observed_s"`
	// MaxHookMs is the largest hook time of one host; OverheadMs the wall
	// time beyond it.
	MaxHookMs  float64 `json:"max_host_hook_ms"`
	OverheadMs float64 `json:"deployment_overhead_ms"`
	Events     int     `json:"events"`
	// CreatedToDispatchMs: created → first host.dispatched; DispatchSpreadMs:
	// first → last host.dispatched.
	CreatedToDispatchMs float64 `json:"created_to_dispatched_ms"`
	DispatchSpreadMs    float64 `json:"dispatch_spread_ms"`
	// ServiceBacklog is the deploy service's unacknowledged deployment
	// events before the run; SettleS how long the driver waited for them.
	ServiceBacklog int     `json:"deploy_service_backlog_before"`
	SettleS        float64 `json:"settle_s"`
}

// Report is what one benchmark measured.
type Report struct {
	Benchmark   string `json:"benchmark"`
	Hosts       int    `json:"hosts"`
	Runs        int    `json:"runs"`
	Config      string `json:"deployment_config"`
	BackToBack  bool   `json:"back_to_back"`
	HealthCheck string `json:"health_check"`

	RunsSucceeded int `json:"runs_succeeded"`
	FailedRuns    int `json:"failed_runs"`

	// DeployAllAtOnce20HostsS is DeployWallP50S, present only with 20 hosts.
	DeployAllAtOnce20HostsS *float64    `json:"deploy_all_at_once_20_hosts_s,omitempty"`
	DeployWallP50S          float64     `json:"deploy_wall_p50_s"`
	DeployWallMaxS          float64     `json:"deploy_wall_max_s"`
	DeployWallFrom          string      `json:"deploy_wall_from"`
	DeployWallTo            string      `json:"deploy_wall_to"`
	TargetS                 float64     `json:"target_s"`
	TargetMetP50            bool        `json:"target_met_p50"`
	TargetMetMax            bool        `json:"target_met_max"`
	PerRun                  []RunReport `json:"per_run"`
	perRunHosts             [][]hostT   // per run, per host, for the stats
	created2dispatch        dist
	lastHost2end            dist
	spread                  dist

	// PerHostOverheadMs is the p50 of PerHostOverhead.
	PerHostOverheadMs     float64 `json:"per_host_overhead_ms"`
	PerHostOverhead       Stats   `json:"per_host_overhead"`
	PerHostOverheadDef    string  `json:"per_host_overhead_def"`
	DeploymentOverhead    Stats   `json:"deployment_overhead"`
	DeploymentOverheadDef string  `json:"deployment_overhead_def"`

	// HookMs is each host's summed script hook time; HookByEvent each
	// script hook's.
	HookMs      Stats            `json:"hook_ms"`
	HookByEvent map[string]Stats `json:"hook_ms_by_event"`
	// Where the per-host overhead goes: the agent's other lifecycle events
	// (DownloadBundle, Install, HealthCheck), host.dispatched → the first
	// lifecycle event (the command reaches the agent, which reads the
	// deployment back), and what is left (appends of lifecycle events,
	// log files, host.succeeded).
	StepMs              map[string]Stats `json:"step_ms"`
	DispatchToFirstMs   Stats            `json:"dispatch_to_first_step_ms"`
	UnaccountedMs       Stats            `json:"per_host_unaccounted_ms"`
	CreatedToDispatch   Stats            `json:"created_to_dispatched_ms"`
	LastHostToEnd       Stats            `json:"last_host_to_deployment_end_ms"`
	HostEndSpreadMs     Stats            `json:"host_end_spread_ms"`
	EventsPerDeployment float64          `json:"events_per_deployment"`

	// Baselines on the same server and machine.
	NatsPubSyncCount int     `json:"nats_pub_sync_count"`
	NatsPayloadBytes int     `json:"nats_payload_bytes"`
	NatsPubSyncP50Ms float64 `json:"nats_pub_sync_p50_ms"`
	NatsPubSyncP99Ms float64 `json:"nats_pub_sync_p99_ms"`
	HookExecCount    int     `json:"hook_exec_count"`
	HookExecP50Ms    float64 `json:"hook_exec_p50_ms"`
	HookExecP99Ms    float64 `json:"hook_exec_p99_ms"`

	SetupSeconds float64 `json:"setup_s"`
	GoVersion    string  `json:"go_version"`
	CPUs         int     `json:"cpus"`
	HostLoad1m   float64 `json:"host_load_1m"`
}

// hostT is one host's measured times in one run.
type hostT struct {
	overhead, hooks, toFirst, unaccounted time.Duration
	steps                                 map[string]time.Duration
	ended                                 time.Time
	ok                                    bool
}

func newReport(cfg Config) *Report {
	return &Report{
		Benchmark: "deploy", Hosts: cfg.Hosts, Runs: cfg.Runs, Config: "AllAtOnce", BackToBack: cfg.BackToBack,
		HealthCheck:        "GET http://127.0.0.1:{{.Labels.port}}/healthz, every 200ms, healthyThreshold 1",
		DeployWallFrom:     "just before deploy.Create appends deployment.created",
		DeployWallTo:       "`time` of deployment.succeeded, stamped by the deploy service",
		TargetS:            TargetSeconds,
		PerHostOverheadDef: PerHostOverheadDef, DeploymentOverheadDef: DeploymentOverheadDef,
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), HostLoad1m: load1(),
	}
}

// add records one deployment.
func (r *Report) add(rt *runTimes) {
	run := RunReport{Deployment: rt.id, Succeeded: rt.succeeded, Reason: rt.reason,
		WallS: round3(rt.ended.Sub(rt.created).Seconds()), ObservedS: round3(rt.observed.Sub(rt.created).Seconds()), Events: rt.events}
	var maxHook time.Duration
	var hs []hostT
	for _, h := range rt.hosts {
		maxHook = max(maxHook, h.hooks)
		t := hostT{hooks: h.hooks, steps: h.steps, ended: h.ended, ok: h.succeeded}
		if !h.dispatched.IsZero() && !h.ended.IsZero() {
			t.overhead = h.ended.Sub(h.dispatched) - h.hooks
			t.unaccounted = t.overhead
			if !h.firstStep.IsZero() {
				t.toFirst = h.firstStep.Sub(h.dispatched)
				t.unaccounted -= t.toFirst
			}
			for ev, d := range h.steps {
				if !hookEvents[ev] {
					t.unaccounted -= d
				}
			}
		}
		hs = append(hs, t)
	}
	run.MaxHookMs = ms(maxHook)
	run.OverheadMs = ms(rt.ended.Sub(rt.created) - maxHook)
	if rt.succeeded {
		r.RunsSucceeded++
	} else {
		r.FailedRuns++
	}
	r.PerRun = append(r.PerRun, run)
	r.perRunHosts = append(r.perRunHosts, hs)
	// The deployment-level moments.
	var firstDispatch, lastHost, firstHost time.Time
	for _, h := range rt.hosts {
		if !h.dispatched.IsZero() && (firstDispatch.IsZero() || h.dispatched.Before(firstDispatch)) {
			firstDispatch = h.dispatched
		}
		if !h.ended.IsZero() {
			if h.ended.After(lastHost) {
				lastHost = h.ended
			}
			if firstHost.IsZero() || h.ended.Before(firstHost) {
				firstHost = h.ended
			}
		}
	}
	var lastDispatch time.Time
	for _, h := range rt.hosts {
		if h.dispatched.After(lastDispatch) {
			lastDispatch = h.dispatched
		}
	}
	r.PerRun[len(r.PerRun)-1].CreatedToDispatchMs = ms(firstDispatch.Sub(rt.created))
	r.PerRun[len(r.PerRun)-1].DispatchSpreadMs = ms(lastDispatch.Sub(firstDispatch))
	r.PerRun[len(r.PerRun)-1].ServiceBacklog = rt.backlog
	r.PerRun[len(r.PerRun)-1].SettleS = round3(rt.settle.Seconds())
	r.created2dispatch = append(r.created2dispatch, firstDispatch.Sub(rt.created))
	r.lastHost2end = append(r.lastHost2end, rt.ended.Sub(lastHost))
	r.spread = append(r.spread, lastHost.Sub(firstHost))
}

// finish computes the statistics.
func (r *Report) finish() {
	var walls, overheads, depOver, hooks, toFirst, unacc dist
	byEvent := map[string]dist{}
	steps := map[string]dist{}
	events := 0
	for i, run := range r.PerRun {
		events += run.Events
		walls = append(walls, time.Duration(run.WallS*float64(time.Second)))
		depOver = append(depOver, time.Duration(run.OverheadMs*float64(time.Millisecond)))
		for _, h := range r.perRunHosts[i] {
			if !h.ok {
				continue
			}
			overheads = append(overheads, h.overhead)
			hooks = append(hooks, h.hooks)
			toFirst = append(toFirst, h.toFirst)
			unacc = append(unacc, h.unaccounted)
			for ev, d := range h.steps {
				if hookEvents[ev] {
					byEvent[ev] = append(byEvent[ev], d)
				} else {
					steps[ev] = append(steps[ev], d)
				}
			}
		}
	}
	r.DeployWallP50S = round3(walls.quantile(0.5) / 1000)
	r.DeployWallMaxS = round3(walls.quantile(1) / 1000)
	if r.Hosts == 20 {
		v := r.DeployWallP50S
		r.DeployAllAtOnce20HostsS = &v
	}
	ok := r.FailedRuns == 0 && len(r.PerRun) > 0
	r.TargetMetP50 = ok && r.DeployWallP50S < TargetSeconds
	r.TargetMetMax = ok && r.DeployWallMaxS < TargetSeconds
	r.PerHostOverhead = overheads.stats()
	r.PerHostOverheadMs = r.PerHostOverhead.P50
	r.DeploymentOverhead = depOver.stats()
	r.HookMs = hooks.stats()
	r.HookByEvent = map[string]Stats{}
	for ev, d := range byEvent {
		r.HookByEvent[ev] = d.stats()
	}
	r.StepMs = map[string]Stats{}
	for ev, d := range steps {
		r.StepMs[ev] = d.stats()
	}
	r.DispatchToFirstMs = toFirst.stats()
	r.UnaccountedMs = unacc.stats()
	r.CreatedToDispatch = r.created2dispatch.stats()
	r.LastHostToEnd = r.lastHost2end.stats()
	r.HostEndSpreadMs = r.spread.stats()
	if len(r.PerRun) > 0 {
		r.EventsPerDeployment = round3(float64(events) / float64(len(r.PerRun)))
	}
}

// OK reports whether every deployment ran and succeeded.
func (r *Report) OK() bool { return r.FailedRuns == 0 && r.RunsSucceeded == r.Runs }

// Unmet names the targets this run missed: the p50 deployment wall time
// against TargetSeconds (the maximum is reported, not held to a target,
// since one slow outlier on a shared machine says little).
func (r *Report) Unmet() []string {
	if r.TargetMetP50 {
		return nil
	}
	return []string{fmt.Sprintf("deploy_wall_p50_s %g (goal < %g)", r.DeployWallP50S, TargetSeconds)}
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Scratch stream of the NATS baseline; deleted afterwards.
const (
	scratchStream  = "LOADTEST_DEPLOY_SCRATCH"
	scratchSubject = "loadtest.deployscratch"
)

// baselines measures, after the runs, plain sync JetStream publishes on the
// same server and the fork/exec of a trivial hook script.
func (e *env) baselines(ctx context.Context, rep *Report, d *bus.Deploys) error {
	size := 512
	if info, err := d.Stream().Info(ctx); err == nil && info.State.Msgs > 0 {
		size = int(info.State.Bytes / info.State.Msgs)
	}
	rep.NatsPayloadBytes = size
	if n := e.cfg.PubSync; n > 0 {
		nc, err := bus.Connect(e.url, "loadtest-deploy-natsbench")
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name: scratchStream, Subjects: []string{scratchSubject + ".>"},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Replicas: 1,
		}); err != nil {
			return fmt.Errorf("scratch stream: %w", err)
		}
		defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), scratchStream) }()
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = 'a' + byte(i%26)
		}
		var lat dist
		for range n {
			t0 := time.Now()
			if _, err := js.Publish(ctx, scratchSubject+".sync", payload); err != nil {
				return fmt.Errorf("sync publish: %w", err)
			}
			lat = append(lat, time.Since(t0))
		}
		rep.NatsPubSyncCount = n
		rep.NatsPubSyncP50Ms = lat.quantile(0.5)
		rep.NatsPubSyncP99Ms = lat.quantile(0.99)
	}
	if n := e.cfg.Execs; n > 0 {
		script := filepath.Join(e.dir, "true.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\ntrue\n"), 0o755); err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(e.dir, "true.log"))
		if err != nil {
			return err
		}
		defer out.Close()
		var lat dist
		for range n {
			d, err := hookExec(script, out)
			if err != nil {
				return fmt.Errorf("exec %s: %w", script, err)
			}
			lat = append(lat, d)
		}
		rep.HookExecCount = n
		rep.HookExecP50Ms = lat.quantile(0.5)
		rep.HookExecP99Ms = lat.quantile(0.99)
	}
	return nil
}

type dist []time.Duration

// quantile is the nearest-rank q-quantile in milliseconds, 0 when empty.
func (d dist) quantile(q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return ms(s[i])
}

func (d dist) stats() Stats {
	return Stats{N: len(d), P50: d.quantile(0.5), P90: d.quantile(0.9), Max: d.quantile(1)}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}
