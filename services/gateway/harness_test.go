package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/stack"
)

// env is one test's world: a JetStream server, the service roles the
// test asked for, and a gateway on a random port with one token per role.
type env struct {
	t      *testing.T
	url    string
	base   string
	conn   *stack.Conn
	repos  string
	tokens map[auth.Role]string
	srv    *gateway.Server
	// stopGateway stops the gateway; wait for it with gatewayDone.
	stopGateway context.CancelFunc
	gatewayDone chan error
	// doc checks every JSON response against schemas/openapi.json.
	doc *apiDoc
}

func newEnv(t *testing.T, roles ...string) *env {
	t.Helper()
	srv := natstest.Start(t)
	ctx := context.Background()
	open := func(name string) *stack.Conn {
		c, err := stack.Open(ctx, stack.Target{URL: srv.ClientURL()}, name, true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	e := &env{t: t, url: srv.ClientURL(), conn: open("test"), repos: t.TempDir(), tokens: map[auth.Role]string{}, doc: loadDoc(t)}
	if len(roles) > 0 {
		var rs []stack.Role
		for _, name := range roles {
			r, err := stack.NewRole(open(name), name, zerolog.Nop(), stack.RoleOptions{
				ReposDir: e.repos, WorkDir: t.TempDir(), Concurrency: 1, Grace: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- stack.RunRoles(rctx, rs) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	var entries []auth.Entry
	for _, r := range auth.AllRoles {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r] = tok
		entries = append(entries, auth.Entry{Name: string(r), Roles: []auth.Role{r}, SHA256: auth.Hash(tok)})
	}
	gc := open("gateway")
	s, err := gateway.New(gateway.Options{Bus: gc.Bus, Validator: gc.Validator, Tokens: auth.Static(entries...),
		Log: zerolog.Nop(), KeepAlive: 200 * time.Millisecond, CommandTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.base = s, "http://"+ln.Addr().String()
	gctx, cancel := context.WithCancel(ctx)
	e.stopGateway, e.gatewayDone = cancel, make(chan error, 1)
	go func() { e.gatewayDone <- s.Run(gctx, ln) }()
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { cancel(); <-e.gatewayDone }) })
	return e
}

// response is one HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// do sends a request with role's token ("" for none) and a JSON body
// (a string is sent as is).
func (e *env) do(method, path string, role auth.Role, body any) response {
	e.t.Helper()
	return e.doTok(method, path, e.tokens[role], body)
}

func (e *env) doTok(method, path, tok string, body any) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	r := response{res.StatusCode, res.Header, b}
	e.doc.check(e.t, method, path, r)
	return r
}

// want fails the test unless r has status.
func (e *env) want(r response, status int, what string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ id, event, data string }

// stream opens an SSE stream and delivers its events (and keep-alive
// comments as event ":") on a channel that closes when the stream ends.
func (e *env) stream(ctx context.Context, path string, role auth.Role, lastID string) <-chan sseEvent {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[role])
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("stream %s: %v", path, err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		e.t.Fatalf("stream %s: %d %s: %s", path, res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.event != "" {
					cur.data = strings.Join(data, "\n")
					out <- cur
				}
				cur, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"):
				out <- sseEvent{event: ":"}
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = append(data, line[6:])
			}
		}
	}()
	return out
}

// next waits for an event matching ok, failing after a generous deadline.
func (e *env) next(ch <-chan sseEvent, what string, ok func(sseEvent) bool) sseEvent {
	e.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				e.t.Fatalf("stream ended waiting for %s", what)
			}
			if ok(ev) {
				return ev
			}
		case <-deadline:
			e.t.Fatalf("no %s within 60s", what)
		}
	}
}

// eventually polls f until it returns true or a generous deadline passes.
func (e *env) eventually(what string, f func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// repo makes a git repository under the repos directory.
func (e *env) repo(name string, files map[string]string) {
	e.t.Helper()
	dir := filepath.Join(e.repos, name)
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "--quiet", "--initial-branch=main"}, {"add", "--all"}, {"commit", "--quiet", "-m", "test"}} {
		if err := stack.Git(context.Background(), dir, args...); err != nil {
			e.t.Fatal(err)
		}
	}
}
