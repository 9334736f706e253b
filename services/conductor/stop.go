package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// StopVerb is the command verb the conductors serve on
// events.CmdSubject(StopVerb), in one queue group so one answers.
const StopVerb = "stop"

// StopRequest asks to stop a run (gantry run stop).
type StopRequest struct {
	Run     string `json:"run"`
	Abandon bool   `json:"abandon,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Actor names the caller; it is recorded in run.stopping.
	Actor string `json:"actor,omitempty"`
}

// StopReply answers a StopRequest: the run's phase after the request was
// recorded, or the error that refused it.
type StopReply struct {
	Run      string    `json:"run"`
	Pipeline string    `json:"pipeline,omitempty"`
	Phase    run.Phase `json:"phase,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// ErrRunEnded refuses to stop a run that has already ended.
var ErrRunEnded = errors.New("run already ended")

// serveStop answers gantry.cmd.stop until the subscription is drained.
func (c *Conductor) serveStop(ctx context.Context) (*nats.Subscription, error) {
	sub, err := c.o.Bus.Conn().QueueSubscribe(events.CmdSubject(StopVerb), Durable, func(m *nats.Msg) {
		var req StopRequest
		reply := StopReply{}
		if err := json.Unmarshal(m.Data, &req); err != nil {
			reply.Error = fmt.Sprintf("stop request: %v", err)
		} else {
			reply = c.Stop(ctx, req)
		}
		b, _ := json.Marshal(reply)
		_ = m.Respond(b)
	})
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", events.CmdSubject(StopVerb), err)
	}
	return sub, nil
}

// Stop appends run.stopping to a run that has not ended. The conductors
// then decide the rest (abandon, run.stopped) from the log like anything
// else, so the request is served by whichever conductor answers.
func (c *Conductor) Stop(ctx context.Context, req StopRequest) StopReply {
	reply := StopReply{Run: req.Run}
	st, err := c.stop(ctx, req)
	reply.Pipeline, reply.Phase = st.Pipeline, st.Phase
	if err != nil {
		reply.Error = err.Error()
		c.o.Log.Warn().Err(err).Str("run", req.Run).Msg("stop refused")
	} else {
		c.o.Log.Info().Str("run", req.Run).Str("actor", req.Actor).Bool("abandon", req.Abandon).Msg("stop requested")
	}
	return reply
}

func (c *Conductor) stop(ctx context.Context, req StopRequest) (run.State, error) {
	if err := events.CheckName("run", req.Run); err != nil {
		return run.State{}, err
	}
	if req.Reason == "" {
		req.Reason = "stopped on request"
		if req.Actor != "" {
			req.Reason = "stopped by " + req.Actor
		}
	}
	b := c.o.Bus
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pipeline, err := b.FindRun(ctx, req.Run)
	if err != nil {
		return run.State{}, fmt.Errorf("find run %s: %w", req.Run, err)
	}
	for range 8 {
		evs, tip, err := b.ReadRunTip(ctx, pipeline, req.Run, 0)
		if err != nil {
			return run.State{}, err
		}
		st := run.Fold(run.State{}, evs...)
		switch {
		case st.Run == "":
			return st, fmt.Errorf("run %s has no run.requested", req.Run)
		case st.Done():
			return st, fmt.Errorf("%w: run %s is %s", ErrRunEnded, req.Run, st.Phase)
		case st.Phase == run.Stopping && (st.Abandon || !req.Abandon):
			return st, nil // already asked
		}
		e, err := events.New(events.StopID(req.Run, req.Abandon), decider.Source, req.Run, c.o.Now(), events.RunStopping{
			Run: req.Run, Abandon: req.Abandon, Reason: req.Reason, Actor: req.Actor})
		if err != nil {
			return st, fmt.Errorf("stop event: %w", err)
		}
		seq, _, err := b.Append(ctx, pipeline, e, &tip)
		if errors.Is(err, bus.ErrConflict) {
			continue // the run moved on: look again
		}
		if err != nil {
			return st, err
		}
		e.Seq = seq
		return run.Evolve(st, e), nil
	}
	return run.State{}, fmt.Errorf("run %s: stop kept conflicting with other appends", req.Run)
}
