package chatops_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/chatops"
	"github.com/gantry-ci/gantry/services/command"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

var now = time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)

// fakes record what the handler asked for.
type fakes struct {
	// hold, when set, blocks Do until it is closed.
	hold     chan struct{}
	verb     string
	req      command.Request
	started  []string
	actor    string
	vars     map[string]string
	rolled   string
	latest   run.State
	doErr    error
	startErr error
}

func (f *fakes) Do(ctx context.Context, verb string, req command.Request) (command.Reply, error) {
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return command.Reply{}, ctx.Err()
		}
	}
	f.verb, f.req = verb, req
	if f.doErr != nil {
		return command.Reply{Error: f.doErr.Error()}, f.doErr
	}
	return command.Reply{Run: req.Run, Stage: "Approve", Phase: run.Running}, nil
}

func (f *fakes) Start(_ context.Context, pipeline string, vars map[string]string, actor string) (string, error) {
	if f.startErr != nil {
		return "", f.startErr
	}
	f.started, f.vars, f.actor = append(f.started, pipeline), vars, actor
	return "0193a1b2-run", nil
}

func (f *fakes) Latest(_ context.Context, pipeline string) (run.State, error) {
	if f.latest.Pipeline != pipeline {
		return run.State{}, chatops.ErrNoRuns
	}
	return f.latest, nil
}

func (f *fakes) Rollback(_ context.Context, group, actor string) (events.DeploymentCreated, error) {
	f.rolled, f.actor = group, actor
	return events.DeploymentCreated{Deployment: "dep-2", Group: group, Revision: events.ArtifactRef{Name: "app"}}, nil
}

var users = chatops.Users{
	"UVIEW":  {chatops.RoleViewer},
	"UOPS":   {chatops.RoleOperator},
	"UAPPR":  {chatops.RoleApprover},
	"UADMIN": {chatops.RoleAdmin},
}

func newHandler(t *testing.T, f *fakes) *chatops.Slack {
	t.Helper()
	h, err := chatops.SlackHandler(chatops.Config{SigningSecret: secret, Users: users, BaseURL: "https://gantry.example.com/",
		// Replies inline however slow the machine: the deferred path has its own test.
		Defer: time.Minute, Now: func() time.Time { return now }, Log: zerolog.Nop()}, chatops.Deps{Commands: f, Runs: f, Rollbacks: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func form(user, text string) []byte {
	return []byte(url.Values{"command": {"/gantry"}, "user_id": {user}, "user_name": {"alice"}, "text": {text},
		"team_id": {"T1"}, "response_url": {"https://hooks.slack.com/commands/x"}}.Encode())
}

// post sends a slash command signed at ts with key.
func post(t *testing.T, h http.Handler, key string, ts time.Time, body []byte) (int, chatops.Response) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/chatops/slack", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	stamp := strconv.FormatInt(ts.Unix(), 10)
	r.Header.Set(chatops.HeaderTimestamp, stamp)
	r.Header.Set(chatops.HeaderSignature, chatops.Sign(key, stamp, body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var resp chatops.Response
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("reply %q: %v", w.Body.String(), err)
		}
	}
	return w.Code, resp
}

// TestSign checks Sign against the example in Slack's documentation
// ("Verifying requests from Slack").
func TestSign(t *testing.T) {
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	got := chatops.Sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", []byte(body))
	if want := "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestSignatureAndReplayWindow(t *testing.T) {
	f := &fakes{latest: run.State{Run: "r1", Pipeline: "hello", Phase: run.Running}}
	h := newHandler(t, f)
	body := form("UVIEW", "status hello")
	for _, tc := range []struct {
		name string
		key  string
		ts   time.Time
		want int
	}{
		{"signed now", secret, now, http.StatusOK},
		{"signed 4 minutes ago", secret, now.Add(-4 * time.Minute), http.StatusOK},
		{"wrong secret", "not-the-secret", now, http.StatusUnauthorized},
		{"replayed: 6 minutes old", secret, now.Add(-6 * time.Minute), http.StatusUnauthorized},
		{"from the future", secret, now.Add(6 * time.Minute), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := post(t, h, tc.key, tc.ts, body); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}

	t.Run("body changed after signing", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/chatops/slack", strings.NewReader(string(form("UADMIN", "rollback prod"))))
		stamp := strconv.FormatInt(now.Unix(), 10)
		r.Header.Set(chatops.HeaderTimestamp, stamp)
		r.Header.Set(chatops.HeaderSignature, chatops.Sign(secret, stamp, body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || f.rolled != "" {
			t.Fatalf("status %d, rolled back %q", w.Code, f.rolled)
		}
	})
	t.Run("no signature", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/chatops/slack", strings.NewReader(string(body)))
		r.Header.Set(chatops.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", w.Code)
		}
	})
	t.Run("timestamp re-signed by an attacker without the secret", func(t *testing.T) {
		// An old request's signature does not cover a new timestamp.
		old := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
		r := httptest.NewRequest(http.MethodPost, "/chatops/slack", strings.NewReader(string(body)))
		r.Header.Set(chatops.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		r.Header.Set(chatops.HeaderSignature, chatops.Sign(secret, old, body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", w.Code)
		}
	})
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		user, text string
		allowed    bool
	}{
		{"UNOBODY", "status hello", false},
		{"UVIEW", "status hello", true},
		{"UVIEW", "run hello", false},
		{"UVIEW", "approve r1", false},
		{"UOPS", "run hello", true},
		{"UOPS", "rollback prod", true},
		{"UOPS", "approve r1", false},
		{"UAPPR", "approve r1", true},
		{"UAPPR", "reject r1", true},
		{"UAPPR", "run hello", false},
		{"UAPPR", "rollback prod", false},
		{"UADMIN", "run hello", true},
		{"UADMIN", "approve r1", true},
		{"UADMIN", "rollback prod", true},
	} {
		t.Run(tc.user+" "+tc.text, func(t *testing.T) {
			f := &fakes{latest: run.State{Run: "r1", Pipeline: "hello", Phase: run.Running}}
			code, resp := post(t, newHandler(t, f), secret, now, form(tc.user, tc.text))
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			acted := f.verb != "" || len(f.started) > 0 || f.rolled != "" || strings.Contains(resp.Text, "*hello* run")
			if acted != tc.allowed {
				t.Fatalf("acted %v, want %v; reply %q", acted, tc.allowed, resp.Text)
			}
			if !tc.allowed {
				if resp.ResponseType != chatops.Ephemeral {
					t.Errorf("a refusal is %q, want ephemeral", resp.ResponseType)
				}
				want := "needs the role"
				if tc.user == "UNOBODY" {
					want = "not a Gantry user"
				}
				if !strings.Contains(resp.Text, want) {
					t.Errorf("refusal %q does not say %q", resp.Text, want)
				}
			}
		})
	}
}

func TestCommands(t *testing.T) {
	t.Run("run with variables", func(t *testing.T) {
		f := &fakes{}
		_, resp := post(t, newHandler(t, f), secret, now, form("UOPS", "run hello GREETING=hi TARGET=a=b"))
		if len(f.started) != 1 || f.started[0] != "hello" || f.vars["GREETING"] != "hi" || f.vars["TARGET"] != "a=b" {
			t.Fatalf("started %v with %v", f.started, f.vars)
		}
		if f.actor != "slack:UOPS" {
			t.Errorf("actor %q", f.actor)
		}
		if resp.ResponseType != chatops.InChannel || !strings.Contains(resp.Text, "<https://gantry.example.com/runs/0193a1b2-run|0193a1b2-run>") {
			t.Errorf("reply %+v", resp)
		}
	})
	t.Run("approve with stage, action and comment", func(t *testing.T) {
		f := &fakes{}
		_, resp := post(t, newHandler(t, f), secret, now, form("UAPPR", "approve r1 stage=Prod action=gate looks good"))
		want := command.Request{Run: "r1", Stage: "Prod", Action: "gate", Comment: "looks good", Actor: "slack:UAPPR"}
		if f.verb != command.Approve || f.req != want {
			t.Fatalf("sent %s %+v, want %+v", f.verb, f.req, want)
		}
		if !strings.Contains(resp.Text, "approved run <https://gantry.example.com/runs/r1|r1>") {
			t.Errorf("reply %q", resp.Text)
		}
	})
	t.Run("a refused reject is ephemeral with the reason", func(t *testing.T) {
		f := &fakes{doErr: errors.New("no approval is waiting")}
		_, resp := post(t, newHandler(t, f), secret, now, form("UAPPR", "reject r1"))
		if f.verb != command.Reject || resp.ResponseType != chatops.Ephemeral || !strings.Contains(resp.Text, "no approval is waiting") {
			t.Fatalf("%s: %+v", f.verb, resp)
		}
	})
	t.Run("free text is escaped", func(t *testing.T) {
		f := &fakes{}
		_, resp := post(t, newHandler(t, f), secret, now, form("UAPPR", "approve r1 <!channel> & <https://evil|click>"))
		if f.req.Comment != "<!channel> & <https://evil|click>" || !strings.HasSuffix(resp.Text, ": &lt;!channel&gt; &amp; &lt;https://evil|click&gt;") {
			t.Fatalf("comment %q, reply %q", f.req.Comment, resp.Text)
		}
	})
	t.Run("status", func(t *testing.T) {
		f := &fakes{latest: run.State{Run: "r9", Pipeline: "hello", Phase: run.Failed, Reason: "build failed",
			Stages: []run.Stage{{Name: "Build", Phase: run.Failed}, {Name: "Deploy"}}}}
		_, resp := post(t, newHandler(t, f), secret, now, form("UVIEW", "status hello"))
		for _, want := range []string{"<https://gantry.example.com/runs/r9|r9>", "*Failed*", "build failed", "• Build: Failed", "• Deploy: -"} {
			if !strings.Contains(resp.Text, want) {
				t.Errorf("status %q lacks %q", resp.Text, want)
			}
		}
	})
	t.Run("rollback", func(t *testing.T) {
		f := &fakes{}
		_, resp := post(t, newHandler(t, f), secret, now, form("UOPS", "rollback prod"))
		if f.rolled != "prod" || f.actor != "slack:UOPS" || !strings.Contains(resp.Text, "dep-2") {
			t.Fatalf("rolled %q as %q: %q", f.rolled, f.actor, resp.Text)
		}
	})
	t.Run("bad input names the field", func(t *testing.T) {
		for text, want := range map[string]string{
			"status":               "Usage: `status PIPELINE`",
			"status ../etc":        `pipeline "../etc"`,
			"run hello NOEQUALS":   `variable "NOEQUALS"`,
			"rollback a b":         "Usage: `rollback GROUP`",
			"frobnicate":           "Unknown command `frobnicate`",
			"":                     "Commands:",
			"help":                 "`rollback GROUP`",
			"rollback bad.group.x": `deployment group "bad.group.x"`,
			"approve <!channel>":   `run "&lt;!channel&gt;"`,
		} {
			_, resp := post(t, newHandler(t, &fakes{}), secret, now, form("UADMIN", text))
			if resp.ResponseType != chatops.Ephemeral || !strings.Contains(resp.Text, want) {
				t.Errorf("%q: %+v, want %q", text, resp, want)
			}
		}
	})
}

func TestParseUsers(t *testing.T) {
	u, err := chatops.ParseUsers([]byte("users:\n  U1: [operator, approver]\n"))
	if err != nil || len(u["U1"]) != 2 {
		t.Fatalf("%v %v", u, err)
	}
	for doc, want := range map[string]string{
		"users:\n  U1: [owner]\n":        `users.U1[0]: unknown role "owner"`,
		"users:\n  U1: []\n":             "users.U1: no roles",
		"people:\n  U1: [viewer]\n":      "unknown field",
		"users:\n  U1: [viewer, boss]\n": `users.U1[1]`,
	} {
		_, err := chatops.ParseUsers([]byte(doc))
		if err == nil || !errors.Is(err, chatops.ErrBadUsers) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := chatops.Config{BaseURL: "ftp://x"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "signing secret") || !strings.Contains(err.Error(), "base URL") {
		t.Fatalf("%v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	sf, uf := filepath.Join(dir, "secret"), filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(sf, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uf, []byte("users:\n  U1: [approver]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := chatops.LoadConfig(sf, uf, "https://gantry.example.com")
	if err != nil || cfg.SigningSecret != secret || cfg.Users["U1"][0] != chatops.RoleApprover {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := chatops.LoadConfig(filepath.Join(dir, "none"), filepath.Join(dir, "none.yaml"), ""); err == nil ||
		!strings.Contains(err.Error(), "signing secret") || !strings.Contains(err.Error(), "none.yaml") {
		t.Fatalf("missing files: %v", err)
	}
}

// TestDeferredReply: a command slower than Defer is acknowledged at once
// and its reply posted to the response_url; one without an allowed
// response_url is answered inline however long it takes.
func TestDeferredReply(t *testing.T) {
	got := make(chan chatops.Response, 1)
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resp chatops.Response
		_ = json.NewDecoder(r.Body).Decode(&resp)
		got <- resp
	}))
	t.Cleanup(slack.Close)
	f := &fakes{hold: make(chan struct{})}
	h, err := chatops.SlackHandler(chatops.Config{SigningSecret: secret, Users: users, Now: func() time.Time { return now },
		Defer: 20 * time.Millisecond, Log: zerolog.Nop(),
		ResponseURLAllowed: func(u *url.URL) bool { return "http://"+u.Host == slack.URL }},
		chatops.Deps{Commands: f, Runs: f, Rollbacks: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	body := []byte(url.Values{"command": {"/gantry"}, "user_id": {"UAPPR"}, "text": {"approve r1 ok"},
		"response_url": {slack.URL + "/commands/T1/1/x"}}.Encode())
	_, resp := post(t, h, secret, now, body)
	if resp.ResponseType != chatops.Ephemeral || !strings.Contains(resp.Text, "Working on `approve r1 ok`") {
		t.Fatalf("acknowledgement %+v", resp)
	}
	close(f.hold) // the conductor answers only now
	select {
	case late := <-got:
		if late.ResponseType != chatops.InChannel || !strings.Contains(late.Text, "approved run `r1`") {
			t.Fatalf("deferred reply %+v", late)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no deferred reply")
	}

	// A response_url elsewhere is never posted to: the reply comes inline
	// however long the command takes.
	f = &fakes{hold: make(chan struct{})}
	time.AfterFunc(100*time.Millisecond, func() { close(f.hold) })
	body = []byte(url.Values{"command": {"/gantry"}, "user_id": {"UAPPR"}, "text": {"approve r2"},
		"response_url": {"http://169.254.169.254/latest"}}.Encode())
	h2, err := chatops.SlackHandler(chatops.Config{SigningSecret: secret, Users: users, Now: func() time.Time { return now },
		Defer: 20 * time.Millisecond, Log: zerolog.Nop()}, chatops.Deps{Commands: f, Runs: f, Rollbacks: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h2.Close)
	if _, resp := post(t, h2, secret, now, body); !strings.Contains(resp.Text, "approved run `r2`") {
		t.Fatalf("inline reply %+v", resp)
	}
}
