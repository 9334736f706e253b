// Package natstest starts one embedded JetStream server per test, on a random
// loopback port with a temporary data directory, and stops it when the test
// ends.
package natstest

import (
	"context"
	"testing"

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
	if err := b.Provision(context.Background(), bus.Config{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return b
}
