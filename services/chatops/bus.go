package chatops

import (
	"context"
	"encoding/json"
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

// Latest reads the runs projection: run IDs are UUIDv7, so the greatest
// is the newest.
func (d busDeps) Latest(ctx context.Context, pipeline string) (run.State, error) {
	kv, err := d.b.JetStream().KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return run.State{}, fmt.Errorf("runs bucket: %w", err)
	}
	keys, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return run.State{}, fmt.Errorf("%w of pipeline %s", ErrNoRuns, pipeline)
	}
	if err != nil {
		return run.State{}, fmt.Errorf("runs bucket: %w", err)
	}
	var best run.State
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyNotFound) {
				return run.State{}, fmt.Errorf("runs bucket %s: %w", k, err)
			}
			continue
		}
		var s run.State
		if json.Unmarshal(e.Value(), &s) != nil || s.Pipeline != pipeline {
			continue
		}
		if strings.Compare(s.Run, best.Run) > 0 {
			best = s
		}
	}
	if best.Run == "" {
		return run.State{}, fmt.Errorf("%w of pipeline %s", ErrNoRuns, pipeline)
	}
	return best, nil
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
