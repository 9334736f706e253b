package noop

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// How the transition is measured; the report says it too.
const (
	TransitionFrom = "previous action.succeeded, JetStream stored timestamp"
	TransitionTo   = "next action.started `time`, stamped by the worker right after it took and decoded the task"
)

// Targets the benchmark is held to.
const (
	TargetTransitionP50Ms     = 1.0
	TargetTransitionP99Ms     = 5.0
	TargetRunsPerSec          = 500.0
	TargetRebuildEventsPerSec = 100000.0
)

// Report is what one benchmark measured. Durations are in milliseconds, rates
// per second of wall time.
type Report struct {
	Benchmark   string `json:"benchmark"`
	Runs        int    `json:"runs"`
	Stages      int    `json:"stages"`
	Concurrency int    `json:"concurrency"`
	Inflight    int    `json:"inflight"`
	// Connections is how the services reach the server: "in-process" (as
	// `gantry dev` connects them) or "tcp" (loopback).
	Connections string `json:"connections"`
	// LowLoadRuns ran one at a time before the loaded phase; the
	// transition_* numbers and their targets are theirs. Everything else
	// (rates, run latency, CPU, traffic, lags) is the loaded phase's.
	LowLoadRuns       int `json:"low_load_runs"`
	LowLoadFailedRuns int `json:"low_load_failed_runs"`

	RunsRequested  int  `json:"runs_requested"`
	RunsSucceeded  int  `json:"runs_succeeded"`
	FailedRuns     int  `json:"failed_runs"`
	UnfinishedRuns int  `json:"unfinished_runs"`
	TimedOut       bool `json:"timed_out,omitempty"`

	WallSeconds float64 `json:"wall_seconds"`
	RunsPerSec  float64 `json:"runs_per_sec"`
	// CatchUpSeconds is how long after the last run ended the conductor and
	// the projector took to consume every event (CaughtUp: they did before
	// the timeout); SustainedRunsPerSec counts it in, the rate the target
	// holds: runs the services keep up with, projections included.
	CatchUpSeconds      float64 `json:"catch_up_seconds"`
	CaughtUp            bool    `json:"caught_up"`
	SustainedRunsPerSec float64 `json:"sustained_runs_per_sec"`
	RunP50Ms            float64 `json:"run_p50_ms"`
	RunP99Ms            float64 `json:"run_p99_ms"`

	// Transition* are at low load (LowLoadRuns, one run at a time).
	TransitionP50Ms   float64 `json:"transition_p50_ms"`
	TransitionP99Ms   float64 `json:"transition_p99_ms"`
	TransitionSamples int     `json:"transition_samples"`
	TransitionFrom    string  `json:"transition_from"`
	TransitionTo      string  `json:"transition_to"`
	// LoadedTransition* are the same measure in the loaded phase, where a
	// transition mostly waits in queues behind Inflight other runs.
	LoadedTransitionP50Ms   float64 `json:"loaded_transition_p50_ms"`
	LoadedTransitionP99Ms   float64 `json:"loaded_transition_p99_ms"`
	LoadedTransitionSamples int     `json:"loaded_transition_samples"`
	// The low-load transition split at stored timestamps, p50 and p99 of each part:
	// action.succeeded → stage.succeeded (the conductor reacts),
	// → stage.started, → action.dispatched (two more appends),
	// → action.started time (task published, fetched, decoded by the worker).
	Breakdown Breakdown `json:"transition_breakdown"`
	// HandlerTransition ends at the noop handler's first instruction instead
	// (after action.started is appended and the workspace and log file exist).
	HandlerTransitionP50Ms float64 `json:"handler_transition_p50_ms"`
	HandlerTransitionP99Ms float64 `json:"handler_transition_p99_ms"`

	Events         int            `json:"events"`
	EventsPerSec   float64        `json:"events_per_sec"`
	EventsPerRun   float64        `json:"events_per_run"`
	EventBytesMean int            `json:"event_bytes_mean"`
	EventsByType   map[string]int `json:"events_by_type"`
	// RequestAppend is the driver's Append of run.requested while runs are
	// under way (encode, validate, sync publish with expected sequence): the
	// round trip every service pays, measured under the load.
	RequestAppendP50Ms float64 `json:"request_append_p50_ms"`
	RequestAppendP99Ms float64 `json:"request_append_p99_ms"`
	// Consumer lag (events not yet acknowledged), sampled every 100 ms
	// while runs were under way, and when the last run ended.
	ConductorLagMax  int     `json:"conductor_lag_max"`
	ConductorLagMean float64 `json:"conductor_lag_mean"`
	ConductorLag     int     `json:"conductor_lag_at_end"`
	ProjectorLagMax  int     `json:"projector_lag_max"`
	ProjectorLagMean float64 `json:"projector_lag_mean"`
	ProjectorLag     int     `json:"projector_lag_at_end"`

	RebuildEvents       int     `json:"rebuild_events"`
	RebuildRuns         int     `json:"rebuild_runs"`
	RebuildSkipped      int     `json:"rebuild_skipped"`
	RebuildSeconds      float64 `json:"rebuild_seconds"`
	RebuildEventsPerSec float64 `json:"rebuild_events_per_sec"`
	// RebuildEventsPerCPUSec is the same per second of process CPU.
	RebuildEventsPerCPUSec float64 `json:"rebuild_events_per_cpu_sec"`
	// RebuildExactEventsPerSec is FoldAll's loop (decode, evolve) with each
	// fetch asking for no more than is left, so the last one does not wait
	// out FetchMaxWait: what FoldAll reaches with that one change.
	RebuildExactEventsPerSec float64 `json:"rebuild_exact_fetch_events_per_sec"`

	NatsPayloadBytes       int     `json:"nats_payload_bytes"`
	NatsPubSyncCount       int     `json:"nats_pub_sync_count"`
	NatsPubSyncP50Ms       float64 `json:"nats_pub_sync_p50_ms"`
	NatsPubSyncP99Ms       float64 `json:"nats_pub_sync_p99_ms"`
	NatsPubAsyncCount      int     `json:"nats_pub_async_count"`
	NatsPubAsyncMsgsPerSec float64 `json:"nats_pub_async_msgs_per_sec"`
	// How many sync publishes one transition costs, and what share of the
	// engine's async throughput the system's event rate reaches.
	TransitionP50VsPubSyncP50 float64 `json:"transition_p50_vs_pub_sync_p50"`
	EventsPerSecVsPubAsync    float64 `json:"events_per_sec_vs_pub_async"`

	// What the runs phase and the catch-up after it cost the whole process
	// (server, services and driver): CPU per run, the rate that CPU alone would allow on every
	// core, and the garbage it made. A busy host slows the wall-clock rates
	// but not these.
	CPUSeconds         float64 `json:"cpu_seconds"`
	CPUMsPerRun        float64 `json:"cpu_ms_per_run"`
	CPUBoundRunsPerSec float64 `json:"cpu_bound_runs_per_sec"`
	// Traffic is each connection's messages and bytes per run during the
	// runs phase: requests, replies, acks and deliveries all count.
	Traffic            Traffic `json:"traffic_per_run"`
	GCCycles           int     `json:"gc_cycles"`
	AllocBytesPerEvent float64 `json:"alloc_bytes_per_event"`

	Targets []Target `json:"targets"`
	Phases  Phases   `json:"phase_seconds"`

	GoVersion  string  `json:"go_version"`
	CPUs       int     `json:"cpus"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	HostLoad1m float64 `json:"host_load_1m,omitempty"`

	runsFailedInLog int
}

// Breakdown splits the transition; see Report.
type Breakdown struct {
	ConductorReactP50Ms float64 `json:"succeeded_to_stage_succeeded_p50_ms"`
	ConductorReactP99Ms float64 `json:"succeeded_to_stage_succeeded_p99_ms"`
	StageStartP50Ms     float64 `json:"to_stage_started_p50_ms"`
	StageStartP99Ms     float64 `json:"to_stage_started_p99_ms"`
	DispatchP50Ms       float64 `json:"to_action_dispatched_p50_ms"`
	DispatchP99Ms       float64 `json:"to_action_dispatched_p99_ms"`
	WorkerTakeP50Ms     float64 `json:"to_worker_took_task_p50_ms"`
	WorkerTakeP99Ms     float64 `json:"to_worker_took_task_p99_ms"`
}

// Traffic is messages and bytes per run on each role's connection.
type Traffic struct {
	Conductor ConnTraffic `json:"conductor"`
	Projector ConnTraffic `json:"projector"`
	Worker    ConnTraffic `json:"worker"`
	Driver    ConnTraffic `json:"driver"`
	Watcher   ConnTraffic `json:"watcher"`
}

// ConnTraffic is what one connection sent and received, per run.
type ConnTraffic struct {
	OutMsgs  float64 `json:"out_msgs"`
	InMsgs   float64 `json:"in_msgs"`
	OutBytes float64 `json:"out_bytes"`
	InBytes  float64 `json:"in_bytes"`
}

func (r *Report) traffic(conns []*roleConn) {
	n := float64(r.RunsSucceeded + r.runsFailedInLog)
	if n == 0 {
		return
	}
	for _, c := range conns {
		t := ConnTraffic{
			OutMsgs:  round3(float64(c.end.OutMsgs-c.start.OutMsgs) / n),
			InMsgs:   round3(float64(c.end.InMsgs-c.start.InMsgs) / n),
			OutBytes: round3(float64(c.end.OutBytes-c.start.OutBytes) / n),
			InBytes:  round3(float64(c.end.InBytes-c.start.InBytes) / n),
		}
		switch c.role {
		case "conductor":
			r.Traffic.Conductor = t
		case "projector":
			r.Traffic.Projector = t
		case "worker":
			r.Traffic.Worker = t
		case "driver":
			r.Traffic.Driver = t
		case "watcher":
			r.Traffic.Watcher = t
		}
	}
}

// Phases is how long each part of the benchmark took, in seconds.
type Phases struct {
	Setup     float64 `json:"setup"`
	LowLoad   float64 `json:"low_load"`
	Runs      float64 `json:"runs"`
	Shutdown  float64 `json:"shutdown"`
	ReadLog   float64 `json:"read_log"`
	Rebuild   float64 `json:"rebuild"`
	Baselines float64 `json:"baselines"`
}

// Target is one goal and whether this run met it.
type Target struct {
	Metric string  `json:"metric"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Met    bool    `json:"met"`
}

// OK reports whether every run succeeded.
func (r *Report) OK() bool { return r.FailedRuns == 0 && r.LowLoadFailedRuns == 0 }

// Unmet names the targets this run missed, as "metric value (goal …)".
func (r *Report) Unmet() []string {
	var out []string
	for _, t := range r.Targets {
		if !t.Met {
			out = append(out, fmt.Sprintf("%s %g (goal %s)", t.Metric, t.Value, t.Goal))
		}
	}
	return out
}

func (r *Report) fillConfig(c Config) {
	r.Benchmark = "noop"
	r.Runs, r.Stages, r.Concurrency, r.Inflight = c.Runs, c.Stages, c.Concurrency, c.Inflight
	r.LowLoadRuns = max(c.LowLoadRuns, 0)
	r.Connections = "in-process"
	if c.TCP {
		r.Connections = "tcp"
	}
	r.TransitionFrom, r.TransitionTo = TransitionFrom, TransitionTo
	r.GoVersion = runtime.Version()
	r.CPUs = runtime.NumCPU()
	r.GOMAXPROCS = runtime.GOMAXPROCS(0)
	r.HostLoad1m = loadAvg()
}

// fromLog fills the run, transition and event numbers; start is when the
// loaded phase's first run was requested; handled holds the handler's
// entry times by run/stage; lowLoad names the low-load phase's runs.
func (r *Report) fromLog(lg *logTimes, start time.Time, handled map[string]time.Time, lowLoad map[string]bool) {
	var runLat, trans, loaded, handler, react, stStart, disp, take dist
	var last time.Time
	loadedEvents := 0
	for id, rt := range lg.runs {
		if lowLoad[id] {
			for i := 1; i < len(rt.stages); i++ {
				prev, cur := rt.stages[i-1], rt.stages[i]
				trans.add(prev.actionSucceeded, cur.taken)
				if h, ok := handled[id+"/"+fmt.Sprintf("s%d", i)]; ok {
					handler.add(prev.actionSucceeded, h)
				}
				react.add(prev.actionSucceeded, prev.stageSucceeded)
				stStart.add(prev.stageSucceeded, cur.stageStarted)
				disp.add(cur.stageStarted, cur.dispatched)
				take.add(cur.dispatched, cur.taken)
			}
			continue
		}
		loadedEvents += rt.events
		for i := 1; i < len(rt.stages); i++ {
			loaded.add(rt.stages[i-1].actionSucceeded, rt.stages[i].taken)
		}
		if rt.succeeded {
			r.RunsSucceeded++
		}
		if rt.failed {
			r.runsFailedInLog++
		}
		if rt.ended.After(last) {
			last = rt.ended
		}
		runLat.add(rt.requested, rt.ended)
	}
	r.Events = lg.events
	r.EventBytesMean = lg.meanBytes()
	r.EventsByType = lg.byType
	if n := len(lg.runs); n > 0 {
		r.EventsPerRun = round3(float64(lg.events) / float64(n))
	}
	if !last.IsZero() {
		wall := last.Sub(start).Seconds()
		r.WallSeconds = round3(wall)
		if wall > 0 {
			r.RunsPerSec = round3(float64(r.RunsSucceeded+r.runsFailedInLog) / wall)
			r.EventsPerSec = round3(float64(loadedEvents) / wall)
		}
	}
	r.RunP50Ms, r.RunP99Ms = runLat.quantile(0.5), runLat.quantile(0.99)
	r.TransitionP50Ms, r.TransitionP99Ms, r.TransitionSamples = trans.quantile(0.5), trans.quantile(0.99), len(trans)
	r.LoadedTransitionP50Ms, r.LoadedTransitionP99Ms, r.LoadedTransitionSamples = loaded.quantile(0.5), loaded.quantile(0.99), len(loaded)
	r.HandlerTransitionP50Ms, r.HandlerTransitionP99Ms = handler.quantile(0.5), handler.quantile(0.99)
	r.Breakdown = Breakdown{
		ConductorReactP50Ms: react.quantile(0.5), ConductorReactP99Ms: react.quantile(0.99),
		StageStartP50Ms: stStart.quantile(0.5), StageStartP99Ms: stStart.quantile(0.99),
		DispatchP50Ms: disp.quantile(0.5), DispatchP99Ms: disp.quantile(0.99),
		WorkerTakeP50Ms: take.quantile(0.5), WorkerTakeP99Ms: take.quantile(0.99),
	}
}

// cpu fills the cost of the runs phase: its process CPU time and allocation.
func (r *Report) cpu(d time.Duration, alloc uint64) {
	r.CPUSeconds = round3(d.Seconds())
	if n := r.RunsSucceeded + r.runsFailedInLog; n > 0 && d > 0 {
		perRun := d.Seconds() * 1000 / float64(n)
		r.CPUMsPerRun = round3(perRun)
		r.CPUBoundRunsPerSec = round3(float64(r.GOMAXPROCS) * 1000 / perRun)
	}
	if r.Events > 0 {
		r.AllocBytesPerEvent = round3(float64(alloc) / float64(r.Events))
	}
}

// finish computes the ratios and checks the targets.
func (r *Report) finish() {
	if n := r.RunsSucceeded + r.runsFailedInLog; n > 0 && r.WallSeconds+r.CatchUpSeconds > 0 {
		r.SustainedRunsPerSec = round3(float64(n) / (r.WallSeconds + r.CatchUpSeconds))
	}
	r.RebuildSeconds = round3(r.RebuildSeconds)
	r.RebuildEventsPerSec = round3(r.RebuildEventsPerSec)
	if r.NatsPubSyncP50Ms > 0 {
		r.TransitionP50VsPubSyncP50 = round3(r.TransitionP50Ms / r.NatsPubSyncP50Ms)
	}
	if r.NatsPubAsyncMsgsPerSec > 0 {
		r.EventsPerSecVsPubAsync = round3(r.EventsPerSec / r.NatsPubAsyncMsgsPerSec)
	}
	r.Targets = []Target{
		{"transition_p50_ms", fmt.Sprintf("<= %g", TargetTransitionP50Ms), r.TransitionP50Ms, r.TransitionSamples > 0 && r.TransitionP50Ms <= TargetTransitionP50Ms},
		{"transition_p99_ms", fmt.Sprintf("<= %g", TargetTransitionP99Ms), r.TransitionP99Ms, r.TransitionSamples > 0 && r.TransitionP99Ms <= TargetTransitionP99Ms},
		{"sustained_runs_per_sec", fmt.Sprintf(">= %g", TargetRunsPerSec), r.SustainedRunsPerSec, r.CaughtUp && r.SustainedRunsPerSec >= TargetRunsPerSec},
		{"rebuild_events_per_sec", fmt.Sprintf(">= %g", TargetRebuildEventsPerSec), r.RebuildEventsPerSec, r.RebuildEventsPerSec >= TargetRebuildEventsPerSec},
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteTable writes the report as a two-column table, in the JSON's order
// and with its names.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			fv := v.Field(i)
			switch {
			case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]():
				walk(prefix+name+".", fv)
			case f.Type == reflect.TypeFor[[]Target]():
				for _, tg := range fv.Interface().([]Target) {
					met := "MISSED"
					if tg.Met {
						met = "met"
					}
					fmt.Fprintf(tw, "target %s\t%g (goal %s): %s\n", tg.Metric, tg.Value, tg.Goal, met)
				}
			case f.Type.Kind() == reflect.Map:
				m := fv.Interface().(map[string]int)
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					fmt.Fprintf(tw, "%s%s.%s\t%d\n", prefix, name, k, m[k])
				}
			default:
				fmt.Fprintf(tw, "%s%s\t%v\n", prefix, name, fv.Interface())
			}
		}
	}
	walk("", reflect.ValueOf(r).Elem())
	return tw.Flush()
}

// loadAvg is the host's one-minute load average, 0 where unknown: a busy
// host explains a slow benchmark.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var f float64
	if _, err := fmt.Sscan(string(b), &f); err != nil {
		return 0
	}
	return f
}
