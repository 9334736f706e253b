package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// TestGatewayCommand runs `gantry gateway` in-process against a server
// and a token file: it answers /healthz without a token and the API only
// with one, picks up a token created while it runs, and stops cleanly.
func TestGatewayCommand(t *testing.T) {
	srv := natstest.Start(t)
	natstest.Bus(t, srv.ClientURL()) // provisions the streams and buckets
	file := filepath.Join(t.TempDir(), "tokens.jsonl")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() {
		g := &globals{stdout: &out, stderr: &errb}
		root := newRoot(g)
		root.SetArgs([]string{"--nats", srv.ClientURL(), "--log-format", "json", "gateway", "--listen", addr, "--tokens", file})
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		done <- root.ExecuteContext(ctx)
	}()
	get := func(path, tok string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	waitUntil(t, func() bool { return get("/healthz", "") == 200 })
	if got := get("/api/v1/runs", ""); got != 401 {
		t.Errorf("no token: %d", got)
	}
	tok, _, err := auth.Create(file, "late", []auth.Role{auth.Viewer})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return get("/api/v1/runs", tok) == 200 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gateway: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not stop")
	}
}

func waitUntil(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
