package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natstest"
)

func streamReplicas(t *testing.T, b *bus.Bus, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

// On a cluster the default is R3, and a service that starts later asking
// for R1 (an old flag, a default) does not shrink what exists.
func TestClusterProvisionsR3AndNeverShrinks(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	b := natstest.ClusterBus(t, natstest.StartCluster(t, 3))
	for _, name := range []string{events.StreamEvents, events.StreamTasks, events.StreamTriggers, "KV_" + events.BucketRuns, "OBJ_" + events.BucketArtifacts} {
		if got := streamReplicas(t, b, name).Replicas; got != bus.DefaultClusterReplicas {
			t.Errorf("%s: R%d, want R%d", name, got, bus.DefaultClusterReplicas)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Provision(ctx, bus.Config{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if got := streamReplicas(t, b, events.StreamEvents).Replicas; got != 3 {
		t.Errorf("after an R1 provision GANTRY_EVENTS is R%d, want it kept at R3", got)
	}
}

// An operator who gave the logs stream more room keeps it across service
// starts; a stream with less than Gantry needs grows.
func TestProvisionKeepsWhatAnOperatorRaised(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	js := b.JetStream()
	cfg := streamReplicas(t, b, events.StreamLogs)
	cfg.MaxAge = 90 * 24 * time.Hour
	cfg.MaxBytes = 8 << 30
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(ctx, bus.Config{}); err != nil {
		t.Fatal(err)
	}
	got := streamReplicas(t, b, events.StreamLogs)
	if got.MaxAge != 90*24*time.Hour || got.MaxBytes != 8<<30 {
		t.Errorf("logs stream after provision: age %s bytes %d, want the operator's 2160h and 8 GiB", got.MaxAge, got.MaxBytes)
	}
	cfg.MaxAge = time.Hour
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(ctx, bus.Config{}); err != nil {
		t.Fatal(err)
	}
	if got := streamReplicas(t, b, events.StreamLogs).MaxAge; got != 7*24*time.Hour {
		t.Errorf("logs stream cut to 1h came back with age %s, want Gantry's 168h", got)
	}
}

func TestNeverShrink(t *testing.T) {
	place := &jetstream.Placement{Cluster: "east"}
	for _, tc := range []struct {
		name       string
		have, want jetstream.StreamConfig
		expect     jetstream.StreamConfig
	}{
		{"replicas kept", jetstream.StreamConfig{Replicas: 3}, jetstream.StreamConfig{Replicas: 1}, jetstream.StreamConfig{Replicas: 3}},
		{"replicas grown", jetstream.StreamConfig{Replicas: 1}, jetstream.StreamConfig{Replicas: 3}, jetstream.StreamConfig{Replicas: 3}},
		{"placement kept", jetstream.StreamConfig{Placement: place}, jetstream.StreamConfig{}, jetstream.StreamConfig{Placement: place}},
		{"unlimited age kept", jetstream.StreamConfig{}, jetstream.StreamConfig{MaxAge: time.Hour}, jetstream.StreamConfig{}},
		{"limit lifted", jetstream.StreamConfig{MaxAge: time.Hour, MaxBytes: 10}, jetstream.StreamConfig{}, jetstream.StreamConfig{}},
		{"bytes kept", jetstream.StreamConfig{MaxBytes: 100}, jetstream.StreamConfig{MaxBytes: 10}, jetstream.StreamConfig{MaxBytes: 100}},
		{"unlimited bytes kept", jetstream.StreamConfig{MaxBytes: -1}, jetstream.StreamConfig{MaxBytes: 10}, jetstream.StreamConfig{MaxBytes: -1}},
	} {
		got := bus.NeverShrink(tc.have, tc.want)
		if got.Replicas != tc.expect.Replicas || got.Placement != tc.expect.Placement || got.MaxAge != tc.expect.MaxAge || got.MaxBytes != tc.expect.MaxBytes {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.expect)
		}
	}
}

// Provisioning what exists changes nothing: every service provisions at
// start, and a stream updated while others create consumers on it trips a
// data race inside nats-server (seen under -race in the e2e suite).
func TestProvisionAgainUpdatesNoStream(t *testing.T) {
	b := newBus(t)
	updated := make(chan string, 16)
	sub, err := b.Conn().Subscribe("$JS.EVENT.ADVISORY.STREAM.UPDATED.>", func(m *nats.Msg) { updated <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.Provision(context.Background(), bus.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-updated:
		t.Fatalf("a second provision updated a stream: %s", s)
	case <-time.After(500 * time.Millisecond):
	}
}
