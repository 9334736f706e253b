package gateway

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/google/uuid"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Paging bounds of GET /runs.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// RunPage answers GET /runs.
type RunPage struct {
	Runs []RunSummary `json:"runs"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := RunFilter{Pipeline: q.Get("pipeline"), Phase: run.Phase(q.Get("phase"))}
	limit := DefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			s.fail(w, r, fmt.Errorf("%w: limit %q: want 1 to %d", ErrBadRequest, v, MaxLimit))
			return
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if err := checkNames(field{"pipeline", f.Pipeline, false}, field{"cursor", cursor, false}); err != nil {
		s.fail(w, r, err)
		return
	}
	switch f.Phase {
	case "", run.Requested, run.Running, run.Succeeded, run.Failed, run.Stopping, run.Stopped:
	default:
		s.fail(w, r, fmt.Errorf("%w: phase %q: want Requested, Running, Succeeded, Failed, Stopping or Stopped", ErrBadRequest, f.Phase))
		return
	}
	if err := s.index.wait(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	runs, next := s.index.page(f, cursor, limit)
	writeJSON(w, http.StatusOK, RunPage{Runs: runs, Next: next})
}

// load folds a run from its log.
func (s *Server) load(r *http.Request) (run.State, error) {
	id, err := name(r, "run")
	if err != nil {
		return run.State{}, err
	}
	p, err := s.o.Bus.FindRun(r.Context(), id)
	if err != nil {
		return run.State{}, err
	}
	evs, err := s.o.Bus.ReadRun(r.Context(), p, id, 0)
	if err != nil {
		return run.State{}, err
	}
	return run.Fold(run.State{}, evs...), nil
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	st, err := s.load(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// StopRequest is the body of POST /runs/{run}/stop.
type StopRequest struct {
	Abandon bool   `json:"abandon,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func (s *Server) stopRun(w http.ResponseWriter, r *http.Request) {
	var req StopRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.runCommand(w, r, command.Stop, command.Request{Abandon: req.Abandon, Reason: req.Reason})
}

// RetryRequest is the body of POST /runs/{run}/retry.
type RetryRequest struct {
	Stage string `json:"stage,omitempty"`
	All   bool   `json:"all,omitempty"`
}

func (s *Server) retryRun(w http.ResponseWriter, r *http.Request) {
	var req RetryRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkNames(field{"stage", req.Stage, false}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.runCommand(w, r, command.Retry, command.Request{Stage: req.Stage, All: req.All})
}

// DecisionRequest is the body of approve and reject.
type DecisionRequest struct {
	Stage   string `json:"stage,omitempty"`
	Action  string `json:"action,omitempty"`
	Comment string `json:"comment,omitempty"`
}

func (s *Server) decide(approve bool) http.HandlerFunc {
	verb := command.Reject
	if approve {
		verb = command.Approve
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req DecisionRequest
		if err := decode(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := checkNames(field{"stage", req.Stage, false}, field{"action", req.Action, false}); err != nil {
			s.fail(w, r, err)
			return
		}
		s.runCommand(w, r, verb, command.Request{Stage: req.Stage, Action: req.Action, Comment: req.Comment})
	}
}

// runCommand checks the run exists (404 otherwise) and sends the command.
func (s *Server) runCommand(w http.ResponseWriter, r *http.Request, verb string, req command.Request) {
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
	req.Run, req.Pipeline = id, p
	s.send(w, r, verb, req)
}

// send makes the request on behalf of the caller and answers with the
// conductor's reply: 200, or 409 for a refusal with the reply as well.
func (s *Server) send(w http.ResponseWriter, r *http.Request, verb string, req command.Request) {
	req.Actor = caller(r).Actor()
	reply, err := s.cmd.Do(r.Context(), verb, req)
	log := s.o.Log.Info()
	if err != nil {
		log = s.o.Log.Warn().Err(err)
	}
	log.Str("verb", verb).Str("run", req.Run).Str("pipeline", req.Pipeline).Str("stage", req.Stage).
		Str("actor", req.Actor).Msg("command")
	if errors.Is(err, command.ErrRefused) {
		writeJSON(w, http.StatusConflict, map[string]any{"error": reply.Error,
			"hint": "the run's state does not allow this now; GET the run to see it", "reply": reply})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// field is a request field that must be a valid name when set.
type field struct {
	name, value string
	required    bool
}

func checkNames(fs ...field) error {
	var errs []error
	for _, f := range fs {
		if f.value == "" && !f.required {
			continue
		}
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
			continue
		}
		errs = append(errs, events.CheckName(f.name, f.value))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

// ActionDoc answers GET /runs/{run}/actions/{stage}/{action}.
type ActionDoc struct {
	Run      string `json:"run"`
	Pipeline string `json:"pipeline"`
	Stage    string `json:"stage"`
	run.Action
}

func (s *Server) action(r *http.Request) (run.State, *run.Action, error) {
	stage, err := name(r, "stage")
	if err != nil {
		return run.State{}, nil, err
	}
	action, err := name(r, "action")
	if err != nil {
		return run.State{}, nil, err
	}
	st, err := s.load(r)
	if err != nil {
		return run.State{}, nil, err
	}
	a := st.Action(stage, action)
	if a == nil {
		return st, nil, fmt.Errorf("%w: run %s has no action %s/%s", ErrNotFound, st.Run, stage, action)
	}
	return st, a, nil
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request) {
	st, a, err := s.action(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ActionDoc{Run: st.Run, Pipeline: st.Pipeline, Stage: r.PathValue("stage"), Action: *a})
}

func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request) {
	st, err := s.load(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []events.ArtifactRef{}
	for _, n := range slices.Sorted(maps.Keys(st.Artifacts)) {
		out = append(out, st.Artifacts[n])
	}
	writeJSON(w, http.StatusOK, out)
}
