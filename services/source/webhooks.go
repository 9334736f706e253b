package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/triggerfilter"
)

// MaxWebhookBytes bounds a webhook body: what a trigger may be
// (events.MaxTriggerBytes). A larger delivery is refused with 413.
const MaxWebhookBytes = events.MaxTriggerBytes

// Webhooks is the webhook receiver of the source service: POST
// /webhooks/github, /webhooks/gitlab and /webhooks/gitea. A delivery is
// verified with its repository's secret (401 and nothing published when
// it does not verify), normalized, and held against the triggers of every
// pipeline with a trigger naming its repository; each such pipeline gets
// a trigger.accepted or trigger.filtered event, and each accepting one a
// trigger on gantry.triggers.<pipeline>, whose ID is derived from the
// change, so a redelivery starts no second run.
type Webhooks struct {
	Decider *Decider
	Log     zerolog.Logger
	Secrets WebhookSecrets
	// Git finds changed files the payload lacks; nil leaves them unknown.
	Git *GitFiles
	// ReposDir resolves relative repository paths of source actions, as
	// the checkout does.
	ReposDir string
}

// handleTimeout bounds the handling of one delivery (fetching changed
// files with git included); below the server's WriteTimeout.
const handleTimeout = 50 * time.Second

// Handler serves the webhook routes.
func (w *Webhooks) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, f := range Forges {
		mux.HandleFunc("POST /webhooks/"+f, func(rw http.ResponseWriter, r *http.Request) { w.serve(rw, r, f) })
	}
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "ok\n") })
	return mux
}

// Reply is the JSON body of a delivery's answer.
type Reply struct {
	Delivery string    `json:"delivery,omitempty"`
	Ignored  string    `json:"ignored,omitempty"`
	Error    string    `json:"error,omitempty"`
	Outcomes []Outcome `json:"outcomes,omitempty"`
}

func (w *Webhooks) serve(rw http.ResponseWriter, r *http.Request, forge string) {
	log := w.Log.With().Str("forge", forge).Logger()
	answer := func(code int, rep Reply) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(rep)
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxWebhookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			answer(http.StatusRequestEntityTooLarge, Reply{Error: fmt.Sprintf("body over %d bytes", MaxWebhookBytes)})
			return
		}
		answer(http.StatusBadRequest, Reply{Error: "reading the body: " + err.Error()})
		return
	}
	repo := repositoryOf(forge, jsonOf(r.Header, body))
	if err := verify(forge, r.Header, body, w.Secrets.Secret(forge, repo)); err != nil {
		log.Warn().Err(err).Str("repository", repo).Str("remote", r.RemoteAddr).Msg("webhook refused")
		answer(http.StatusUnauthorized, Reply{Error: err.Error()})
		return
	}
	// GitHub's default content type, and Gitea's other one, is a form whose
	// payload field holds the JSON; the signature covered the form.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("payload") == "" {
			answer(http.StatusBadRequest, Reply{Error: "a form delivery needs a payload field"})
			return
		}
		body = []byte(form.Get("payload"))
	}
	d, err := ParseDelivery(forge, r.Header, body)
	switch {
	case errors.Is(err, ErrIgnoredEvent):
		answer(http.StatusOK, Reply{Ignored: err.Error()})
		return
	case err != nil:
		answer(http.StatusBadRequest, Reply{Error: err.Error()})
		return
	}
	// Finish what was started even if the forge hangs up (GitHub waits
	// 10 seconds): a redelivery would redo it, but need not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), handleTimeout)
	defer cancel()
	outcomes, err := w.Handle(ctx, d)
	if err != nil {
		log.Error().Err(err).Str("delivery", d.ID).Msg("webhook not handled; the forge may redeliver it")
		answer(http.StatusInternalServerError, Reply{Delivery: d.ID, Error: err.Error()})
		return
	}
	for _, o := range outcomes {
		log.Info().Str("delivery", d.ID).Str("pipeline", o.Pipeline).Bool("accepted", o.Accepted).
			Str("run", o.Run).Str("reason", o.Reason).Msg("webhook decided")
	}
	answer(http.StatusAccepted, Reply{Delivery: d.ID, Outcomes: outcomes})
}

// Handle holds a verified delivery against every pipeline with a trigger
// naming its repository.
func (w *Webhooks) Handle(ctx context.Context, d Delivery) ([]Outcome, error) {
	pipes, err := w.pipelines(ctx)
	if err != nil {
		return nil, err
	}
	names := triggerfilter.Names(d.Repository, d.URLs...)
	var out []Outcome
	changed := map[string][]string{} // changed files by repository, fetched once
	for _, def := range pipes {
		if !hears(def, names) {
			continue
		}
		c := d.Change()
		if !c.FilesKnown && d.Event != events.TriggerEventTag && needsFiles(def) && w.Git != nil {
			repo := w.repoOf(def, d)
			files, ok := changed[repo]
			if !ok {
				// A git failure is no decision: answer 500, so the forge
				// shows the error and a redelivery can try again.
				if files, err = w.Git.Changed(ctx, repo, d.Base, d.Commit); err != nil {
					return out, fmt.Errorf("pipeline %s: changed files from git: %w", def.Name, err)
				}
				changed[repo] = files
			}
			c.Files, c.FilesKnown = files, true
		}
		seen := events.TriggerChange{Source: "webhook", Forge: d.Forge, Repository: d.Repository, Event: d.Event,
			Action: d.Action, Ref: d.Ref, Commit: d.Commit, Delivery: d.ID, Files: -1}
		if c.FilesKnown {
			seen.Files = len(c.Files)
		}
		// A pull request's run builds its head: the checkout clones the
		// source branch and checks out the head commit.
		ref := d.Ref
		if d.HeadRef != "" {
			ref = d.HeadRef
		}
		t := Trigger{ID: TriggerID(def.Name, d.Event, d.Action, d.Ref, d.Commit, d.Number), Pipeline: def.Name,
			Kind: "webhook", Commit: d.Commit, Ref: ref, Actor: events.Truncate(d.Forge+":"+d.Actor, 256)}
		o, err := w.Decider.Decide(ctx, def, seen, c, t)
		if err != nil {
			return out, fmt.Errorf("pipeline %s: %w", def.Name, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// hears reports whether a pipeline has a trigger naming the repository.
func hears(def events.Definition, repo []string) bool {
	norm := make([]string, 0, len(repo))
	for _, r := range repo {
		if r != "" {
			norm = append(norm, triggerfilter.Normalize(r))
		}
	}
	for _, t := range def.Triggers {
		if t.Repository != "" && slices.Contains(norm, triggerfilter.Normalize(t.Repository)) {
			return true
		}
	}
	return false
}

func needsFiles(def events.Definition) bool {
	for _, t := range def.Triggers {
		if t.FilePaths != nil {
			return true
		}
	}
	return false
}

// SourceRepository is the repository of a pipeline's first source action,
// resolved as the checkout resolves it, and its branch; "" when it has none.
func SourceRepository(def events.Definition, reposDir string) (repo, branch string) {
	for _, s := range def.Stages {
		for _, a := range s.Actions {
			if a.Type != "source" || a.Configuration["repository"] == "" {
				continue
			}
			repo = a.Configuration["repository"]
			if !strings.Contains(repo, "://") && !filepath.IsAbs(repo) && !strings.Contains(repo, "@") {
				repo = filepath.Join(reposDir, repo)
			}
			branch = a.Configuration["branch"]
			if branch == "" {
				branch = "main"
			}
			return repo, branch
		}
	}
	return "", ""
}

// repoOf is where git finds a delivery's commits for a pipeline: its source
// action's repository, else the forge's clone URL.
func (w *Webhooks) repoOf(def events.Definition, d Delivery) string {
	if repo, _ := SourceRepository(def, w.ReposDir); repo != "" {
		return repo
	}
	for _, u := range d.URLs {
		if u != "" {
			return u
		}
	}
	return ""
}

func (w *Webhooks) pipelines(ctx context.Context) ([]events.Definition, error) {
	return listPipelines(ctx, w.Decider.Bus.JetStream())
}

func listPipelines(ctx context.Context, js jetstream.JetStream) ([]events.Definition, error) {
	kv, err := js.KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return nil, fmt.Errorf("pipelines bucket: %w", err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop() // after the last key it has stopped, and says so
	slices.Sort(keys)
	var out []events.Definition
	for _, k := range keys {
		def, _, err := (Pipelines{KV: kv}).Get(ctx, k)
		if errors.Is(err, ErrUnknownPipeline) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, def)
	}
	return out, nil
}

// Serve listens on addr and serves the webhook routes until ctx ends.
// Slow clients are cut off: headers within 10s, a whole request within
// 30s. ready, if not nil, is told the address once listening.
func (w *Webhooks) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("webhook listener: %w", err)
	}
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	if ready != nil {
		ready(ln.Addr())
	}
	w.Log.Info().Str("address", ln.Addr().String()).Msg("webhook receiver listening")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("webhook listener: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	<-errc
	return nil
}

// jsonOf is the JSON of a delivery, for picking its secret before it is
// verified: the body, or the payload field of a form.
func jsonOf(h http.Header, body []byte) []byte {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if form, err := url.ParseQuery(string(body)); err == nil {
			return []byte(form.Get("payload"))
		}
	}
	return body
}
