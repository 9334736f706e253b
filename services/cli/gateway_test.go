package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens.jsonl")
	secret, users := filepath.Join(dir, "slack-secret"), filepath.Join(dir, "slack-users.yaml")
	if err := os.WriteFile(secret, []byte("8f742231b10e8888abcd99yyyzzz85a5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, []byte("users:\n  U012ABCDEF: [viewer]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
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
		root.SetArgs([]string{"--nats", srv.ClientURL(), "--log-format", "json", "gateway", "--listen", addr, "--tokens", file,
			"--slack-signing-secret-file", secret, "--slack-users", users})
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
	// The same process serves the web UI and, with a signing secret, the
	// Slack slash commands, which refuse an unsigned request.
	if got := get("/", tok); got != 200 {
		t.Errorf("web UI at /: %d", got)
	}
	res, err := http.Post("http://"+addr+"/chatops/slack", "application/x-www-form-urlencoded", strings.NewReader("command=/gantry&text=help&user_id=U012ABCDEF"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned slash command: %d, want 401", res.StatusCode)
	}
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

// TestReloadOnHUP: SIGHUP rereads the token file at once.
func TestReloadOnHUP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.jsonl")
	toks, err := auth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 10)
	stop := reloadOnHUP(context.Background(), toks, func(err error) { reloaded <- err })
	defer stop()
	tok, _, err := auth.Create(file, "hup", []auth.Role{auth.Viewer})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := toks.Lookup(tok); ok {
		t.Fatal("known before any reload")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no reload")
	}
	if _, ok := toks.Lookup(tok); !ok {
		t.Error("not known after SIGHUP")
	}
}
