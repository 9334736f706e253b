package conductor

import (
	"context"
	"errors"
	"fmt"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/decider"
)

// ErrNotRetryable refuses a retry: the run is still running or was
// superseded, or the stage did not fail or stop.
var ErrNotRetryable = errors.New("cannot retry")

// Retry appends stage.retrying to a Failed or Stopped run: the stage runs
// again as a new attempt in the same run (its failed actions, or with All
// every action), and the run is Running again. The conductors then
// dispatch from the log as for any stage.
func (c *Conductor) Retry(ctx context.Context, req command.Request) command.Reply {
	mode := events.RetryFailed
	if req.All {
		mode = events.RetryAll
	}
	actor := req.Actor
	if actor == "" {
		actor = "unknown"
	}
	var err error
	var st run.State
	if req.Stage == "" {
		err = fmt.Errorf("%w: name the stage to retry (stage)", ErrNotRetryable)
	} else {
		st, err = c.AppendToRun(ctx, req.Run, func(st run.State) (*events.Event, error) {
			if err := retryable(st, req.Stage); err != nil {
				return nil, err
			}
			stage := st.Stage(req.Stage)
			e, err := events.New(events.RetryID(req.Run, stage.Name, stage.Attempt+1), decider.Source, req.Run, c.o.Now(),
				events.StageRetrying{Run: req.Run, Stage: stage.Name, Attempt: stage.Attempt + 1, Mode: mode,
					Actor: actor, Reason: events.TruncateReason(req.Reason)})
			if err != nil {
				return nil, fmt.Errorf("retry event: %w", err)
			}
			return &e, nil
		})
	}
	reply := command.Reply{Run: req.Run, Pipeline: st.Pipeline, Stage: req.Stage, Phase: st.Phase}
	if err != nil {
		reply.Error = err.Error()
		c.o.Log.Warn().Err(err).Str("run", req.Run).Str("stage", req.Stage).Msg("retry refused")
	} else {
		c.o.Log.Info().Str("run", req.Run).Str("stage", req.Stage).Str("actor", actor).Str("mode", mode).Msg("retry requested")
	}
	return reply
}

// retryable explains why stage of run st cannot be retried by hand, or
// returns nil.
func retryable(st run.State, stage string) error {
	s := st.Stage(stage)
	switch {
	case s == nil:
		return fmt.Errorf("%w: run %s of %s has no stage %q", ErrNotRetryable, st.Run, st.Pipeline, stage)
	case st.Phase == run.Requested || st.Phase == run.Running || st.Phase == run.Stopping:
		return fmt.Errorf("%w: run %s is still %s; stop it first (gantry run stop) or wait for it to end", ErrNotRetryable, st.Run, st.Phase)
	case st.Phase != run.Failed && st.Phase != run.Stopped:
		return fmt.Errorf("%w: run %s ended %s; only a Failed or Stopped run can be retried", ErrNotRetryable, st.Run, st.Phase)
	case !run.Retryable(st, *s, false):
		phase := s.Phase
		if phase == run.NotStarted {
			phase = "not started"
		}
		return fmt.Errorf("%w: stage %s of run %s is %s; only a stage that failed or was stopped can be retried", ErrNotRetryable, stage, st.Run, phase)
	}
	return nil
}
