package chatops

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
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

// Latest is the pipeline's most recently active run: the run of the last
// event on gantry.events.<pipeline>.*, folded from its log. One message
// get and one run's read, however many runs the pipeline has.
func (d busDeps) Latest(ctx context.Context, pipeline string) (run.State, error) {
	s, err := d.b.JetStream().Stream(ctx, events.StreamEvents)
	if err != nil {
		return run.State{}, fmt.Errorf("stream %s: %w", events.StreamEvents, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, events.PipelineEvents(pipeline))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return run.State{}, fmt.Errorf("%w of pipeline %s", ErrNoRuns, pipeline)
	}
	if err != nil {
		return run.State{}, fmt.Errorf("last event of %s: %w", pipeline, err)
	}
	parts := strings.Split(m.Subject, ".")
	runID := parts[len(parts)-1]
	if runID == events.LaneToken {
		// The pipeline's lane (execution modes) wrote last: take the
		// newest run from the subjects instead.
		ids, err := d.b.RunIDs(ctx, pipeline)
		if err != nil {
			return run.State{}, err
		}
		if len(ids) == 0 {
			return run.State{}, fmt.Errorf("%w of pipeline %s", ErrNoRuns, pipeline)
		}
		runID = ids[0]
	}
	evs, err := d.b.ReadRun(ctx, pipeline, runID, 0)
	if err != nil {
		return run.State{}, fmt.Errorf("read run %s: %w", runID, err)
	}
	return run.Fold(run.State{}, evs...), nil
}

// Rollback rolls the group back. The deployment log has no actor field, so
// who asked is logged here.
func (d busDeps) Rollback(ctx context.Context, group, actor string) (events.DeploymentCreated, error) {
	c, err := rollback.Rollback(ctx, d.b, rollback.Request{Group: group})
	if err != nil {
		return c, err
	}
	d.log.Info().Str("actor", actor).Str("group", group).Str("deployment", c.Deployment).Msg("deployment rollback from chat")
	return c, nil
}
