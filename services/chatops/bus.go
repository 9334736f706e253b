package chatops

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/rollback"
	"github.com/gantry-ci/gantry/services/source"
)

// BusDeps carries the slash commands out on a Gantry bus: approve and
// reject through services/command, starts through source.Publish, status
// from the runs projection, rollbacks through services/rollback. The
// connection's user needs the operator's permissions (services/access).
func BusDeps(b *bus.Bus, v *schemas.Validator, log zerolog.Logger) Deps {
	d := busDeps{b: b, v: v, log: log}
	return Deps{Commands: command.Client{Conn: b.Conn()}, Runs: d, Rollbacks: d}
}

type busDeps struct {
	b   *bus.Bus
	v   *schemas.Validator
	log zerolog.Logger
}

// ErrNoRuns: the pipeline has no run yet.
var ErrNoRuns = errors.New("no runs")

func (d busDeps) Start(ctx context.Context, pipeline string, vars map[string]string, actor string) (string, error) {
	js := d.b.JetStream()
	kv, err := js.KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		return "", fmt.Errorf("pipelines bucket: %w", err)
	}
	if _, _, err := (source.Pipelines{KV: kv}).Get(ctx, pipeline); err != nil {
		return "", err
	}
	t := source.Trigger{ID: "slack/" + uuid.Must(uuid.NewV7()).String(), Pipeline: pipeline, Kind: "manual",
		Actor: actor, Variables: vars}
	return source.Publish(ctx, js, d.v, t)
}

// Latest is the pipeline's newest run (run IDs are UUIDv7s, so the first
// of bus.RunIDs), folded from its log: one stream-info call and one run's
// read, however many runs the pipeline has.
func (d busDeps) Latest(ctx context.Context, pipeline string) (run.State, error) {
	ids, err := d.b.RunIDs(ctx, pipeline)
	if err != nil {
		return run.State{}, err
	}
	if len(ids) == 0 {
		return run.State{}, fmt.Errorf("%w of pipeline %s", ErrNoRuns, pipeline)
	}
	evs, err := d.b.ReadRun(ctx, pipeline, ids[0], 0)
	if err != nil {
		return run.State{}, fmt.Errorf("read run %s: %w", ids[0], err)
	}
	return run.Fold(run.State{}, evs...), nil
}

// Rollback rolls the group back; deployment.created records the actor.
func (d busDeps) Rollback(ctx context.Context, group, actor string) (events.DeploymentCreated, error) {
	c, err := rollback.Rollback(ctx, d.b, rollback.Request{Group: group, Actor: actor})
	if err != nil {
		return c, err
	}
	d.log.Info().Str("actor", actor).Str("group", group).Str("deployment", c.Deployment).Msg("deployment rollback from chat")
	return c, nil
}
