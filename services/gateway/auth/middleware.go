package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Cookie and header names of the browser path.
const (
	// CookieToken holds the token itself, HttpOnly, for browsers
	// (EventSource cannot send an Authorization header).
	CookieToken = "gantry_token"
	// CookieCSRF holds a random value that scripts may read and must echo
	// in HeaderCSRF on state-changing requests (double submit).
	CookieCSRF = "gantry_csrf"
	// HeaderCSRF carries the CSRF cookie's value.
	HeaderCSRF = "X-Gantry-CSRF"
)

// Caller is who made a request.
type Caller struct {
	Entry
	// Cookie is true when the token came from the browser cookie.
	Cookie bool
}

// Actor is how the caller is named in the events its commands produce.
func (c Caller) Actor() string { return "api:" + c.Name }

type callerKey struct{}

// WithCaller returns ctx carrying c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller a Require middleware put in ctx.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Authenticator checks requests against Tokens.
type Authenticator struct {
	Tokens *Tokens
	// Insecure leaves the Secure attribute off the cookies it sets, for
	// plain-HTTP listeners on localhost (gantry dev).
	Insecure bool
}

// Identify returns the caller of r, or false. A bearer header wins over
// the cookie.
func (a *Authenticator) Identify(r *http.Request) (Caller, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return Caller{}, false
		}
		e, ok := a.Tokens.Lookup(strings.TrimSpace(tok))
		return Caller{Entry: e}, ok
	}
	if c, err := r.Cookie(CookieToken); err == nil {
		e, ok := a.Tokens.Lookup(c.Value)
		return Caller{Entry: e, Cookie: true}, ok
	}
	return Caller{}, false
}

// safeMethod: requests that change nothing and need no CSRF check.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// CSRFOK reports whether a cookie-authenticated request passes the
// double-submit check: safe methods always do; others need HeaderCSRF
// equal to the CSRF cookie.
func CSRFOK(r *http.Request) bool {
	if safeMethod(r.Method) {
		return true
	}
	c, err := r.Cookie(CookieCSRF)
	h := r.Header.Get(HeaderCSRF)
	if err != nil || c.Value == "" || h == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(h)) == 1
}

// Require wraps h: 401 without a known token, 403 when the token's roles
// do not grant need or a cookie request fails the CSRF check; otherwise h
// runs with the Caller in the request's context.
func (a *Authenticator) Require(need Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := a.Identify(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
			WriteError(w, http.StatusUnauthorized, "missing or unknown token",
				"send Authorization: Bearer <token>; create one with `gantry token create --role viewer --name NAME`")
			return
		}
		if c.Cookie && !CSRFOK(r) {
			WriteError(w, http.StatusForbidden, "missing or wrong "+HeaderCSRF+" header",
				"a request authenticated by the "+CookieToken+" cookie must send the "+CookieCSRF+" cookie's value in "+HeaderCSRF)
			return
		}
		if !c.May(need) {
			WriteError(w, http.StatusForbidden, "token "+c.Name+" may not do this: it needs the "+string(need)+" role",
				"create a token with that role: `gantry token create --role "+string(need)+" --name NAME`")
			return
		}
		h.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
	})
}

// Error is the JSON body of every error response.
type Error struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

// WriteError writes an Error with status.
func WriteError(w http.ResponseWriter, status int, msg, hint string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Error{Error: msg, Hint: hint})
}

// Login serves POST /ui/login: the form field token, if known, is set as
// the HttpOnly token cookie together with a fresh CSRF cookie, and the
// browser is sent to the form field next (a local path) or /ui/. An
// unknown token sends it back to the login page with ?failed=1, which the
// UI shows as a fixed message.
func (a *Authenticator) Login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		WriteError(w, http.StatusBadRequest, "bad login form: "+err.Error(), "send the token as the form field token")
		return
	}
	next := localPath(r.PostForm.Get("next"))
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	if _, ok := a.Tokens.Lookup(tok); !ok {
		http.Redirect(w, r, "/ui/login?failed=1&next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		WriteError(w, http.StatusInternalServerError, "random: "+err.Error(), "")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieToken, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: !a.Insecure})
	http.SetCookie(w, &http.Cookie{Name: CookieCSRF, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		SameSite: http.SameSiteStrictMode, Secure: !a.Insecure})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// Logout serves POST /ui/logout: it clears both cookies. The form field
// csrf (or the X-Gantry-CSRF header) must equal the CSRF cookie, so that
// another site cannot sign a user out.
func (a *Authenticator) Logout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(CookieCSRF)
	got := r.Header.Get(HeaderCSRF)
	if got == "" {
		got = r.FormValue("csrf")
	}
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) != 1 {
		WriteError(w, http.StatusForbidden, "missing or wrong CSRF value", "send the "+CookieCSRF+" cookie's value as the form field csrf")
		return
	}
	for _, n := range []string{CookieToken, CookieCSRF} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, HttpOnly: n == CookieToken,
			SameSite: http.SameSiteStrictMode, Secure: !a.Insecure})
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// localPath keeps a redirect on this site: a path, not a scheme-relative
// //host or a URL.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") || strings.ContainsAny(p, "\r\n") {
		return "/ui/"
	}
	return p
}
