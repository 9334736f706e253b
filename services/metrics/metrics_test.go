package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/metrics"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestMetricsAndHealth(t *testing.T) {
	set := metrics.New()
	set.TaskTaken("build", "default")("succeeded")
	done := set.TaskTaken("build", "default")
	set.Redelivered("worker-build-default")
	set.RunEnded("hello", "Succeeded", 3*time.Second)
	set.Decided(2 * time.Millisecond)
	set.Heartbeat("web", "web-1", time.Unix(1700000000, 0), nil)
	set.Heartbeat("web", "web-1", time.Now(), errors.New("kv down"))

	healthy := true
	h := metrics.Handler(set, metrics.Check{Name: "nats", Check: func(context.Context) error {
		if healthy {
			return nil
		}
		return errors.New("connection CLOSED")
	}})
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`gantry_tasks_total{kind="build",pool="default",result="succeeded"} 1`,
		`gantry_tasks_in_flight{kind="build",pool="default"} 1`,
		`gantry_redeliveries_total{consumer="worker-build-default"} 1`,
		`gantry_runs_finished_total{phase="Succeeded",pipeline="hello"} 1`,
		`gantry_run_duration_seconds_count{phase="Succeeded",pipeline="hello"} 1`,
		`gantry_decision_seconds_count 1`,
		`gantry_agent_heartbeats_total{group="web",host="web-1",outcome="ok"} 1`,
		`gantry_agent_heartbeats_total{group="web",host="web-1",outcome="failed"} 1`,
		`gantry_agent_last_heartbeat_timestamp_seconds{group="web",host="web-1"} 1.7e+09`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	done("returned")
	if _, body := get(t, h, "/metrics"); !strings.Contains(body, `gantry_tasks_in_flight{kind="build",pool="default"} 0`) ||
		!strings.Contains(body, `gantry_tasks_total{kind="build",pool="default",result="returned"} 1`) {
		t.Errorf("a finished task is still in flight or not counted:\n%s", body)
	}

	if code, body := get(t, h, "/healthz"); code != http.StatusOK || !strings.Contains(body, `"nats":"ok"`) {
		t.Errorf("/healthz healthy: %d %s", code, body)
	}
	healthy = false
	if code, body := get(t, h, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection CLOSED") {
		t.Errorf("/healthz unhealthy: %d %s", code, body)
	}
}

// A nil set records nothing and does not panic: services run without metrics.
func TestNilSet(t *testing.T) {
	var set *metrics.Set
	set.TaskTaken("build", "default")("failed")
	set.Redelivered("x")
	set.Decided(time.Second)
	set.RunEnded("p", "Failed", time.Second)
	set.Heartbeat("g", "h", time.Now(), nil)
	if err := set.Register(nil); err != nil {
		t.Fatal(err)
	}
}

// The queue depth of a worker fleet is its consumer's pending count and
// the tasks in flight its ack-pending count, read at scrape time.
func TestConsumerCollectorReportsBacklog(t *testing.T) {
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	ctx := context.Background()
	js := b.JetStream()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamTasks, jetstream.ConsumerConfig{
		Durable: "worker-build-default", FilterSubject: events.TaskSubject("build", "default"), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, events.TaskSubject("build", "default"), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cons.Fetch(1); err != nil { // taken, not acked: in flight
		t.Fatal(err)
	}
	cc := metrics.NewConsumerCollector(js)
	cc.Watch(events.StreamTasks, "worker-build-default")
	cc.Watch(events.StreamTasks, "worker-nobody-default")
	want := `
# HELP gantry_consumer_ack_pending Messages delivered and not yet acknowledged (in flight).
# TYPE gantry_consumer_ack_pending gauge
gantry_consumer_ack_pending{consumer="worker-build-default",stream="GANTRY_TASKS"} 1
# HELP gantry_consumer_info_up 1 when the consumer's info could be read at this scrape.
# TYPE gantry_consumer_info_up gauge
gantry_consumer_info_up{consumer="worker-build-default",stream="GANTRY_TASKS"} 1
gantry_consumer_info_up{consumer="worker-nobody-default",stream="GANTRY_TASKS"} 0
# HELP gantry_consumer_pending Messages on the consumer's stream not yet delivered (queue depth).
# TYPE gantry_consumer_pending gauge
gantry_consumer_pending{consumer="worker-build-default",stream="GANTRY_TASKS"} 2
`
	// Delivery bookkeeping lands asynchronously on the server: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := testutil.CollectAndCompare(cc, strings.NewReader(want), "gantry_consumer_pending", "gantry_consumer_ack_pending", "gantry_consumer_info_up")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
