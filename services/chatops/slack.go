// Package chatops is Gantry's chat side: Slack-compatible slash commands
// (SlackHandler, mounted by the gateway at /chatops/slack) and the
// notification service (notify.go) that posts run events to Slack
// incoming webhooks and generic CloudEvents webhooks.
//
// A slash command is verified with the Slack app's signing secret before
// anything in it is read, mapped to the gateway's roles through a users
// file (Slack user ID → roles), and carried out through the same APIs as
// the CLI and the HTTP API: services/command for approve and reject,
// source.Publish for starts, services/rollback for deployment rollbacks.
// The actor recorded is slack:<user ID>; the user's name is logged.
package chatops

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
)

// Headers Slack signs requests with.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// DefaultWindow is how far a request's timestamp may be from now: Slack's
// recommended replay window.
const DefaultWindow = 5 * time.Minute

// DefaultDefer is how long a command may take to be answered in the
// response itself: Slack gives up on a slash command that is not answered
// within 3 seconds. A slower one is acknowledged and its reply posted to
// the request's response_url when it is done.
const DefaultDefer = 2 * time.Second

// DefaultTimeout bounds one command.
const DefaultTimeout = 30 * time.Second

// maxBody bounds a slash command's form body; Slack's are a few hundred bytes.
const maxBody = 64 << 10

// Commander sends a command (command.Client does).
type Commander interface {
	Do(ctx context.Context, verb string, req command.Request) (command.Reply, error)
}

// Runs starts runs and reads their state.
type Runs interface {
	// Start publishes a trigger for pipeline and returns the run it starts.
	Start(ctx context.Context, pipeline string, vars map[string]string, actor string) (string, error)
	// Latest is the newest run of pipeline.
	Latest(ctx context.Context, pipeline string) (run.State, error)
}

// Rollbacker rolls a deployment group back to its last known good revision.
type Rollbacker interface {
	Rollback(ctx context.Context, group, actor string) (events.DeploymentCreated, error)
}

// Deps is what the slash commands act through; BusDeps builds them on a
// NATS connection.
type Deps struct {
	Commands  Commander
	Runs      Runs
	Rollbacks Rollbacker
}

// Config configures SlackHandler.
type Config struct {
	// SigningSecret is the Slack app's signing secret.
	SigningSecret string
	// Users maps Slack user IDs to roles; anyone else may only ask for help.
	Users Users
	// BaseURL is where the web UI is served; replies link <BaseURL>/runs/<run>.
	BaseURL string
	// Window is the replay window (default DefaultWindow).
	Window time.Duration
	// Defer is how long a reply may take to go in the response (default
	// DefaultDefer); after it, the reply goes to the response_url.
	Defer time.Duration
	// Timeout bounds one command (default DefaultTimeout).
	Timeout time.Duration
	// ResponseURLAllowed says where deferred replies may be posted
	// (default: https://hooks.slack.com/ only, so a request can never make
	// the gateway post elsewhere).
	ResponseURLAllowed func(*url.URL) bool
	// Client posts deferred replies (default: a 10-second timeout).
	Client *http.Client
	// Now is the clock (default time.Now), for tests.
	Now func() time.Time
	Log zerolog.Logger
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.SigningSecret == "" {
		errs = append(errs, errors.New("chat-ops: signing secret is empty (the Slack app's Signing Secret)"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("chat-ops: base URL %q must be an http(s) URL", c.BaseURL))
		}
	}
	return errors.Join(errs...)
}

// Response is a Slack slash-command reply.
type Response struct {
	// ResponseType is "ephemeral" (only the caller sees it) or "in_channel".
	ResponseType string  `json:"response_type"`
	Text         string  `json:"text"`
	Blocks       []Block `json:"blocks,omitempty"`
}

// Block is a Slack Block Kit section with markdown text.
type Block struct {
	Type string    `json:"type"`
	Text BlockText `json:"text"`
}

// BlockText is a block's text.
type BlockText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Response types.
const (
	Ephemeral = "ephemeral"
	InChannel = "in_channel"
)

// Slack is the slash-command handler. Close stops the commands still
// running for deferred replies and waits for them.
type Slack struct {
	cfg  Config
	deps Deps
	// base outlives each request: a deferred command goes on after its
	// response was sent. Close cancels it.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ http.Handler = (*Slack)(nil)

// SlackHandler serves Slack slash commands (POST, form-encoded, signed).
// It refuses with 401 a request whose signature does not match or whose
// timestamp is outside the replay window, and answers every verified
// request with 200 and a Slack JSON reply (refusals are ephemeral).
func SlackHandler(cfg Config, deps Deps) (*Slack, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Defer <= 0 {
		cfg.Defer = DefaultDefer
	}
	if cfg.ResponseURLAllowed == nil {
		cfg.ResponseURLAllowed = func(u *url.URL) bool { return u.Scheme == "https" && u.Host == "hooks.slack.com" }
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	base, cancel := context.WithCancel(context.Background())
	return &Slack{cfg: cfg, deps: deps, base: base, cancel: cancel}, nil
}

// Close cancels the commands still running and waits for them.
func (h *Slack) Close() {
	h.cancel()
	h.wg.Wait()
}

// Verification failures (all answered 401).
var (
	ErrBadSignature = errors.New("bad signature")
	ErrStale        = errors.New("timestamp outside the replay window")
)

// Sign returns the X-Slack-Signature of body sent at ts with secret:
// v0= and the hex HMAC-SHA256 of "v0:<ts>:<body>".
func Sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request's signature and timestamp. The signature is
// compared in constant time, and checked before the timestamp is trusted.
func Verify(secret, sig, ts string, body []byte, now time.Time, window time.Duration) error {
	if !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s %q is not a Unix time", ErrStale, HeaderTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%w: %s is %s from now", ErrStale, HeaderTimestamp, d.Round(time.Second))
	}
	return nil
}

func (h *Slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "slash commands are POSTed")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if len(body) > maxBody {
		httpError(w, http.StatusRequestEntityTooLarge, "body over 64 KiB")
		return
	}
	// Slack checks the certificate of a new URL with an ssl_check request,
	// which carries no command: answer it without acting on anything.
	if f, err := url.ParseQuery(string(body)); err == nil && f.Get("ssl_check") == "1" && f.Get("command") == "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err := Verify(h.cfg.SigningSecret, r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), body,
		h.cfg.Now(), h.cfg.Window); err != nil {
		h.cfg.Log.Warn().Err(err).Str("remote", r.RemoteAddr).Msg("slash command refused")
		httpError(w, http.StatusUnauthorized, err.Error())
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		httpError(w, http.StatusBadRequest, "form body: "+err.Error())
		return
	}
	resp := h.respond(form)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// respond carries a command out and returns the response to send: its reply,
// or, when it takes longer than Defer and the request has an allowed
// response_url, an acknowledgement, the reply being posted there when done.
func (h *Slack) respond(form url.Values) Response {
	who := caller{ID: form.Get("user_id"), Name: form.Get("user_name")}
	text := form.Get("text")
	respURL, err := url.Parse(form.Get("response_url"))
	canDefer := err == nil && form.Get("response_url") != "" && h.cfg.ResponseURLAllowed(respURL)
	done := make(chan Response, 1)
	// settled is closed once the handler chose between answering inline
	// and deferring; late says which.
	settled := make(chan struct{})
	var late bool
	ctx, cancel := context.WithTimeout(h.base, h.cfg.Timeout)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer cancel()
		resp := h.command(ctx, who, form.Get("command"), text)
		done <- resp
		<-settled
		if late {
			h.postLate(ctx, respURL.String(), resp)
		}
	}()
	defer close(settled)
	if !canDefer {
		return <-done
	}
	timer := time.NewTimer(h.cfg.Defer)
	defer timer.Stop()
	select {
	case resp := <-done:
		return resp
	case <-timer.C:
		select {
		case resp := <-done:
			return resp
		default:
			late = true
			return ephemeral(fmt.Sprintf("Working on `%s`…", Escape(firstLine(text))))
		}
	}
}

// postLate sends a deferred reply to the request's response_url.
func (h *Slack) postLate(ctx context.Context, to string, resp Response) {
	body, _ := json.Marshal(resp)
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, to, bytes.NewReader(body))
	if err != nil {
		h.cfg.Log.Error().Err(err).Msg("deferred slash-command reply")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := h.cfg.Client.Do(req)
	if err != nil {
		h.cfg.Log.Error().Str("to", MaskURL(to)).Msg("deferred slash-command reply not delivered")
		return
	}
	_ = r.Body.Close()
	if r.StatusCode >= 300 {
		h.cfg.Log.Error().Str("to", MaskURL(to)).Int("status", r.StatusCode).Msg("deferred slash-command reply refused")
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// caller is the Slack user behind a command.
type caller struct{ ID, Name string }

// Actor is what the events record: slack:<user ID>. Display names are
// not part of it: anyone can change theirs, two people can share one, and
// an approval's approvers (in the pipeline file) match actors exactly, so
// `approvers: slack:U012ABCDEF` must keep matching after a rename. The
// name goes to the log line of each command instead.
func (c caller) Actor() string { return "slack:" + c.ID }

// verbs: who may use each command.
var verbRoles = map[string][]string{
	"status":   {RoleViewer, RoleOperator, RoleApprover},
	"run":      {RoleOperator},
	"approve":  {RoleApprover},
	"reject":   {RoleApprover},
	"rollback": {RoleOperator},
}

const usage = "Commands:\n" +
	"• `status PIPELINE` — the latest run of a pipeline\n" +
	"• `run PIPELINE [NAME=value…]` — start a run (operator)\n" +
	"• `approve RUN [stage=S action=A] [comment]` — approve a waiting approval (approver)\n" +
	"• `reject RUN [stage=S action=A] [comment]` — reject it (approver)\n" +
	"• `rollback GROUP` — roll a deployment group back to its last known good revision (operator)\n" +
	"• `help`"

// command parses and carries out one command line.
func (h *Slack) command(ctx context.Context, who caller, slash, text string) Response {
	args := strings.Fields(text)
	if len(args) == 0 || args[0] == "help" {
		return ephemeral(usage)
	}
	verb, args := args[0], args[1:]
	allowed, ok := verbRoles[verb]
	if !ok {
		return ephemeral(fmt.Sprintf("Unknown command `%s`.\n%s", verb, usage))
	}
	log := h.cfg.Log.With().Str("actor", who.Actor()).Str("user_name", who.Name).Str("verb", verb).Logger()
	if who.ID == "" {
		return ephemeral("The request names no user (user_id); nothing done.")
	}
	if _, mapped := h.cfg.Users[who.ID]; !mapped {
		log.Info().Msg("slash command from an unmapped user refused")
		return ephemeral(fmt.Sprintf("You (%s) are not a Gantry user: ask an admin to add your Slack user ID to the chat-ops users file.", who.ID))
	}
	if !h.cfg.Users.may(who.ID, allowed) {
		log.Info().Strs("roles", h.cfg.Users[who.ID]).Msg("slash command refused for the caller's roles")
		return ephemeral(fmt.Sprintf("`%s` needs the role %s (or admin); you have %s.", verb, strings.Join(allowed, " or "),
			strings.Join(h.cfg.Users[who.ID], ", ")))
	}
	var resp Response
	switch verb {
	case "status":
		resp = h.status(ctx, args)
	case "run":
		resp = h.run(ctx, who, args)
	case "approve", "reject":
		resp = h.decide(ctx, who, verb, args)
	case "rollback":
		resp = h.rollback(ctx, who, args)
	}
	log.Info().Str("text", text).Str("response", resp.ResponseType).Msg("slash command")
	return resp
}

func ephemeral(text string) Response { return Response{ResponseType: Ephemeral, Text: text} }

// reply builds a response with the text as a markdown section, so Slack
// renders the run link.
func reply(kind, text string) Response {
	return Response{ResponseType: kind, Text: text,
		Blocks: []Block{{Type: "section", Text: BlockText{Type: "mrkdwn", Text: text}}}}
}

// RunURL is the run page's address.
func RunURL(base, runID string) string {
	return strings.TrimRight(base, "/") + "/runs/" + url.PathEscape(runID)
}

// runLink is a Slack link to the run page, or the run ID without a base URL.
func (h *Slack) runLink(runID string) string {
	if h.cfg.BaseURL == "" {
		return "`" + runID + "`"
	}
	return "<" + RunURL(h.cfg.BaseURL, runID) + "|" + runID + ">"
}

func (h *Slack) status(ctx context.Context, args []string) Response {
	if len(args) != 1 {
		return ephemeral("Usage: `status PIPELINE`")
	}
	if err := events.CheckName("pipeline", args[0]); err != nil {
		return ephemeral(err.Error())
	}
	st, err := h.deps.Runs.Latest(ctx, args[0])
	if err != nil {
		return ephemeral(fmt.Sprintf("status %s: %s", args[0], Escape(err.Error())))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* run %s: *%s*", st.Pipeline, h.runLink(st.Run), st.Phase)
	if st.Reason != "" {
		fmt.Fprintf(&b, " (%s)", Escape(firstLine(st.Reason)))
	}
	for _, sg := range st.Stages {
		fmt.Fprintf(&b, "\n• %s: %s", sg.Name, orDash(string(sg.Phase)))
	}
	return reply(Ephemeral, b.String())
}

func (h *Slack) run(ctx context.Context, who caller, args []string) Response {
	if len(args) < 1 {
		return ephemeral("Usage: `run PIPELINE [NAME=value…]`")
	}
	if err := events.CheckName("pipeline", args[0]); err != nil {
		return ephemeral(err.Error())
	}
	var vars map[string]string
	for _, kv := range args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return ephemeral(fmt.Sprintf("variable %q: write it as NAME=value", kv))
		}
		if vars == nil {
			vars = map[string]string{}
		}
		vars[k] = v
	}
	id, err := h.deps.Runs.Start(ctx, args[0], vars, who.Actor())
	if err != nil {
		return ephemeral(fmt.Sprintf("run %s: %s", args[0], Escape(err.Error())))
	}
	return reply(InChannel, fmt.Sprintf("<@%s> started run %s of *%s*", who.ID, h.runLink(id), args[0]))
}

// decide approves or rejects: RUN, then optional stage=/action= words,
// then the comment.
func (h *Slack) decide(ctx context.Context, who caller, verb string, args []string) Response {
	if len(args) < 1 {
		return ephemeral(fmt.Sprintf("Usage: `%s RUN [stage=S action=A] [comment]`", verb))
	}
	if err := events.CheckName("run", args[0]); err != nil {
		return ephemeral(Escape(err.Error()))
	}
	req := command.Request{Run: args[0], Actor: who.Actor()}
	rest := args[1:]
	for len(rest) > 0 {
		if v, ok := strings.CutPrefix(rest[0], "stage="); ok {
			req.Stage = v
		} else if v, ok := strings.CutPrefix(rest[0], "action="); ok {
			req.Action = v
		} else {
			break
		}
		rest = rest[1:]
	}
	req.Comment = strings.Join(rest, " ")
	rep, err := h.deps.Commands.Do(ctx, verb, req)
	if err != nil {
		return ephemeral(fmt.Sprintf("%s %s: %s", verb, Escape(req.Run), Escape(err.Error())))
	}
	past := map[string]string{"approve": "approved", "reject": "rejected"}[verb]
	text := fmt.Sprintf("<@%s> %s run %s", who.ID, past, h.runLink(req.Run))
	if rep.Stage != "" {
		text += " at stage " + rep.Stage
	}
	if rep.Phase != "" {
		text += fmt.Sprintf(" (run is %s)", rep.Phase)
	}
	if req.Comment != "" {
		text += ": " + Escape(req.Comment)
	}
	return reply(InChannel, text)
}

func (h *Slack) rollback(ctx context.Context, who caller, args []string) Response {
	if len(args) != 1 {
		return ephemeral("Usage: `rollback GROUP`")
	}
	if err := events.CheckName("deployment group", args[0]); err != nil {
		return ephemeral(err.Error())
	}
	c, err := h.deps.Rollbacks.Rollback(ctx, args[0], who.Actor())
	if err != nil {
		return ephemeral(fmt.Sprintf("rollback %s: %s", args[0], Escape(err.Error())))
	}
	text := fmt.Sprintf("<@%s> rolled *%s* back: deployment `%s` of revision `%s`", who.ID, args[0], c.Deployment, c.Revision.Key)
	if c.Trigger != nil && c.Trigger.Run != "" {
		text += " built by run " + h.runLink(c.Trigger.Run)
	}
	return reply(InChannel, text)
}

// Escape makes free text (a reason, a comment) plain in Slack markup,
// where <, > and & start links, mentions and entities.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
