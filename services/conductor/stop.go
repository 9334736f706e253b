package conductor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/decider"
)

// serveCommands answers every command verb the conductors serve, in one
// queue group so one conductor answers each request. Each verb's handler
// lives in its own file; a verb added to command.Verbs gets its handler
// here.
func (c *Conductor) serveCommands(ctx context.Context) ([]*nats.Subscription, error) {
	handlers := map[string]command.Handler{
		command.Stop:          c.Stop,
		command.Approve:       c.Approve,
		command.Reject:        c.Reject,
		command.Retry:         c.Retry,
		command.StageDisable:  c.StageDisable,
		command.StageEnable:   c.StageEnable,
		command.StageRollback: c.StageRollback,
	}
	var subs []*nats.Subscription
	for verb, h := range handlers {
		sub, err := command.Serve(ctx, c.o.Bus.Conn(), verb, Durable, h)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, err
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

// ErrRunEnded refuses to stop a run that has already ended.
var ErrRunEnded = errors.New("run already ended")

// Stop appends run.stopping to a run that has not ended. The conductors
// then decide the rest (abandon, run.stopped) from the log like anything
// else, so the request is served by whichever conductor answers.
func (c *Conductor) Stop(ctx context.Context, req command.Request) command.Reply {
	reason := req.Reason
	if reason == "" {
		reason = "stopped on request"
		if req.Actor != "" {
			reason = "stopped by " + req.Actor
		}
	}
	st, err := c.AppendToRun(ctx, req.Run, func(st run.State) (*events.Event, error) {
		switch {
		case st.Done():
			return nil, fmt.Errorf("%w: run %s is %s", ErrRunEnded, req.Run, st.Phase)
		case st.Phase == run.Stopping && (st.Abandon || !req.Abandon):
			return nil, nil // already asked
		}
		e, err := events.New(decider.StopID(st, req.Abandon), decider.Source, req.Run, c.o.Now(), events.RunStopping{
			Run: req.Run, Abandon: req.Abandon, Reason: reason, Actor: req.Actor})
		if err != nil {
			return nil, fmt.Errorf("stop event: %w", err)
		}
		return &e, nil
	})
	reply := command.Reply{Run: req.Run, Pipeline: st.Pipeline, Phase: st.Phase}
	if err != nil {
		reply.Error = err.Error()
		c.o.Log.Warn().Err(err).Str("run", req.Run).Msg("stop refused")
	} else {
		c.o.Log.Info().Str("run", req.Run).Str("actor", req.Actor).Bool("abandon", req.Abandon).Msg("stop requested")
	}
	return reply
}

// AppendToRun appends the event build makes of a run's current state,
// conditional on the run not having moved on meanwhile (it folds again and
// asks build again when it has). build returns nil for nothing to append
// (the command was already recorded) or an error that refuses the command.
// It returns the run's state after the append. Every command that records
// a fact in a run (stop, approve, reject, retry) goes through here.
func (c *Conductor) AppendToRun(ctx context.Context, runID string, build func(run.State) (*events.Event, error)) (run.State, error) {
	if err := events.CheckName("run", runID); err != nil {
		return run.State{}, err
	}
	b := c.o.Bus
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pipeline, err := b.FindRun(ctx, runID)
	if err != nil {
		return run.State{}, fmt.Errorf("find run %s: %w", runID, err)
	}
	for range 8 {
		evs, tip, err := b.ReadRunTip(ctx, pipeline, runID, 0)
		if err != nil {
			return run.State{}, err
		}
		st := run.Fold(run.State{}, evs...)
		if st.Run == "" {
			return st, fmt.Errorf("run %s has no run.requested", runID)
		}
		e, err := build(st)
		if err != nil || e == nil {
			return st, err
		}
		seq, _, err := b.Append(ctx, pipeline, *e, &tip)
		if errors.Is(err, bus.ErrConflict) {
			continue // the run moved on: look again
		}
		if err != nil {
			return st, err
		}
		e.Seq = seq
		return run.Evolve(st, *e), nil
	}
	return run.State{}, fmt.Errorf("run %s: the command kept conflicting with other appends", runID)
}
