// Package gateway is Gantry's HTTP API: JSON over REST for pipelines,
// runs, actions, logs, artifacts and deployments, read from the bus (the
// runs projection for lists, the run log for a run, the object store for
// artifacts and archived logs, the logs stream for live output), with
// Server-Sent Events for live run events and log lines. Every route but
// /healthz and /openapi.json needs a bearer token (package auth); commands
// go through services/command and starts through source.Publish, with the
// actor api:<token name>. The web UI (services/gateway/ui) and chat-ops
// (services/chatops) are mounted by this package; the API's contract is
// schemas/openapi.json.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// Options configure a Server.
type Options struct {
	Bus       *bus.Bus
	Validator *schemas.Validator
	Tokens    *auth.Tokens
	Log       zerolog.Logger
	// Insecure leaves the Secure attribute off cookies: plain HTTP on
	// localhost (gantry dev).
	Insecure bool
	// KeepAlive is the interval of SSE comment lines that keep proxies
	// from closing an idle stream (default 15s).
	KeepAlive time.Duration
	// CommandTimeout bounds one command request (default command.DefaultTimeout).
	CommandTimeout time.Duration
	// ReloadEvery is how often the token file is checked for changes
	// (default 2s).
	ReloadEvery time.Duration
	// UI, if set, serves / and /ui/ (services/gateway/ui.Handler); the
	// login and logout routes under /ui/ are this package's.
	UI http.Handler
	// Chatops, if set, serves /chatops/slack (services/chatops.SlackHandler).
	// Slack signs its requests; the handler checks the signature itself,
	// so no token is asked for here.
	Chatops http.Handler
}

// Validate reports every missing option at once.
func (o Options) Validate() error {
	var errs []error
	if o.Bus == nil {
		errs = append(errs, errors.New("gateway: Bus is required"))
	}
	if o.Validator == nil {
		errs = append(errs, errors.New("gateway: Validator is required"))
	}
	if o.Tokens == nil {
		errs = append(errs, errors.New("gateway: Tokens is required"))
	}
	return errors.Join(errs...)
}

// Server is the HTTP API.
type Server struct {
	o     Options
	auth  *auth.Authenticator
	cmd   command.Client
	index *runIndex
	mux   *http.ServeMux
}

// New builds a server; nothing runs until Run.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.ReloadEvery <= 0 {
		o.ReloadEvery = 2 * time.Second
	}
	s := &Server{
		o:     o,
		auth:  &auth.Authenticator{Tokens: o.Tokens, Insecure: o.Insecure},
		cmd:   command.Client{Conn: o.Bus.Conn(), Timeout: o.CommandTimeout},
		index: newRunIndex(),
		mux:   http.NewServeMux(),
	}
	for _, r := range s.routes() {
		h := http.Handler(r.handler)
		if r.role != "" {
			h = s.auth.Require(r.role, h)
		}
		s.mux.Handle(r.method+" "+r.path, h)
	}
	s.mux.HandleFunc("POST /ui/login", s.auth.Login)
	s.mux.HandleFunc("POST /ui/logout", s.auth.Logout)
	if o.UI != nil {
		s.mux.Handle("/ui/", o.UI)
		s.mux.Handle("/", o.UI)
	}
	if o.Chatops != nil {
		s.mux.Handle("/chatops/slack", o.Chatops)
	}
	// Unknown API paths answer JSON, not the UI's page.
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		auth.WriteError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path, "see /openapi.json")
	})
	return s, nil
}

// Authenticator is the token check the API uses; the UI wraps its own
// handlers with it.
func (s *Server) Authenticator() *auth.Authenticator { return s.auth }

// Handler is the server's routes.
func (s *Server) Handler() http.Handler { return s.mux }

// Route is one API route, as the OpenAPI document lists it.
type Route struct {
	Method, Path string
	// Role needed; empty means none.
	Role auth.Role
}

// Routes lists the API routes the server registers.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.routes() {
		out = append(out, Route{r.method, r.path, r.role})
	}
	return out
}

// Run serves on ln until ctx ends, with the runs index and the token file
// watch running beside it. When ctx ends, every request's context ends
// too (live streams close), and Run waits up to 5 seconds for handlers.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idxDone := make(chan error, 1)
	go func() { idxDone <- s.index.run(ctx, s.o.Bus, s.o.Log) }()
	tokDone := make(chan struct{})
	go func() {
		defer close(tokDone)
		s.o.Tokens.Watch(ctx, s.o.ReloadEvery, func(err error) {
			s.o.Log.Error().Err(err).Msg("token file not reloaded; the previous tokens stay in force")
		})
	}()
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Requests derive from ctx, so streams end when the server stops.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.o.Log.Info().Str("addr", ln.Addr().String()).Msg("gateway listening")
	var err error
	idxEnded := false
	select {
	case <-ctx.Done():
	case err = <-errc:
	case err = <-idxDone:
		idxEnded = true
		if err != nil {
			err = fmt.Errorf("runs index: %w", err)
		}
	}
	cancel()
	if !idxEnded {
		<-idxDone
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	<-tokDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// ListenAndRun listens on addr and serves until ctx ends.
func (s *Server) ListenAndRun(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway listen %s: %w", addr, err)
	}
	return s.Run(ctx, ln)
}
