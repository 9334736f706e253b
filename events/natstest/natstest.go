// Package natstest starts one embedded JetStream server per test, on a random
// loopback port with a temporary data directory, and stops it when the test
// ends.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natsd"
)

// Server is a test's own JetStream server.
type Server struct {
	*natsd.Server
	DataDir string
}

// Start runs a fresh server for t.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	s, err := natsd.Start(natsd.Options{DataDir: dir, Port: -1})
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return &Server{Server: s, DataDir: dir}
}

// Bus connects a validating, provisioned bus client to url for t, closed
// when the test ends.
func Bus(t testing.TB, url string) *bus.Bus {
	t.Helper()
	b := connect(t, url)
	if err := b.Provision(context.Background(), bus.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return b
}

// ClusterBus is Bus for the servers of StartCluster: it connects to all of
// them and retries provisioning for up to a minute, since a fresh
// cluster's peers may still show offline to placement for a moment after
// it can place a stream (as a service restarting would retry).
func ClusterBus(t testing.TB, servers []*Server) *bus.Bus {
	t.Helper()
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	b := connect(t, strings.Join(urls, ","))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		err := b.Provision(context.Background(), bus.Config{})
		if err == nil {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("provision: %v", err)
		}
	}
}

// connect opens a validating bus client on url for t, unprovisioned.
func connect(t testing.TB, url string) *bus.Bus {
	t.Helper()
	nc, err := bus.Connect(url, t.Name())
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(nc, codec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// StartCluster runs a JetStream cluster of n servers for t, each on random
// loopback client and route ports with its own data directory, and waits
// until its meta group has a leader. The servers stop when t ends; a test
// may Shutdown one earlier to lose a node.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	name := fmt.Sprintf("gantry-test-%d", ports[0])
	servers := make([]*Server, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range servers {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		dir := t.TempDir()
		wg.Go(func() {
			s, err := natsd.Start(natsd.Options{
				DataDir: dir, Port: -1, ServerName: fmt.Sprintf("n%d", i+1),
				Cluster: natsd.Cluster{Name: name, Port: ports[i], Routes: routes},
			})
			if err != nil {
				errs[i] = err
				return
			}
			servers[i] = &Server{Server: s, DataDir: dir}
		})
	}
	wg.Wait()
	for i, s := range servers {
		if s != nil {
			t.Cleanup(s.Shutdown)
		} else {
			t.Fatalf("start cluster node %d: %v", i+1, errs[i])
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, s := range servers {
			ready = ready && s.JetStreamReady()
		}
		if ready && placeable(servers[0].ClientURL(), n) {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster: no JetStream meta leader within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// placeable reports whether the cluster can place an R-n stream yet: the
// meta leader is elected before every peer has reported in, and until
// they have, provisioning R3 fails with "no suitable peers for placement".
func placeable(url string, n int) bool {
	nc, err := nats.Connect(url)
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "NATSTEST_READY", Subjects: []string{"natstest.ready"},
		Storage: jetstream.MemoryStorage, Replicas: n}); err != nil {
		return false
	}
	return js.DeleteStream(ctx, "NATSTEST_READY") == nil
}
