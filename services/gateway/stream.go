package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/worker"
)

// sse writes one Server-Sent Events stream.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) (*sse, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	return s, s.rc.Flush()
}

// send writes one event; data may hold newlines (each becomes a data line).
func (s *sse) send(id, event string, data []byte) error {
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\n")
	for _, line := range strings.Split(string(data), "\n") {
		b.WriteString("data: " + strings.TrimSuffix(line, "\r") + "\n")
	}
	b.WriteString("\n")
	if _, err := io.WriteString(s.w, b.String()); err != nil {
		return err
	}
	return s.rc.Flush()
}

// keepAlive writes a comment line, which clients ignore and proxies see
// as traffic.
func (s *sse) keepAlive() error {
	if _, err := io.WriteString(s.w, ": keep-alive\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// runEvents answers a run's events: a JSON array of CloudEvents, or with
// Accept: text/event-stream every past event then live ones, resuming
// after Last-Event-ID (a stream sequence).
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	id, err := name(r, "run")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.o.Bus.FindRun(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !wantsSSE(r) {
		evs, err := s.o.Bus.ReadRun(r.Context(), p, id, 0)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := make([]events.Envelope, len(evs))
		for i, e := range evs {
			out[i] = e.Envelope
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	var after uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			s.fail(w, r, fmt.Errorf("%w: Last-Event-ID %q is not a stream sequence", ErrBadRequest, v))
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	evc := make(chan events.Event)
	done := make(chan error, 1)
	go func() {
		done <- s.o.Bus.WatchAll(ctx, events.RunSubject(p, id), after+1, func(e events.Event) bool {
			select {
			case evc <- e:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	defer func() { cancel(); <-done }()
	out, err := startSSE(w)
	if err != nil {
		return
	}
	tick := time.NewTicker(s.o.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the client went, or the server stops
		case err := <-done:
			done <- err // for the deferred wait
			if err != nil && ctx.Err() == nil {
				s.o.Log.Warn().Err(err).Str("run", id).Msg("run event stream ended")
			}
			return
		case e := <-evc:
			b, err := json.Marshal(e.Envelope)
			if err != nil {
				continue
			}
			if out.send(strconv.FormatUint(e.Seq, 10), e.Type, b) != nil {
				return
			}
		case <-tick.C:
			if out.keepAlive() != nil {
				return
			}
		}
	}
}

// countWriter notes whether anything was written, so an error before the
// first byte can still be an error response.
type countWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// getArtifact streams an artifact from the object store, checking its
// size and SHA-256 against the run's log on the way (artifact.Store.Fetch):
// the digest is announced in headers first, and a body that turns out not
// to match is cut off, so the client never gets a complete wrong file.
func (s *Server) getArtifact(w http.ResponseWriter, r *http.Request) {
	n, err := name(r, "name")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.load(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ref, ok := st.Artifacts[n]
	if !ok {
		s.fail(w, r, fmt.Errorf("%w: run %s has no artifact %q", ErrNotFound, st.Run, n))
		return
	}
	store, err := artifact.OpenStore(r.Context(), s.o.Bus.JetStream())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/gzip")
	h.Set("Content-Length", strconv.FormatInt(ref.Size, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.tar.gz"`, ref.Name))
	h.Set("ETag", `"sha256:`+ref.SHA256+`"`)
	h.Set("X-Gantry-SHA256", ref.SHA256)
	h.Set("Digest", "sha-256="+b64(ref.SHA256))
	cw := &countWriter{w: w}
	if err := store.Fetch(r.Context(), ref, cw); err != nil {
		if cw.n == 0 {
			for _, k := range []string{"Content-Length", "Content-Disposition", "ETag", "X-Gantry-SHA256", "Digest"} {
				h.Del(k)
			}
			s.fail(w, r, err)
			return
		}
		s.o.Log.Error().Err(err).Str("run", st.Run).Str("artifact", n).Msg("artifact download cut off")
		panic(http.ErrAbortHandler) // the client sees a truncated body, never a bad one complete
	}
}

// actionLogs answers an action's output: the archived log of an ended
// action as text, or the lines so far of a running one; with Accept:
// text/event-stream, each line as an event "line", live, then "end".
// Lines read "[phase] text", as the archive has them.
func (s *Server) actionLogs(w http.ResponseWriter, r *http.Request) {
	st, a, err := s.action(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	stage := r.PathValue("stage")
	if a.Log != nil && a.Phase.Done() {
		s.archivedLog(w, r, a)
		return
	}
	if !wantsSSE(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = s.liveLines(r.Context(), st, stage, a.Name, false, nil, func(line string) error {
			_, err := io.WriteString(w, line+"\n")
			return err
		})
		return
	}
	out, err := startSSE(w)
	if err != nil {
		return
	}
	if a.Phase.Done() {
		_ = out.send("", "end", []byte(string(a.Phase)))
		return
	}
	tick := time.NewTicker(s.o.KeepAlive)
	defer tick.Stop()
	// liveLines calls back on this goroutine; keep-alives go between lines.
	phase := s.liveLines(r.Context(), st, stage, a.Name, true, tick.C, func(line string) error {
		if line == "" {
			return out.keepAlive()
		}
		return out.send("", "line", []byte(line))
	})
	if phase != "" {
		_ = out.send("", "end", []byte(phase))
	}
}

func (s *Server) archivedLog(w http.ResponseWriter, r *http.Request, a *run.Action) {
	store, err := artifact.OpenStore(r.Context(), s.o.Bus.JetStream())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rc, _, err := store.Open(r.Context(), a.Log.Key)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	if !wantsSSE(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, rc)
		return
	}
	out, err := startSSE(w)
	if err != nil {
		return
	}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if out.send("", "line", sc.Bytes()) != nil {
			return
		}
	}
	_ = out.send("", "end", []byte(string(a.Phase)))
}

// liveLines reads the action's lines from the logs stream. Without
// follow it returns at the stream's current end. With follow it goes on
// until the action ends (from the run's log) and returns the action's
// final phase, or "" when ctx ends first; a tick calls fn with "" (a
// keep-alive).
func (s *Server) liveLines(ctx context.Context, st run.State, stage, action string, follow bool, tick <-chan time.Time, fn func(string) error) string {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	js := s.o.Bus.JetStream()
	cons, err := js.OrderedConsumer(ctx, events.StreamLogs, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.LogSubject(st.Run, stage, action)}})
	if err != nil {
		s.o.Log.Warn().Err(err).Str("run", st.Run).Msg("log stream")
		return ""
	}
	lines := make(chan jetstream.Msg)
	linesDone := make(chan struct{})
	go func() {
		defer close(linesDone)
		it, err := cons.Messages()
		if err != nil {
			return
		}
		defer it.Stop()
		stop := context.AfterFunc(ctx, it.Stop)
		defer stop()
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			select {
			case lines <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-linesDone }()
	format := func(m jetstream.Msg) string {
		return "[" + m.Headers().Get(worker.HeaderPhase) + "] " + string(m.Data())
	}
	if !follow {
		// Up to what the stream holds now: pending 0 marks the end;
		// an empty subject answers nothing, so a short wait ends it.
		for {
			select {
			case m := <-lines:
				if fn(format(m)) != nil {
					return ""
				}
				if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
					return ""
				}
			case <-time.After(500 * time.Millisecond):
				return ""
			case <-ctx.Done():
				return ""
			}
		}
	}
	ended := make(chan run.Phase, 1)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		cur := st
		_ = s.o.Bus.WatchAll(ctx, events.RunSubject(st.Pipeline, st.Run), st.LastSeq+1, func(e events.Event) bool {
			cur = run.Evolve(cur, e)
			if a := cur.Action(stage, action); a != nil && a.Phase.Done() {
				ended <- a.Phase
				return false
			}
			return true
		})
	}()
	defer func() { cancel(); <-watchDone }()
	var final run.Phase
	var drain <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ""
		case m := <-lines:
			if fn(format(m)) != nil {
				return ""
			}
		case final = <-ended:
			// The last lines may still be on their way: take what
			// comes within a moment, then end.
			drain = time.After(500 * time.Millisecond)
		case <-drain:
			return string(final)
		case <-tick:
			if fn("") != nil {
				return ""
			}
		}
	}
}

// b64 turns a hex digest into the base64 the Digest header uses.
func b64(hexDigest string) string {
	b, err := hex.DecodeString(hexDigest)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
