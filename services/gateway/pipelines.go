package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/lanes"
	"github.com/gantry-ci/gantry/services/pipelinefile"
	"github.com/gantry-ci/gantry/services/source"
)

// PipelineSummary is a pipeline in the list.
type PipelineSummary struct {
	Pipeline  string      `json:"pipeline"`
	Revision  uint64      `json:"revision"`
	Stages    []string    `json:"stages"`
	LatestRun *RunSummary `json:"latestRun,omitempty"`
}

func (s *Server) pipelines(r *http.Request) (source.Pipelines, error) {
	kv, err := s.o.Bus.JetStream().KeyValue(r.Context(), events.BucketPipelines)
	if err != nil {
		return source.Pipelines{}, fmt.Errorf("pipelines bucket: %w", err)
	}
	return source.Pipelines{KV: kv}, nil
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	p, err := s.pipelines(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	keys, err := p.KV.ListKeys(r.Context())
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		s.fail(w, r, err)
		return
	}
	// The latest runs come from the index; a list while it loads waits.
	if err := s.index.wait(r.Context()); err != nil {
		s.fail(w, r, err)
		return
	}
	latest := s.index.latest()
	out := []PipelineSummary{}
	if keys != nil {
		for k := range keys.Keys() {
			d, rev, err := p.Get(r.Context(), k)
			if err != nil {
				continue // deleted between the list and the get
			}
			ps := PipelineSummary{Pipeline: k, Revision: rev, Stages: []string{}}
			for _, st := range d.Stages {
				ps.Stages = append(ps.Stages, st.Name)
			}
			if l, ok := latest[k]; ok {
				ps.LatestRun = &l
			}
			out = append(out, ps)
		}
	}
	slices.SortFunc(out, func(a, b PipelineSummary) int { return strings.Compare(a.Pipeline, b.Pipeline) })
	writeJSON(w, http.StatusOK, out)
}

// PipelineDoc is one pipeline's current definition.
type PipelineDoc struct {
	Pipeline   string            `json:"pipeline"`
	Revision   uint64            `json:"revision"`
	Definition events.Definition `json:"definition"`
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	doc, err := s.loadPipeline(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

// loadPipeline reads the current definition of the path's {pipeline}.
func (s *Server) loadPipeline(r *http.Request) (PipelineDoc, error) {
	n, err := name(r, "pipeline")
	if err != nil {
		return PipelineDoc{}, err
	}
	p, err := s.pipelines(r)
	if err != nil {
		return PipelineDoc{}, err
	}
	d, rev, err := p.Get(r.Context(), n)
	if err != nil {
		return PipelineDoc{}, err
	}
	return PipelineDoc{n, rev, d}, nil
}

// getStages is the pipeline's stages as its lane has them, as `gantry stage
// list` shows them: each transition (disabled by whom, since when, why),
// the run in each stage and the runs waiting to enter it.
func (s *Server) getStages(w http.ResponseWriter, r *http.Request) {
	doc, err := s.loadPipeline(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	evs, err := s.o.Bus.ReadRun(r.Context(), doc.Pipeline, events.LaneToken, 0)
	if err != nil {
		s.fail(w, r, fmt.Errorf("read the lane of %s: %w", doc.Pipeline, err))
		return
	}
	writeJSON(w, http.StatusOK, lanes.StagesOf(doc.Definition, lanes.Fold(lanes.State{}, evs...)))
}

// Problem is one thing wrong with a pipeline file or a deployment group
// document.
type Problem struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Error is the whole "file:line:column: path: message" text.
	Error string `json:"error"`
}

// Validation answers POST /pipelines/validate.
type Validation struct {
	Valid    bool      `json:"valid"`
	Pipeline string    `json:"pipeline,omitempty"`
	Problems []Problem `json:"problems"`
}

// readFile reads a file sent as the body: at most max+1 bytes, enough for
// the parser to refuse a file over its limit with its own message.
func readFile(r *http.Request, max int) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrBadRequest, err)
	}
	return body, nil
}

// problemsOf lists what a parser found wrong with a file. The pipeline and
// deployment group parsers return the same *ParseError (services/internal/
// yamldoc), whose problems carry line, column and field; any other error
// is one problem without a place.
func problemsOf(err error) []Problem {
	var pe *pipelinefile.ParseError
	if !errors.As(err, &pe) {
		return []Problem{{Message: err.Error(), Error: err.Error()}}
	}
	var out []Problem
	for _, p := range pe.Problems {
		out = append(out, Problem{Line: p.Line, Column: p.Column, Path: p.Path, Message: p.Message, Error: p.Error()})
	}
	return out
}

// refuse answers 400 to a file that was not applied, with every problem.
func refuse(w http.ResponseWriter, problems []Problem, hint string) {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Error
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "nothing applied:\n" + strings.Join(msgs, "\n"),
		"hint": hint, "problems": problems})
}

// parseBody parses a pipeline file sent as the body.
func parseBody(r *http.Request, file string) (events.Definition, []Problem, error) {
	body, err := readFile(r, pipelinefile.MaxFileSize)
	if err != nil {
		return events.Definition{}, nil, err
	}
	d, err := pipelinefile.Parse(file, body)
	if err != nil {
		return events.Definition{}, problemsOf(err), nil
	}
	return d, nil, nil
}

func (s *Server) validatePipeline(w http.ResponseWriter, r *http.Request) {
	d, problems, err := parseBody(r, "pipeline.yaml")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v := Validation{Valid: len(problems) == 0, Pipeline: d.Name, Problems: problems}
	if v.Problems == nil {
		v.Problems = []Problem{}
	}
	writeJSON(w, http.StatusOK, v)
}

// Applied answers PUT /pipelines/{pipeline}.
type Applied struct {
	Pipeline string `json:"pipeline"`
	Revision uint64 `json:"revision"`
	Stages   int    `json:"stages"`
}

func (s *Server) applyPipeline(w http.ResponseWriter, r *http.Request) {
	n, err := name(r, "pipeline")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, problems, err := parseBody(r, n+".yaml")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(problems) > 0 {
		refuse(w, problems, "fix the file; POST /api/v1/pipelines/validate checks without applying")
		return
	}
	if d.Name != n {
		s.fail(w, r, fmt.Errorf("%w: the file names pipeline %q, the path %q", ErrBadRequest, d.Name, n))
		return
	}
	p, err := s.pipelines(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rev, err := p.Put(r.Context(), d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.o.Log.Info().Str("pipeline", n).Uint64("revision", rev).Str("actor", caller(r).Actor()).Msg("pipeline applied")
	writeJSON(w, http.StatusOK, Applied{n, rev, len(d.Stages)})
}

// StartRequest is the body of POST /pipelines/{pipeline}/runs.
type StartRequest struct {
	Variables map[string]string `json:"variables,omitempty"`
	Commit    string            `json:"commit,omitempty"`
	Ref       string            `json:"ref,omitempty"`
	// ID names the trigger: the same ID always starts the same one run,
	// so a client may retry a start safely.
	ID string `json:"id,omitempty"`
}

// Started answers a start.
type Started struct {
	Run      string `json:"run"`
	Pipeline string `json:"pipeline"`
	Trigger  string `json:"trigger"`
}

func (s *Server) startRun(w http.ResponseWriter, r *http.Request) {
	n, err := name(r, "pipeline")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req StartRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.pipelines(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, _, err := p.Get(r.Context(), n); err != nil {
		s.fail(w, r, err)
		return
	}
	t := source.Trigger{ID: req.ID, Pipeline: n, Kind: "api", Commit: req.Commit, Ref: req.Ref,
		Actor: caller(r).Actor(), Variables: req.Variables}
	if t.ID == "" {
		t.ID = newID()
	}
	id, err := source.Publish(r.Context(), s.o.Bus.JetStream(), s.o.Validator, t)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, Started{Run: id, Pipeline: n, Trigger: t.ID})
}

// StageRollbackRequest is the body of POST /pipelines/{pipeline}/rollback.
type StageRollbackRequest struct {
	Stage string `json:"stage"`
	// To is the run whose revision the stage returns to (default: the
	// last run in which the stage succeeded).
	To     string `json:"to,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (s *Server) stageRollback(w http.ResponseWriter, r *http.Request) {
	n, err := name(r, "pipeline")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var req StageRollbackRequest
	if err := decode(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := checkNames(field{"stage", req.Stage, true}, field{"to", req.To, false}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.pipelineCommand(w, r, command.StageRollback, command.Request{Pipeline: n, Stage: req.Stage, To: req.To, Reason: req.Reason})
}

// TransitionRequest is the body of a stage disable.
type TransitionRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) stageTransition(disable bool) http.HandlerFunc {
	verb := command.StageEnable
	if disable {
		verb = command.StageDisable
	}
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := name(r, "pipeline")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		stage, err := name(r, "stage")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var req TransitionRequest
		if err := decode(r, &req); err != nil {
			s.fail(w, r, err)
			return
		}
		s.pipelineCommand(w, r, verb, command.Request{Pipeline: n, Stage: stage, Reason: req.Reason})
	}
}

// pipelineCommand checks the pipeline exists and sends a command about it.
func (s *Server) pipelineCommand(w http.ResponseWriter, r *http.Request, verb string, req command.Request) {
	p, err := s.pipelines(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, _, err := p.Get(r.Context(), req.Pipeline)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Stage != "" && !slices.ContainsFunc(d.Stages, func(st events.StageDef) bool { return st.Name == req.Stage }) {
		s.fail(w, r, fmt.Errorf("%w: pipeline %s has no stage %q", ErrNotFound, req.Pipeline, req.Stage))
		return
	}
	s.send(w, r, verb, req)
}
