package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/internal/consume"
	"github.com/gantry-ci/gantry/services/lanes"
)

// What runs of one pipeline share (execution modes, transitions) lives in
// the pipeline's lane log, events.LaneSubject: the conductor keeps a cache
// of each lane folded (laneCache), appends what lanes.Decide says with the
// lane subject's last sequence expected, and moves on the runs the lane
// let in or found overtaken. Nothing is only in memory: the cache is
// folded from the log and refreshed before it is used to let a run in
// (unless the consumer's deliveries prove it current, laneCache.current),
// and the lane is reconciled whenever one of its events is delivered
// (each conductor's durable consumer gets them like run events) and for
// every lane subject open when a conductor starts.

// laneCache holds the folded lane of each pipeline, shared by the shards.
type laneCache struct {
	mu sync.Mutex
	m  map[string]laneEntry
	// noted is the last lane event of each pipeline this process has
	// received from its consumer, noted as it arrives, before any later
	// delivery is handed to a shard.
	noted map[string]uint64
	// at is where the consumer's deliveries stood: the last delivery
	// received (consume.Window).
	at consume.Position
}

type laneEntry struct {
	st lanes.State
	// tip is the lane subject's last sequence, counting undecodable
	// messages: what the next append expects.
	tip uint64
	// at is where the deliveries stood when the lane was last read: a lane
	// event stored since has a later delivery number.
	at consume.Position
}

// received records a delivery as it arrives (the Consume callback, in
// order): its number, and the lane event it carries, if any.
func (lc *laneCache) received(at consume.Position, pipeline string, laneSeq uint64) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.at = at
	if laneSeq > lc.noted[pipeline] {
		lc.noted[pipeline] = laneSeq
	}
}

// current reports whether the cached lane already holds every lane event
// stored before the delivery in span: every delivery since the lane was
// read reached this process (so any lane event stored since came to it,
// in order, before this delivery) and none of them was a lane event of
// this pipeline the cache lacks. A decision on that delivery then needs
// no fresh read.
func (lc *laneCache) current(pipeline string, span consume.Span) (laneEntry, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	le, ok := lc.m[pipeline]
	return le, ok && le.at.N != 0 && span.Covers(consume.Position{N: le.at.N + 1, Epoch: le.at.Epoch}) && lc.noted[pipeline] <= le.tip
}

// lane returns the pipeline's lane as the log has it now.
func (c *Conductor) lane(ctx context.Context, pipeline string) (lanes.State, uint64, error) {
	c.lanes.mu.Lock()
	le, known := c.lanes.m[pipeline]
	at := c.lanes.at // before the read: what is stored later is delivered later
	c.lanes.mu.Unlock()
	if known {
		// Most lanes rarely change: a look at the subject's last sequence
		// (an index lookup on the server) says whether there is anything
		// to read.
		last, err := c.o.Bus.RunLastSeq(ctx, pipeline, events.LaneToken)
		if err != nil {
			return le.st, le.tip, fmt.Errorf("read lane of %s: %w", pipeline, err)
		}
		if last <= le.tip {
			c.lanes.mu.Lock()
			if cur, ok := c.lanes.m[pipeline]; ok && cur.tip == le.tip && (cur.at.Epoch != at.Epoch || cur.at.N < at.N) {
				cur.at = at
				c.lanes.m[pipeline] = cur
			}
			c.lanes.mu.Unlock()
			return le.st, le.tip, nil
		}
	}
	evs, tip, err := c.o.Bus.ReadRunTip(ctx, pipeline, events.LaneToken, le.tip)
	if err != nil {
		return le.st, le.tip, fmt.Errorf("read lane of %s: %w", pipeline, err)
	}
	if known && len(evs) == 0 && tip <= le.tip {
		return le.st, le.tip, nil
	}
	st := lanes.Fold(le.st, evs...)
	le = laneEntry{st: st, tip: max(tip, le.tip), at: at}
	c.lanes.mu.Lock()
	if cur, ok := c.lanes.m[pipeline]; !ok || cur.tip < le.tip {
		c.lanes.m[pipeline] = le
	}
	c.lanes.mu.Unlock()
	return le.st, le.tip, nil
}

// handleLane handles a delivered lane event: a refused one goes to the
// dead-letter stream (the lane fold skips it too); any other makes this
// conductor reconcile the lane, which is how a run waiting in one
// conductor process learns that another released the stage.
func (c *Conductor) handleLane(ctx context.Context, pipeline, subject string, seq uint64, data []byte, e events.Event, derr error) error {
	if derr == nil && e.Subject != events.LaneToken {
		derr = fmt.Errorf("%w: event subject %q on the lane subject %s", events.ErrInvalidEvent, e.Subject, subject)
	}
	if derr != nil {
		c.o.Log.Warn().Err(derr).Str("subject", subject).Uint64("seq", seq).Msg("refused lane event sent to the dead-letter stream")
		return c.o.Bus.DeadLetter(ctx, events.StreamEvents, subject, seq, data, derr)
	}
	return c.reconcile(ctx, pipeline)
}

// inputsFor is the decider's inputs for a run: with its pipeline's lane
// while the run is open, read fresh whenever the decision may start a
// stage (the lane decides that), cached otherwise (the decision does not
// look at the lane then, and most events of a run are of that kind).
func (c *Conductor) inputsFor(ctx context.Context, st run.State, span *consume.Span) (decider.Inputs, error) {
	in := c.inputs()
	if st.Run == "" || st.Done() {
		return in, nil
	}
	c.lanes.mu.Lock()
	le, known := c.lanes.m[st.Pipeline]
	c.lanes.mu.Unlock()
	l := le.st
	if known && span != nil {
		// Deciding on a delivered event: the lane as the log had it when
		// the event was stored is enough, and may be known already.
		if cur, ok := c.lanes.current(st.Pipeline, *span); ok {
			in.Lane = &cur.st
			return in, nil
		}
	}
	if !known || mayEnter(st) {
		var err error
		if l, _, err = c.lane(ctx, st.Pipeline); err != nil {
			return in, err
		}
	}
	in.Lane = &l
	return in, nil
}

// mayEnter reports whether deciding on the run may start a stage: it
// waits before one, or a stage it is in has no action left in progress
// or to dispatch, so the chain decided next may end it and enter the next.
func mayEnter(st run.State) bool {
	if len(lanes.ViewOf(st).Waiting) > 0 {
		return true
	}
	for _, sg := range st.Stages {
		if sg.Phase != run.Running {
			continue
		}
		ended := true
		for _, a := range sg.Actions {
			if !a.Phase.Done() {
				ended = false
			}
		}
		if ended {
			return true
		}
	}
	return false
}

// syncLane reconciles the run's lane when the run's standing there
// changed: it waits before a stage, left one it held, or ended.
func (c *Conductor) syncLane(ctx context.Context, st run.State) error {
	if st.Run == "" {
		return nil
	}
	c.lanes.mu.Lock()
	l := c.lanes.m[st.Pipeline].st
	c.lanes.mu.Unlock()
	v := lanes.ViewOf(st)
	granted := letIn(l, v)
	overtaken := !v.Done && l.SupersededBy(st.Run) != ""
	if !granted && !overtaken && len(lanes.Decide(l, st.Pipeline, map[string]lanes.View{st.Run: v}, c.o.Now())) == 0 {
		return nil
	}
	return c.reconcile(ctx, st.Pipeline, st.Run)
}

// maxLaneRounds bounds one reconciliation.
const maxLaneRounds = 32

// reconcile brings a lane and its runs into line: it appends what
// lanes.Decide says for the runs the lane concerns (and extra, a run that
// may newly wait), then moves on each run the lane let into a stage it
// has not started, or found overtaken, until nothing is left to do. Any
// conductor may run it at any time; the appends are conditional, so the
// outcome is the same whoever wins.
func (c *Conductor) reconcile(ctx context.Context, pipeline string, extra ...string) error {
	log := c.o.Log.With().Str("pipeline", pipeline).Str("lane", events.LaneToken).Logger()
	for range maxLaneRounds {
		l, tip, err := c.lane(ctx, pipeline)
		if err != nil {
			return err
		}
		views := map[string]lanes.View{}
		for _, r := range append(l.Runs(), extra...) {
			if _, ok := views[r]; ok {
				continue
			}
			evs, err := c.o.Bus.ReadRun(ctx, pipeline, r, 0)
			if err != nil {
				return err
			}
			switch st := run.Fold(run.State{}, evs...); {
			case st.Run != "":
				views[r] = lanes.ViewOf(st)
			case len(evs) == 0 && slices.Contains(l.Runs(), r):
				// The run's log is gone (aged out by the stream's
				// limits): it holds nothing any more, or the stage it
				// held would stay locked for ever.
				views[r] = lanes.View{Run: r, Done: true}
			}
		}
		if evs := lanes.Decide(l, pipeline, views, c.o.Now()); len(evs) > 0 {
			seqs, err := c.o.Bus.AppendChain(ctx, pipeline, evs, tip)
			for _, e := range evs[:len(seqs)] {
				log.Info().Str("type", e.Type).Str("id", e.ID).Msg("appended")
			}
			if err != nil && !errors.Is(err, bus.ErrConflict) {
				return err
			}
			continue // another conductor was first, or look again at what changed
		}
		moved := false
		for _, r := range slices.Sorted(maps.Keys(views)) {
			v := views[r]
			if letIn(l, v) || (!v.Done && l.SupersededBy(r) != "") {
				if err := c.advanceRun(ctx, pipeline, r); err != nil {
					return err
				}
				moved = true
			}
		}
		if !moved {
			return nil
		}
	}
	return fmt.Errorf("lane of %s did not settle after %d rounds", pipeline, maxLaneRounds)
}

// advanceRun folds a run from the log and advances it, outside the shard
// that owns it: that shard's cached copy is then behind, which its next
// append's conflict (or the echo of this one) corrects.
func (c *Conductor) advanceRun(ctx context.Context, pipeline, runID string) error {
	evs, tip, err := c.o.Bus.ReadRunTip(ctx, pipeline, runID, 0)
	if err != nil {
		return err
	}
	st := run.Fold(run.State{}, evs...)
	if st.Run == "" || st.Done() {
		return nil
	}
	en := &entry{published: map[string]bool{}, tip: tip}
	log := c.o.Log.With().Str("run", runID).Str("pipeline", pipeline).Logger()
	st, err = c.advance(ctx, pipeline, en, st, nil, log)
	if err != nil {
		return err
	}
	// Not settled (the lane is what is being reconciled): only the
	// rollback a failure asks for.
	return c.autoRollback(ctx, st)
}

// ErrUnknownStage refuses a transition command for a stage the pipeline
// does not have.
var ErrUnknownStage = errors.New("unknown stage")

// StageDisable closes the transition into req.Stage of req.Pipeline:
// runs wait before it (gantry stage disable).
func (c *Conductor) StageDisable(ctx context.Context, req command.Request) command.Reply {
	return c.transition(ctx, req, true)
}

// StageEnable opens the transition into req.Stage of req.Pipeline again;
// the run waiting there (or, in QUEUED mode, the first of them) enters.
func (c *Conductor) StageEnable(ctx context.Context, req command.Request) command.Reply {
	return c.transition(ctx, req, false)
}

func (c *Conductor) transition(ctx context.Context, req command.Request, disable bool) command.Reply {
	reply := command.Reply{Pipeline: req.Pipeline, Stage: req.Stage}
	err := c.setTransition(ctx, req, disable)
	if err != nil {
		reply.Error = err.Error()
		c.o.Log.Warn().Err(err).Str("pipeline", req.Pipeline).Str("stage", req.Stage).Bool("disable", disable).Msg("transition change refused")
		return reply
	}
	c.o.Log.Info().Str("pipeline", req.Pipeline).Str("stage", req.Stage).Str("actor", req.Actor).Bool("disable", disable).Msg("transition changed")
	return reply
}

func (c *Conductor) setTransition(ctx context.Context, req command.Request, disable bool) error {
	if err := events.CheckName("pipeline", req.Pipeline); err != nil {
		return err
	}
	if err := events.CheckName("stage", req.Stage); err != nil {
		return err
	}
	if disable && req.Reason == "" {
		return errors.New("stage-disable: a reason is required (--reason): it tells the others why runs wait")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.checkStage(ctx, req.Pipeline, req.Stage); err != nil {
		return err
	}
	for range 8 {
		l, tip, err := c.lane(ctx, req.Pipeline)
		if err != nil {
			return err
		}
		if l.IsDisabled(req.Stage) == disable {
			break // already so
		}
		e, err := events.New(events.TransitionID(req.Pipeline, req.Stage, disable, tip), lanes.Source, events.LaneToken, c.o.Now(),
			events.LaneTransition{Pipeline: req.Pipeline, Stage: req.Stage, Disabled: disable,
				Reason: events.TruncateReason(req.Reason), Actor: req.Actor})
		if err != nil {
			return fmt.Errorf("transition event: %w", err)
		}
		_, _, err = c.o.Bus.Append(ctx, req.Pipeline, e, &tip)
		if errors.Is(err, bus.ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	// Runs waiting at an enabled transition enter now, not at the next event.
	return c.reconcile(ctx, req.Pipeline)
}

// checkStage refuses a stage the pipeline's current definition lacks.
func (c *Conductor) checkStage(ctx context.Context, pipeline, stage string) error {
	kv, err := c.o.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return fmt.Errorf("pipelines bucket: %w", err)
	}
	e, err := kv.Get(ctx, pipeline)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: pipeline %q is not applied (gantry pipeline list)", ErrUnknownStage, pipeline)
	}
	if err != nil {
		return fmt.Errorf("read pipeline %s: %w", pipeline, err)
	}
	var d events.Definition
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return fmt.Errorf("decode pipeline %s: %w", pipeline, err)
	}
	var names []string
	for _, s := range d.Stages {
		if s.Name == stage {
			return nil
		}
		names = append(names, s.Name)
	}
	return fmt.Errorf("%w: pipeline %s has no stage %q (its stages: %v)", ErrUnknownStage, pipeline, stage, names)
}

// letIn reports whether the lane let the run into a stage it waits to
// start: the run has yet to start it.
func letIn(l lanes.State, v lanes.View) bool {
	return slices.ContainsFunc(v.Waiting, func(st string) bool { return l.Holds(st, v.Run) })
}
