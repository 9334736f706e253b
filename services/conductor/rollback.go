package conductor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/lanes"
)

// Stage rollback, after CodePipeline's: a new run of kind ROLLBACK re-runs
// one stage with the source revision, artifacts and variables of an
// earlier run in which the stage succeeded. Its run.requested carries the
// target's definition reduced to that stage, the target's trigger
// (revision), its variables (including those its actions exported before
// the stage) and its artifacts as they stood, so the stage's actions get
// the very objects (keys and digests) the target's did. The rollback run
// is a run like any other after that: it goes through the lane (a stage
// lock, a disabled transition) and ends Succeeded, Failed or Superseded.

// ErrNoRollbackTarget refuses a rollback with no run to return to.
var ErrNoRollbackTarget = errors.New("no run to roll back to")

// StageRollback starts a rollback run of req.Stage of req.Pipeline to run
// req.To, or by default to the latest run (not itself a rollback) in which
// the stage succeeded.
func (c *Conductor) StageRollback(ctx context.Context, req command.Request) command.Reply {
	reply := command.Reply{Pipeline: req.Pipeline, Stage: req.Stage}
	st, err := c.stageRollback(ctx, req)
	if err != nil {
		reply.Error = err.Error()
		c.o.Log.Warn().Err(err).Str("pipeline", req.Pipeline).Str("stage", req.Stage).Msg("stage rollback refused")
		return reply
	}
	reply.Run, reply.Phase = st.Run, st.Phase
	c.o.Log.Info().Str("pipeline", req.Pipeline).Str("stage", req.Stage).Str("run", st.Run).
		Str("to", st.Rollback.Run).Str("actor", req.Actor).Msg("stage rollback started")
	return reply
}

func (c *Conductor) stageRollback(ctx context.Context, req command.Request) (run.State, error) {
	if err := events.CheckName("pipeline", req.Pipeline); err != nil {
		return run.State{}, err
	}
	if err := events.CheckName("stage", req.Stage); err != nil {
		return run.State{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var target run.State
	if req.To != "" {
		if err := events.CheckName("run", req.To); err != nil {
			return run.State{}, err
		}
		evs, err := c.o.Bus.ReadRun(ctx, req.Pipeline, req.To, 0)
		if err != nil {
			return run.State{}, err
		}
		target = run.Fold(run.State{}, evs...)
		if target.Run == "" {
			return run.State{}, fmt.Errorf("%w: run %s of pipeline %s not found", ErrNoRollbackTarget, req.To, req.Pipeline)
		}
		if st := target.Stage(req.Stage); st == nil || st.Phase != run.Succeeded {
			return run.State{}, fmt.Errorf("%w: stage %s did not succeed in run %s", ErrNoRollbackTarget, req.Stage, req.To)
		}
	} else {
		t, err := c.rollbackTarget(ctx, req.Pipeline, req.Stage, 0)
		if err != nil {
			return run.State{}, err
		}
		target = t
	}
	trigger := events.Trigger{ID: fmt.Sprintf("rollback/%s/%s/%d", target.Run, req.Stage, c.o.Now().UnixNano()),
		Kind: "manual", Commit: target.Trigger.Commit, Ref: target.Trigger.Ref, Actor: req.Actor}
	return c.startRollback(ctx, target, req.Stage, trigger, "", c.o.Now())
}

// rollbackTarget is the latest run of the pipeline, started before
// sequence before (0: any), in which stage succeeded, leaving out
// rollback runs: a rollback returns to a revision that went through the
// pipeline, as CodePipeline's does.
func (c *Conductor) rollbackTarget(ctx context.Context, pipeline, stage string, before uint64) (run.State, error) {
	s, err := c.o.Bus.JetStream().Stream(ctx, events.StreamEvents)
	if err != nil {
		return run.State{}, fmt.Errorf("event stream: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.PipelineEvents(pipeline)))
	if err != nil {
		return run.State{}, fmt.Errorf("list runs of %s: %w", pipeline, err)
	}
	var best run.State
	for subject := range info.State.Subjects {
		_, runID, ok := parseRunSubject(subject)
		if !ok || runID == events.LaneToken {
			continue
		}
		evs, err := c.o.Bus.ReadRun(ctx, pipeline, runID, 0)
		if err != nil {
			return run.State{}, err
		}
		st := run.Fold(run.State{}, evs...)
		if st.Run == "" || st.Kind == events.KindRollback || (before > 0 && st.RequestedSeq >= before) {
			continue
		}
		if sg := st.Stage(stage); sg != nil && sg.Phase == run.Succeeded && st.RequestedSeq > best.RequestedSeq {
			best = st
		}
	}
	if best.Run == "" {
		return run.State{}, fmt.Errorf("%w: stage %s of pipeline %s has not succeeded in any earlier run", ErrNoRollbackTarget, stage, pipeline)
	}
	return best, nil
}

// startRollback appends the run.requested of a rollback run of stage to
// target. The run ID comes from the trigger ID, and the append expects an
// empty subject, so asking twice (a redelivered failure) starts one run.
func (c *Conductor) startRollback(ctx context.Context, target run.State, stage string, trigger events.Trigger, cause string, at time.Time) (run.State, error) {
	if lanes.Mode(target.Definition) == events.ModeParallel {
		return run.State{}, fmt.Errorf("stage rollback is not available in PARALLEL mode (as in CodePipeline): runs of pipeline %s are independent", target.Pipeline)
	}
	var def events.Definition
	def = target.Definition
	def.Stages = nil
	for _, sd := range target.Definition.Stages {
		if sd.Name == stage {
			sd.OnFailure = nil // a failed rollback does not roll back again
			def.Stages = append(def.Stages, sd)
		}
	}
	if len(def.Stages) == 0 {
		return run.State{}, fmt.Errorf("%w: run %s has no stage %s", ErrNoRollbackTarget, target.Run, stage)
	}
	// The target's variables as its stage saw them: its overrides and what
	// its actions exported before; Gantry's own are set anew for the run.
	vars := map[string]string{}
	for k, v := range decider.RunVariables(stopBefore(target, stage)) {
		if !strings.HasPrefix(k, "GANTRY_") {
			vars[k] = v
		}
	}
	var arts []events.ArtifactRef
	for _, name := range slices.Sorted(maps.Keys(target.Artifacts)) {
		arts = append(arts, target.Artifacts[name])
	}
	runID := events.RunIDForTrigger(trigger.ID, at.UnixMilli())
	req := events.RunRequested{Pipeline: target.Pipeline, Run: runID, Revision: target.Revision, Definition: def,
		Trigger: trigger, Variables: vars,
		Rollback: &events.Rollback{Run: target.Run, Stage: stage, Artifacts: arts, Cause: cause}}
	if len(req.Variables) == 0 {
		req.Variables = nil
	}
	e, err := events.New(events.RunID(runID, "requested"), decider.Source, runID, c.o.Now(), req)
	if err != nil {
		return run.State{}, fmt.Errorf("rollback run.requested: %w", err)
	}
	zero := uint64(0)
	seq, _, err := c.o.Bus.Append(ctx, target.Pipeline, e, &zero)
	if errors.Is(err, bus.ErrConflict) {
		evs, rerr := c.o.Bus.ReadRun(ctx, target.Pipeline, runID, 0)
		if rerr != nil {
			return run.State{}, rerr
		}
		return run.Fold(run.State{}, evs...), nil // already started
	}
	if err != nil {
		return run.State{}, err
	}
	e.Seq = seq
	return run.Fold(run.State{}, e), nil
}

// stopBefore is the run as it stood when it entered stage: the stages
// from it on are left out, so their exported variables are not carried.
func stopBefore(s run.State, stage string) run.State {
	out := s
	out.Stages = nil
	for _, st := range s.Stages {
		if st.Name == stage {
			break
		}
		out.Stages = append(out.Stages, st)
	}
	return out
}

// settled is what follows a run's advance beyond its own log: its lane
// reconciled, and the rollback its failure may ask for.
func (c *Conductor) settled(ctx context.Context, st run.State) error {
	if err := c.syncLane(ctx, st); err != nil {
		return err
	}
	return c.autoRollback(ctx, st)
}

// autoRollback starts the rollback a failed run's stage asks for with
// onFailure ROLLBACK (or an onSuccess condition with result ROLLBACK), once the stage has succeeded in an earlier run. It
// is idempotent (the rollback run's ID comes from the failed run), so it
// may be called for every sight of the failed run.
func (c *Conductor) autoRollback(ctx context.Context, st run.State) error {
	if st.Phase != run.Failed || st.Kind == events.KindRollback {
		return nil
	}
	var stage string
	for i, sg := range st.Stages {
		if sg.Phase == run.Failed {
			if f := st.Definition.Stages[i].OnFailure; sg.RollbackRequested || (f != nil && f.Result == events.OnFailureRollback) {
				stage = sg.Name
			}
			break
		}
	}
	if stage == "" || lanes.Mode(st.Definition) == events.ModeParallel {
		return nil
	}
	log := c.o.Log.With().Str("run", st.Run).Str("pipeline", st.Pipeline).Str("stage", stage).Logger()
	target, err := c.rollbackTarget(ctx, st.Pipeline, stage, st.RequestedSeq)
	if errors.Is(err, ErrNoRollbackTarget) {
		log.Warn().Err(err).Msg("onFailure ROLLBACK: nothing to roll back to")
		return nil
	}
	if err != nil {
		return err
	}
	trigger := events.Trigger{ID: "rollback/" + st.Run + "/" + stage, Kind: "event",
		Commit: target.Trigger.Commit, Ref: target.Trigger.Ref, Actor: "onFailure"}
	// The failed run's end time keeps the rollback's ID the same on
	// every sight of the failure.
	rb, err := c.startRollback(ctx, target, stage, trigger, st.Run, st.EndedAt)
	if err != nil {
		return err
	}
	log.Info().Str("rollback", rb.Run).Str("to", target.Run).Msg("onFailure ROLLBACK: rollback run started")
	return nil
}
