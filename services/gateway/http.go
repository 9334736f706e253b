package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/rollback"
	"github.com/gantry-ci/gantry/services/source"
)

// Errors of the gateway's own checks; statusOf maps them with the rest.
var (
	// ErrBadRequest: a body or query parameter is malformed.
	ErrBadRequest = errors.New("bad request")
	// ErrNotFound: the thing a path names does not exist.
	ErrNotFound = errors.New("not found")
)

// maxBody bounds JSON request bodies; pipeline files have their own bound.
const maxBody = 64 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// statusOf maps an error to its HTTP status and a hint, by sentinel.
func statusOf(err error) (int, string) {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, events.ErrInvalidName), errors.Is(err, schemas.ErrInvalid),
		errors.Is(err, deploy.ErrInvalidGroup):
		return http.StatusBadRequest, "fix the request; see /openapi.json"
	case errors.Is(err, bus.ErrNoRun):
		return http.StatusNotFound, "list runs with GET /api/v1/runs"
	case errors.Is(err, source.ErrUnknownPipeline):
		return http.StatusNotFound, "list pipelines with GET /api/v1/pipelines"
	case errors.Is(err, bus.ErrNoDeployment):
		return http.StatusNotFound, "list deployments with GET /api/v1/deployments"
	case errors.Is(err, deploy.ErrNoGroup):
		return http.StatusNotFound, "list groups with GET /api/v1/groups"
	case errors.Is(err, ErrNotFound), errors.Is(err, artifact.ErrNotFound):
		return http.StatusNotFound, ""
	case errors.Is(err, artifact.ErrDigestMismatch):
		return http.StatusInternalServerError, "the stored object does not match the digest the run's log recorded: it was altered or damaged"
	case errors.Is(err, command.ErrRefused):
		return http.StatusConflict, "the run's state does not allow this now; GET the run to see it"
	case errors.Is(err, deploy.ErrGroupBusy), errors.Is(err, rollback.ErrNoGoodRevision):
		return http.StatusConflict, ""
	case errors.Is(err, nats.ErrNoResponders):
		return http.StatusServiceUnavailable, "no conductor is serving commands; start one (gantry conductor)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return http.StatusGatewayTimeout, "the bus did not answer in time; try again"
	}
	return http.StatusInternalServerError, ""
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, hint := statusOf(err)
	if status >= 500 && r.Context().Err() == nil {
		s.o.Log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
	}
	auth.WriteError(w, status, err.Error(), hint)
}

// decode reads a JSON body into v, refusing unknown fields; an empty body
// leaves v as it is.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %v", ErrBadRequest, err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("%w: body over %d bytes", ErrBadRequest, maxBody)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", ErrBadRequest, err)
	}
	return nil
}

// name reads a path value that must be a valid name.
func name(r *http.Request, what string) (string, error) {
	v := r.PathValue(what)
	if err := events.CheckName(what, v); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return v, nil
}

// caller is the authenticated caller; Require put it there.
func caller(r *http.Request) auth.Caller {
	c, _ := auth.CallerFrom(r.Context())
	return c
}

// wantsSSE reports whether the client asked for an event stream.
func wantsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}
