package noop

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events/bus"
)

// Scratch stream of the NATS baselines; deleted afterwards.
const (
	scratchStream  = "LOADTEST_SCRATCH"
	scratchSubject = "loadtest.scratch"
)

// baselines measures plain JetStream publishes on the benchmark's server: a
// sync publish's latency and async publish throughput, with payloads of
// `size` bytes (the mean event size) to a file-storage stream.
func (e *env) baselines(ctx context.Context, rep *Report, size int) error {
	rep.NatsPayloadBytes = size
	if e.cfg.PubSync <= 0 && e.cfg.PubAsync <= 0 {
		return nil
	}
	nc, err := bus.Connect(e.url, "loadtest-natsbench")
	if err != nil {
		return err
	}
	defer nc.Close()
	var asyncErrs atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) {
		asyncErrs.Add(1)
	}))
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

	if n := e.cfg.PubSync; n > 0 {
		var d dist
		subj := scratchSubject + ".sync"
		for range n {
			t0 := time.Now()
			if _, err := js.Publish(ctx, subj, payload); err != nil {
				return fmt.Errorf("sync publish: %w", err)
			}
			d = append(d, time.Since(t0))
		}
		rep.NatsPubSyncCount = n
		rep.NatsPubSyncP50Ms = d.quantile(0.50)
		rep.NatsPubSyncP99Ms = d.quantile(0.99)
	}

	if n := e.cfg.PubAsync; n > 0 {
		subj := scratchSubject + ".async"
		t0 := time.Now()
		for range n {
			if _, err := js.PublishAsync(subj, payload, jetstream.WithStallWait(time.Minute)); err != nil {
				return fmt.Errorf("async publish: %w", err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(2 * time.Minute):
			return errors.New("async publish: acks did not all arrive within 2 minutes")
		case <-ctx.Done():
			return ctx.Err()
		}
		d := time.Since(t0)
		if k := asyncErrs.Load(); k > 0 {
			return fmt.Errorf("async publish: %d of %d publishes failed", k, n)
		}
		rep.NatsPubAsyncCount = n
		rep.NatsPubAsyncMsgsPerSec = round3(float64(n) / d.Seconds())
	}
	return nil
}
