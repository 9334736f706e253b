// Package metrics is what Gantry's services expose to Prometheus on
// /metrics, and their /healthz: task and run counts and durations, queue
// depth and in-flight tasks per consumer, redeliveries, the conductor's
// decision latency and agent heartbeats. Each process owns one Set (no
// global registry); a nil *Set records nothing, so services and tests run
// without metrics at no cost.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Set is one process's metrics and the registry that exposes them.
type Set struct {
	Registry *prometheus.Registry

	tasks         *prometheus.CounterVec
	taskSeconds   *prometheus.HistogramVec
	tasksInFlight *prometheus.GaugeVec
	redeliveries  *prometheus.CounterVec
	decisions     prometheus.Histogram
	runs          *prometheus.CounterVec
	runSeconds    *prometheus.HistogramVec
	beats         *prometheus.CounterVec
	lastBeat      *prometheus.GaugeVec
}

// durations spans a second to a few hours: builds, tests, deployments.
var durations = prometheus.ExponentialBuckets(0.5, 2, 16)

// New makes a Set with Go runtime and process collectors registered.
func New() *Set {
	s := &Set{
		Registry: prometheus.NewRegistry(),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_tasks_total", Help: "Tasks this process finished, by kind, pool and result (succeeded, failed, abandoned, returned).",
		}, []string{"kind", "pool", "result"}),
		taskSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gantry_task_duration_seconds", Help: "Time from taking a task to its result, by kind, pool and result.", Buckets: durations,
		}, []string{"kind", "pool", "result"}),
		tasksInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_tasks_in_flight", Help: "Tasks this process is running now, by kind and pool.",
		}, []string{"kind", "pool"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_redeliveries_total", Help: "Messages this process received again after another delivery was not acknowledged, by consumer.",
		}, []string{"consumer"}),
		decisions: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gantry_decision_seconds", Help: "Conductor time from receiving a run event to having appended every decision it led to.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_runs_finished_total", Help: "Runs this conductor saw end, by pipeline and final phase.",
		}, []string{"pipeline", "phase"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gantry_run_duration_seconds", Help: "Time from a run being requested to its end, by pipeline and final phase.", Buckets: durations,
		}, []string{"pipeline", "phase"}),
		beats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_agent_heartbeats_total", Help: "Heartbeats an agent wrote, by group, host and outcome (ok, failed).",
		}, []string{"group", "host", "outcome"}),
		lastBeat: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_agent_last_heartbeat_timestamp_seconds", Help: "Unix time of an agent's last successful heartbeat.",
		}, []string{"group", "host"}),
	}
	s.Registry.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.tasks, s.taskSeconds, s.tasksInFlight, s.redeliveries, s.decisions, s.runs, s.runSeconds, s.beats, s.lastBeat,
	)
	return s
}

// TaskTaken counts a task this process started; call the returned
// function with its result when it ends (succeeded, failed, abandoned, or
// returned to the fleet).
func (s *Set) TaskTaken(kind, pool string) (done func(result string)) {
	if s == nil {
		return func(string) {}
	}
	g := s.tasksInFlight.WithLabelValues(kind, pool)
	g.Inc()
	start := time.Now()
	return func(result string) {
		g.Dec()
		s.tasks.WithLabelValues(kind, pool, result).Inc()
		s.taskSeconds.WithLabelValues(kind, pool, result).Observe(time.Since(start).Seconds())
	}
}

// Redelivered counts a message received again on consumer.
func (s *Set) Redelivered(consumer string) {
	if s != nil {
		s.redeliveries.WithLabelValues(consumer).Inc()
	}
}

// Decided records how long handling one run event took, decisions appended.
func (s *Set) Decided(d time.Duration) {
	if s != nil {
		s.decisions.Observe(d.Seconds())
	}
}

// RunEnded records a run's end and its duration since it was requested.
func (s *Set) RunEnded(pipeline, phase string, d time.Duration) {
	if s != nil {
		s.runs.WithLabelValues(pipeline, phase).Inc()
		s.runSeconds.WithLabelValues(pipeline, phase).Observe(d.Seconds())
	}
}

// Heartbeat records an agent's heartbeat; err is its outcome.
func (s *Set) Heartbeat(group, host string, at time.Time, err error) {
	if s == nil {
		return
	}
	if err != nil {
		s.beats.WithLabelValues(group, host, "failed").Inc()
		return
	}
	s.beats.WithLabelValues(group, host, "ok").Inc()
	s.lastBeat.WithLabelValues(group, host).Set(float64(at.UnixNano()) / 1e9)
}

// Register adds a collector (such as a ConsumerCollector) to the set.
func (s *Set) Register(c prometheus.Collector) error {
	if s == nil {
		return nil
	}
	return s.Registry.Register(c)
}
