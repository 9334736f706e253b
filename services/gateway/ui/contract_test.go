package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/gateway/ui"
	"github.com/gantry-ci/gantry/services/stack"
	"github.com/gantry-ci/gantry/services/worker"
)

// contractAPI stands in for the gateway's routes the UI calls, as
// /work/prompts/api-contract.md specifies them: the run's events and an
// action's log lines over SSE, and the approve command; cookie auth with
// the double-submit CSRF header on writes. Once the gateway package is
// merged, the browser test can serve gateway.Server instead.
type contractAPI struct {
	t    *testing.T
	conn *stack.Conn
	mu   sync.Mutex
	sent []command.Request
}

func (a *contractAPI) approvals() []command.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]command.Request(nil), a.sent...)
}

func (a *contractAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/runs/{run}/events", a.authed(a.events))
	mux.HandleFunc("GET /api/v1/runs/{run}/actions/{stage}/{action}/logs", a.authed(a.logs))
	mux.HandleFunc("POST /api/v1/runs/{run}/approve", a.authed(a.approve))
}

func apiError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (a *contractAPI) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(ui.TokenCookie)
		if err != nil || c.Value != testToken {
			apiError(w, http.StatusUnauthorized, "missing or unknown token")
			return
		}
		if r.Method != http.MethodGet {
			csrf, err := r.Cookie(ui.CSRFCookie)
			if err != nil || csrf.Value == "" || r.Header.Get(ui.CSRFHeader) != csrf.Value {
				apiError(w, http.StatusForbidden, "missing or wrong "+ui.CSRFHeader+" header")
				return
			}
		}
		h(w, r)
	}
}

func sse(w http.ResponseWriter) (func(id, event, data string) bool, bool) {
	fl, ok := w.(http.Flusher)
	if !ok {
		return nil, false
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	return func(id, event, data string) bool {
		var b strings.Builder
		if id != "" {
			fmt.Fprintf(&b, "id: %s\n", id)
		}
		fmt.Fprintf(&b, "event: %s\n", event)
		for _, l := range strings.Split(data, "\n") {
			fmt.Fprintf(&b, "data: %s\n", l)
		}
		b.WriteString("\n")
		if _, err := w.Write([]byte(b.String())); err != nil {
			return false
		}
		fl.Flush()
		return true
	}, true
}

func (a *contractAPI) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("run")
	p, err := a.conn.Bus.FindRun(r.Context(), id)
	if err != nil {
		apiError(w, http.StatusNotFound, err.Error())
		return
	}
	send, ok := sse(w)
	if !ok {
		apiError(w, http.StatusInternalServerError, "no streaming")
		return
	}
	_ = a.conn.Bus.WatchRun(r.Context(), p, id, func(e events.Event) bool {
		b, err := a.conn.Bus.Codec().Encode(e)
		if err != nil {
			return true
		}
		return send(fmt.Sprint(e.Seq), e.Type, string(b))
	})
}

func (a *contractAPI) logs(w http.ResponseWriter, r *http.Request) {
	subj := events.LogSubject(r.PathValue("run"), r.PathValue("stage"), r.PathValue("action"))
	cons, err := a.conn.Bus.JetStream().OrderedConsumer(r.Context(), events.StreamLogs, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	send, ok := sse(w)
	if !ok {
		return
	}
	it, err := cons.Messages()
	if err != nil {
		return
	}
	defer it.Stop()
	stop := func() { it.Stop() }
	go func() { <-r.Context().Done(); stop() }()
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		_ = m.Headers().Get(worker.HeaderPhase)
		if !send("", "line", string(m.Data())) {
			return
		}
	}
}

func (a *contractAPI) approve(w http.ResponseWriter, r *http.Request) {
	var req command.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	req.Run, req.Actor = r.PathValue("run"), "api:tester"
	a.mu.Lock()
	a.sent = append(a.sent, req)
	a.mu.Unlock()
	reply, err := command.Client{Conn: a.conn.Bus.Conn()}.Do(r.Context(), command.Approve, req)
	if err != nil {
		apiError(w, http.StatusConflict, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(reply)
}
