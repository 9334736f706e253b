// Package natstest starts one embedded JetStream server per test, on a random
// loopback port with a temporary data directory, and stops it when the test
// ends.
package natstest

import (
	"testing"

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
