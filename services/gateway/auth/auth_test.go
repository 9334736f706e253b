package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/services/gateway/auth"
)

func TestRoleGrants(t *testing.T) {
	for _, c := range []struct {
		have, need auth.Role
		want       bool
	}{
		{auth.Viewer, auth.Viewer, true},
		{auth.Viewer, auth.Operator, false},
		{auth.Viewer, auth.Approver, false},
		{auth.Viewer, auth.Admin, false},
		{auth.Operator, auth.Viewer, true},
		{auth.Operator, auth.Operator, true},
		{auth.Operator, auth.Approver, false},
		{auth.Operator, auth.Admin, false},
		{auth.Approver, auth.Viewer, true},
		{auth.Approver, auth.Approver, true},
		{auth.Approver, auth.Operator, false},
		{auth.Approver, auth.Admin, false},
		{auth.Admin, auth.Operator, true},
		{auth.Admin, auth.Approver, true},
		{auth.Admin, auth.Admin, true},
		{"root", auth.Viewer, false},
	} {
		if got := c.have.Grants(c.need); got != c.want {
			t.Errorf("%s grants %s = %v, want %v", c.have, c.need, got, c.want)
		}
	}
}

func TestCreateListRevoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "tokens.jsonl")
	tok, e, err := auth.Create(file, "ci", []auth.Role{auth.Operator})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) < 40 {
		t.Errorf("token %q", tok)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), tok) || !strings.Contains(string(b), auth.Hash(tok)) {
		t.Errorf("file holds the token or lacks its hash:\n%s", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, err := auth.Create(file, "ci", []auth.Role{auth.Viewer}); !errors.Is(err, auth.ErrNameTaken) {
		t.Errorf("second ci: %v, want ErrNameTaken", err)
	}
	if _, _, err := auth.Create(file, "bad name", []auth.Role{auth.Viewer}); err == nil {
		t.Error("a name with a space was accepted")
	}
	toks, err := auth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := toks.Lookup(tok)
	if !ok || got.Name != "ci" || got.SHA256 != e.SHA256 || !got.May(auth.Operator) || got.May(auth.Admin) {
		t.Errorf("Lookup = %+v %v", got, ok)
	}
	for _, wrong := range []string{"", tok + "x", tok[:len(tok)-1], auth.Hash(tok)} {
		if _, ok := toks.Lookup(wrong); ok {
			t.Errorf("Lookup(%q) found a token", wrong)
		}
	}
	if err := auth.Revoke(file, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := auth.Revoke(file, "ci"); !errors.Is(err, auth.ErrNoToken) {
		t.Errorf("second revoke: %v, want ErrNoToken", err)
	}
	if err := toks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := toks.Lookup(tok); ok {
		t.Error("a revoked token still works after reload")
	}
}

// TestBadFileKeepsOldTokens: a half-edited file is reported, and the
// tokens loaded before stay in force.
func TestBadFileKeepsOldTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.jsonl")
	tok, _, err := auth.Create(file, "ci", []auth.Role{auth.Viewer})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := auth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for name, line := range map[string]string{
		"not json":     `{"name": "x"`,
		"unknown role": `{"name":"x","roles":["root"],"sha256":"` + auth.Hash("t") + `"}`,
		"no roles":     `{"name":"x","roles":[],"sha256":"` + auth.Hash("t") + `"}`,
		"short hash":   `{"name":"x","roles":["viewer"],"sha256":"abc"}`,
		"extra field":  `{"name":"x","roles":["viewer"],"sha256":"` + auth.Hash("t") + `","token":"t"}`,
	} {
		if err := os.WriteFile(file, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := toks.Reload()
		if !errors.Is(err, auth.ErrBadTokenFile) || !strings.Contains(err.Error(), ":1:") {
			t.Errorf("%s: Reload = %v, want ErrBadTokenFile at line 1", name, err)
		}
		if _, ok := toks.Lookup(tok); !ok {
			t.Errorf("%s: the previous token stopped working", name)
		}
	}
}

func TestRequire(t *testing.T) {
	view, op := "tok-viewer", "tok-operator"
	a := &auth.Authenticator{Tokens: auth.Static(
		auth.Entry{Name: "v", Roles: []auth.Role{auth.Viewer}, SHA256: auth.Hash(view)},
		auth.Entry{Name: "o", Roles: []auth.Role{auth.Operator}, SHA256: auth.Hash(op)})}
	var seen string
	h := a.Require(auth.Operator, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.CallerFrom(r.Context())
		seen = c.Actor()
	}))
	do := func(method string, mod func(r *http.Request)) int {
		r := httptest.NewRequest(method, "/x", nil)
		mod(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	bearer := func(tok string) func(r *http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	cookie := func(tok, csrf, header string) func(r *http.Request) {
		return func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: auth.CookieToken, Value: tok})
			if csrf != "" {
				r.AddCookie(&http.Cookie{Name: auth.CookieCSRF, Value: csrf})
			}
			if header != "" {
				r.Header.Set(auth.HeaderCSRF, header)
			}
		}
	}
	for _, c := range []struct {
		name   string
		method string
		mod    func(r *http.Request)
		want   int
	}{
		{"no token", "POST", func(*http.Request) {}, 401},
		{"unknown token", "POST", bearer("nope"), 401},
		{"basic scheme", "POST", func(r *http.Request) { r.SetBasicAuth("o", op) }, 401},
		{"viewer", "POST", bearer(view), 403},
		{"operator", "POST", bearer(op), 200},
		{"cookie without csrf", "POST", cookie(op, "", ""), 403},
		{"cookie with wrong csrf", "POST", cookie(op, "abc", "abd"), 403},
		{"cookie with csrf", "POST", cookie(op, "abc", "abc"), 200},
		{"cookie get needs no csrf", "GET", cookie(op, "", ""), 200},
		{"cookie of unknown token", "GET", cookie("nope", "", ""), 401},
	} {
		seen = ""
		if got := do(c.method, c.mod); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
		if c.want == 200 && seen != "api:o" {
			t.Errorf("%s: actor %q, want api:o", c.name, seen)
		}
	}
}

func TestLogin(t *testing.T) {
	a := &auth.Authenticator{Tokens: auth.Static(auth.Entry{Name: "v", Roles: []auth.Role{auth.Viewer}, SHA256: auth.Hash("tok")})}
	login := func(tok, next string) *httptest.ResponseRecorder {
		form := url.Values{"token": {tok}, "next": {next}}
		r := httptest.NewRequest("POST", "/ui/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		a.Login(w, r)
		return w
	}
	if w := login("wrong", "/ui/runs/1"); w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 0 ||
		w.Header().Get("Location") != "/ui/login?failed=1&next=%2Fui%2Fruns%2F1" {
		t.Errorf("wrong token: %d to %q, cookies %v", w.Code, w.Header().Get("Location"), w.Result().Cookies())
	}
	w := login("tok", "//evil.example/")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/" {
		t.Errorf("login: %d to %q, want 303 to /ui/", w.Code, w.Header().Get("Location"))
	}
	cookies := map[string]*http.Cookie{}
	for _, c := range w.Result().Cookies() {
		cookies[c.Name] = c
	}
	tc, cc := cookies[auth.CookieToken], cookies[auth.CookieCSRF]
	if tc == nil || tc.Value != "tok" || !tc.HttpOnly || tc.SameSite != http.SameSiteStrictMode || !tc.Secure {
		t.Errorf("token cookie %+v", tc)
	}
	if cc == nil || cc.Value == "" || cc.HttpOnly || cc.SameSite != http.SameSiteStrictMode {
		t.Errorf("csrf cookie %+v", cc)
	}
	if w := login("tok", "/ui/runs/1"); w.Header().Get("Location") != "/ui/runs/1" {
		t.Errorf("next: %q", w.Header().Get("Location"))
	}
}

// TestWatchReloads: a token created or revoked in the file works, or
// stops working, without a restart.
func TestWatchReloads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.jsonl")
	toks, err := auth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); toks.Watch(ctx, 10*time.Millisecond, func(err error) { t.Error(err) }) }()
	defer func() { cancel(); <-done }()
	tok, _, err := auth.Create(file, "late", []auth.Role{auth.Approver})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := toks.Lookup(tok); return ok })
	if err := auth.Revoke(file, "late"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, ok := toks.Lookup(tok); return !ok })
}

func waitFor(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLogoutNeedsCSRF(t *testing.T) {
	a := &auth.Authenticator{Tokens: auth.Static()}
	logout := func(cookie, field string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/ui/logout", strings.NewReader(url.Values{"csrf": {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: auth.CookieCSRF, Value: cookie})
		w := httptest.NewRecorder()
		a.Logout(w, r)
		return w
	}
	if w := logout("abc", "abd"); w.Code != 403 || len(w.Result().Cookies()) != 0 {
		t.Errorf("logout with a wrong csrf: %d", w.Code)
	}
	w := logout("abc", "abc")
	if w.Code != http.StatusSeeOther || len(w.Result().Cookies()) != 2 || w.Result().Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout: %d, cookies %v", w.Code, w.Result().Cookies())
	}
}
