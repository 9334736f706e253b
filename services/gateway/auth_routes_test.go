package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// fill puts a valid name into every {wildcard} of a route pattern.
func fill(path string) string {
	r := strings.NewReplacer("{pipeline}", "p", "{stage}", "s", "{action}", "a", "{run}", "r1",
		"{name}", "n", "{deployment}", "d1", "{group}", "g")
	return r.Replace(path)
}

// TestEveryRouteAuth: every route refuses a missing or unknown token with
// 401 and each role that may not use it with 403, and lets through each
// role that may (whatever it then answers); /openapi.json and /healthz
// need no token.
func TestEveryRouteAuth(t *testing.T) {
	e := newEnv(t)
	routes := e.srv.Routes()
	if len(routes) < 27 {
		t.Fatalf("%d routes, want the contract's 27", len(routes))
	}
	for _, rt := range routes {
		path := fill(rt.Path)
		name := rt.Method + " " + rt.Path
		if rt.Role == "" {
			if r := e.do(rt.Method, path, "", nil); r.status != 200 {
				t.Errorf("%s without a token: %d, want 200", name, r.status)
			}
			continue
		}
		if r := e.do(rt.Method, path, "", nil); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s without a token: %d, want 401 with WWW-Authenticate", name, r.status)
		}
		if r := e.doTok(rt.Method, path, "gantry_wrong", nil); r.status != 401 {
			t.Errorf("%s with a wrong token: %d, want 401", name, r.status)
		}
		for _, role := range auth.AllRoles {
			r := e.do(rt.Method, path, role, nil)
			switch {
			case role.Grants(rt.Role) && (r.status == 401 || r.status == 403):
				t.Errorf("%s as %s: %d, want it let through: %s", name, role, r.status, r.body)
			case !role.Grants(rt.Role) && r.status != 403:
				t.Errorf("%s as %s: %d, want 403", name, role, r.status)
			}
			if r.status == 403 || r.status == 401 {
				var body struct{ Error, Hint string }
				r.json(t, &body)
				if body.Error == "" || body.Hint == "" {
					t.Errorf("%s as %s: error body %s lacks error or hint", name, role, r.body)
				}
			}
		}
	}
	// The contract's role table, spelled out once more so a slip in the
	// route table shows up here.
	want := map[string]auth.Role{
		"PUT /api/v1/pipelines/{pipeline}":                         auth.Admin,
		"POST /api/v1/pipelines/{pipeline}/runs":                   auth.Operator,
		"POST /api/v1/runs/{run}/stop":                             auth.Operator,
		"POST /api/v1/runs/{run}/retry":                            auth.Operator,
		"POST /api/v1/runs/{run}/approve":                          auth.Approver,
		"POST /api/v1/runs/{run}/reject":                           auth.Approver,
		"POST /api/v1/groups/{group}/rollback":                     auth.Operator,
		"POST /api/v1/pipelines/{pipeline}/rollback":               auth.Operator,
		"GET /api/v1/runs/{run}/artifacts/{name}":                  auth.Viewer,
		"POST /api/v1/pipelines/validate":                          auth.Viewer,
		"GET /api/v1/runs/{run}/events":                            auth.Viewer,
		"POST /api/v1/pipelines/{pipeline}/stages/{stage}/disable": auth.Operator,
		"GET /api/v1/groups/{group}":                               auth.Viewer,
		"PUT /api/v1/groups/{group}":                               auth.Admin,
	}
	served := map[string]bool{}
	for _, rt := range routes {
		served[rt.Method+" "+rt.Path] = true
		if w, ok := want[rt.Method+" "+rt.Path]; ok && w != rt.Role {
			t.Errorf("%s %s needs %s, want %s", rt.Method, rt.Path, rt.Role, w)
		}
	}
	// A route missing from the table would pass the loop above unchecked.
	for key := range want {
		if !served[key] {
			t.Errorf("%s is not served", key)
		}
	}
}

// TestCookieLogin: a browser logs in with a form, then reads with the
// HttpOnly cookie alone; a state-changing request by cookie needs the
// CSRF header equal to the CSRF cookie.
func TestCookieLogin(t *testing.T) {
	e := newEnv(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.PostForm(e.base+"/ui/login", url.Values{"token": {e.tokens[auth.Operator]}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	var tok, csrf *http.Cookie
	for _, c := range res.Cookies() {
		switch c.Name {
		case auth.CookieToken:
			tok = c
		case auth.CookieCSRF:
			csrf = c
		}
	}
	if tok == nil || csrf == nil || !tok.HttpOnly || tok.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies %v", res.Cookies())
	}
	send := func(method, path, header string) int {
		req, _ := http.NewRequest(method, e.base+path, strings.NewReader("{}"))
		req.AddCookie(tok)
		req.AddCookie(csrf)
		if header != "" {
			req.Header.Set(auth.HeaderCSRF, header)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := send("GET", "/api/v1/runs", ""); got != 200 {
		t.Errorf("GET by cookie: %d", got)
	}
	if got := send("POST", "/api/v1/runs/r1/stop", ""); got != 403 {
		t.Errorf("POST by cookie without CSRF header: %d, want 403", got)
	}
	if got := send("POST", "/api/v1/runs/r1/stop", "wrong"); got != 403 {
		t.Errorf("POST by cookie with a wrong CSRF header: %d, want 403", got)
	}
	if got := send("POST", "/api/v1/runs/r1/stop", csrf.Value); got != 404 {
		t.Errorf("POST by cookie with the CSRF header: %d, want 404 (no such run)", got)
	}
	if r := e.do("GET", "/api/v1/nothing", auth.Viewer, nil); r.status != 404 || !strings.Contains(string(r.body), `"error"`) {
		t.Errorf("unknown API path: %d %s", r.status, r.body)
	}
}
