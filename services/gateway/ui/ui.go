// Package ui is Gantry's web UI: server-rendered pages (Go html/templates)
// with a little plain JavaScript for live updates, all embedded in the
// binary. The gateway mounts Handler at "/" and "/ui/". Pages read through
// a Reader; the buttons and the live parts call the gateway's JSON API
// (/api/v1/...) from the browser with the session cookie and the CSRF
// header, so the UI holds no write path of its own.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/lanes"
)

//go:embed templates static
var files embed.FS

// Config is what Handler needs.
type Config struct {
	Reader Reader
	// Authenticate checks a token and returns the caller's name. When set,
	// pages require a valid token (the gantry_token cookie, or a bearer
	// header) and send others to the sign-in form. Nil leaves it to
	// whatever wraps the handler. The form posts to POST /ui/login, which
	// the gateway serves (services/gateway/auth sets the token and CSRF
	// cookies), as it does POST /ui/logout.
	Authenticate func(ctx context.Context, token string) (name string, err error)
	Log          zerolog.Logger
	// Now is the clock for running durations; nil is time.Now.
	Now func() time.Time
	// PageSize is the default number of runs per history page (50).
	PageSize int
}

// MaxPageSize bounds ?limit= on the run history.
const MaxPageSize = 200

type server struct {
	cfg   Config
	pages map[string]*template.Template
}

// Handler serves the UI. It parses the embedded templates, which are part
// of the binary, so an error here is a programming error and panics.
func Handler(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	s := &server{cfg: cfg, pages: map[string]*template.Template{}}
	for _, p := range []string{"pipelines", "runs", "run", "deployments", "deployment", "login", "error"} {
		t := template.Must(template.New(p).Funcs(s.funcs()).ParseFS(files, "templates/base.html", "templates/graph.html", "templates/"+p+".html"))
		s.pages[p] = t
	}
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusFound) })
	mux.HandleFunc("GET /ui/login", s.loginPage)
	mux.HandleFunc("GET /ui/{$}", s.auth(s.pipelinesPage))
	mux.HandleFunc("GET /ui/pipelines/{pipeline}", s.auth(s.runsPage))
	mux.HandleFunc("GET /ui/runs/{run}", s.auth(s.runPage))
	mux.HandleFunc("GET /ui/runs/{run}/live", s.auth(s.runLive))
	mux.HandleFunc("GET /ui/deployments", s.auth(s.deploymentsPage))
	mux.HandleFunc("GET /ui/deployments/{deployment}", s.auth(s.deploymentPage))
	return securityHeaders(mux)
}

// securityHeaders keeps the pages to their own origin: no external assets,
// no framing, inline scripts refused.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

// auth sends a caller without a valid token to the login page.
func (s *server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Authenticate == nil {
			h(w, r)
			return
		}
		tok := tokenOf(r)
		name, err := "", errors.New("no token")
		if tok != "" {
			name, err = s.cfg.Authenticate(r.Context(), tok)
		}
		if err != nil {
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, name)))
	}
}

func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	}
	if c, err := r.Cookie(auth.CookieToken); err == nil {
		return c.Value
	}
	return ""
}

// page is what every template gets.
type page struct {
	Title string
	User  string
	CSRF  string
	Now   time.Time
	Data  any
}

func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	p := page{Title: title, Now: s.cfg.Now(), Data: data}
	p.User, _ = r.Context().Value(ctxKey{}).(string)
	if c, err := r.Cookie(auth.CookieCSRF); err == nil {
		p.CSRF = c.Value
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.pages[name].ExecuteTemplate(w, "base", p); err != nil {
		s.cfg.Log.Error().Err(err).Str("page", name).Msg("render page")
	}
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	} else {
		s.cfg.Log.Error().Err(err).Str("what", what).Msg("ui read")
	}
	s.render(w, r, status, "error", "Error", map[string]string{"What": what, "Error": err.Error()})
}

// loginPage is the sign-in form. ?failed=1 (where a login handler sends a
// browser back after refusing its token) shows a fixed message: never text
// from the query, which anyone could put in a link.
func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	d := map[string]string{"Next": safeNext(r.URL.Query().Get("next"))}
	if r.URL.Query().Get("failed") != "" {
		d["Error"] = "That token is not valid."
	}
	s.render(w, r, http.StatusOK, "login", "Sign in", d)
}

// safeNext keeps the redirect after login on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.Contains(n, "\\") {
		return "/ui/"
	}
	return n
}

func (s *server) pipelinesPage(w http.ResponseWriter, r *http.Request) {
	ps, err := s.cfg.Reader.Pipelines(r.Context())
	if err != nil {
		s.fail(w, r, "pipelines", err)
		return
	}
	s.render(w, r, http.StatusOK, "pipelines", "Pipelines", ps)
}

type runsData struct {
	Pipeline string
	Page     RunsPage
	Limit    int
	Cursor   string
	// Stages are the pipeline's transitions; nil when they cannot be read
	// (the history still shows).
	Stages *lanes.Stages
	// Waits maps each run waiting before a stage to that stage.
	Waits map[string]string
}

func (s *server) runsPage(w http.ResponseWriter, r *http.Request) {
	p := r.PathValue("pipeline")
	limit := s.cfg.PageSize
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			s.render(w, r, http.StatusBadRequest, "error", "Error", map[string]string{"What": "limit", "Error": fmt.Sprintf("limit %q: want a number from 1 to %d", l, MaxPageSize)})
			return
		}
		limit = min(n, MaxPageSize)
	}
	cursor := r.URL.Query().Get("cursor")
	pg, err := s.cfg.Reader.Runs(r.Context(), p, limit, cursor)
	if err != nil {
		s.fail(w, r, "runs of "+p, err)
		return
	}
	d := runsData{Pipeline: p, Page: pg, Limit: limit, Cursor: cursor}
	if st, err := s.cfg.Reader.Stages(r.Context(), p); err == nil {
		d.Stages, d.Waits = &st, map[string]string{}
		for _, row := range st.Stages {
			for _, id := range row.Waiting {
				d.Waits[id] = row.Stage
			}
		}
	} else {
		s.cfg.Log.Warn().Err(err).Str("pipeline", p).Msg("read the pipeline's stages")
	}
	s.render(w, r, http.StatusOK, "runs", p+" runs", d)
}

type runData struct {
	Run   run.State
	Graph graph
	Now   time.Time
	// Types are the event types the page listens for on the run's SSE
	// (an EventSource only hears the event names it subscribes to).
	Types string
	// Deploys are the deployments each deploy action ("stage/action")
	// created, found by the group it names and the trigger they record.
	Deploys map[string][]deploydecider.State
	// Hold says why the run waits before a stage, when it does.
	Hold *lanes.Hold
}

// deploysOf finds the deployments the run's started deploy actions made.
// A read error leaves them out: the run page still shows the run.
func (s *server) deploysOf(ctx context.Context, st run.State) map[string][]deploydecider.State {
	out := map[string][]deploydecider.State{}
	groups := map[string][]deploydecider.State{}
	for _, sd := range st.Definition.Stages {
		for _, ad := range sd.Actions {
			group := ad.Configuration["group"]
			a := st.Action(sd.Name, ad.Name)
			if ad.Type != "deploy" || group == "" || a == nil || a.Phase == run.NotStarted {
				continue
			}
			ds, ok := groups[group]
			if !ok {
				var err error
				if ds, err = s.cfg.Reader.Deployments(ctx, group, 100); err != nil {
					s.cfg.Log.Warn().Err(err).Str("run", st.Run).Str("group", group).Msg("deployments of a run")
				}
				groups[group] = ds
			}
			for _, d := range ds {
				if t := d.Created.Trigger; t != nil && t.Run == st.Run && t.Stage == sd.Name && t.Action == ad.Name {
					out[sd.Name+"/"+ad.Name] = append(out[sd.Name+"/"+ad.Name], d)
				}
			}
		}
	}
	return out
}

func (s *server) runData(ctx context.Context, st run.State) runData {
	var types []string
	for _, t := range events.Types {
		if t != events.TypeActionHeartbeat {
			types = append(types, t)
		}
	}
	d := runData{Run: st, Graph: layout(st), Now: s.cfg.Now(), Types: strings.Join(types, " "), Deploys: s.deploysOf(ctx, st)}
	if h, ok := s.cfg.Reader.Hold(ctx, st); ok {
		d.Hold = &h
	}
	return d
}

func (s *server) runPage(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Reader.Run(r.Context(), r.PathValue("run"))
	if err != nil {
		s.fail(w, r, "run "+r.PathValue("run"), err)
		return
	}
	s.render(w, r, http.StatusOK, "run", st.Pipeline+" run "+short(st.Run), s.runData(r.Context(), st))
}

// runLive renders the parts of the run page that change, for the script
// to swap in after each event: one renderer for first paint and updates.
func (s *server) runLive(w http.ResponseWriter, r *http.Request) {
	st, err := s.cfg.Reader.Run(r.Context(), r.PathValue("run"))
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrNotFound) {
			status = http.StatusNotFound
		}
		http.Error(w, err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	p := page{Now: s.cfg.Now(), Data: s.runData(r.Context(), st)}
	if err := s.pages["run"].ExecuteTemplate(w, "live", p); err != nil {
		s.cfg.Log.Error().Err(err).Str("run", st.Run).Msg("render run")
	}
}

type deploymentsData struct {
	Group       string
	Deployments []deploydecider.State
}

func (s *server) deploymentsPage(w http.ResponseWriter, r *http.Request) {
	g := r.URL.Query().Get("group")
	ds, err := s.cfg.Reader.Deployments(r.Context(), g, 200)
	if err != nil {
		s.fail(w, r, "deployments", err)
		return
	}
	s.render(w, r, http.StatusOK, "deployments", "Deployments", deploymentsData{Group: g, Deployments: ds})
}

func (s *server) deploymentPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.cfg.Reader.Deployment(r.Context(), r.PathValue("deployment"))
	if err != nil {
		s.fail(w, r, "deployment "+r.PathValue("deployment"), err)
		return
	}
	s.render(w, r, http.StatusOK, "deployment", "Deployment "+short(d.ID()), d)
}
