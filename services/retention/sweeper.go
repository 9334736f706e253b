package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploydecider"
)

// DefaultEvery is how often a Sweeper sweeps unless told otherwise.
const DefaultEvery = time.Hour

// Sweeper applies a Policy to the artifacts bucket: it reads the runs and
// deployments projections and the bucket's keys, asks Plan what may go, and
// deletes it. Several sweepers may run; a delete of what another already
// deleted is not an error.
type Sweeper struct {
	Bus    *bus.Bus
	Log    zerolog.Logger
	Policy Policy
	// Every is the time between sweeps; DefaultEvery when zero.
	Every time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Result is what one sweep did.
type Result struct {
	Runs    int   // runs whose objects were (partly) deleted
	Objects int   // objects deleted
	Bytes   int64 // their size
}

// Run sweeps at start and then every Every until ctx ends. A failed sweep
// is logged and tried again at the next tick: the next sweep recomputes
// everything.
func (s *Sweeper) Run(ctx context.Context) error {
	every := s.Every
	if every <= 0 {
		every = DefaultEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.Log.Warn().Err(err).Msg("retention sweep failed; will try again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep deletes, once, what the policy lets go.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	js := s.Bus.JetStream()
	runs, err := readRuns(ctx, js)
	if err != nil {
		return Result{}, err
	}
	deps, err := readDeployments(ctx, js)
	if err != nil {
		return Result{}, err
	}
	obs, err := js.ObjectStore(ctx, events.BucketArtifacts)
	if err != nil {
		return Result{}, fmt.Errorf("artifacts bucket: %w", err)
	}
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return Result{}, fmt.Errorf("list artifacts: %w", err)
	}
	keys := make([]string, 0, len(infos))
	size := map[string]uint64{}
	for _, info := range infos {
		keys = append(keys, info.Name)
		size[info.Name] = info.Size
	}
	var res Result
	lastRun := ""
	for _, d := range Plan(s.Policy, now(), runs, deps, keys) {
		if err := obs.Delete(ctx, d.Key); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return res, fmt.Errorf("delete %s of run %s: %w", d.Key, d.Run, err)
		}
		res.Objects++
		res.Bytes += int64(size[d.Key])
		if d.Run != lastRun {
			res.Runs++
			lastRun = d.Run
			s.Log.Info().Str("pipeline", d.Pipeline).Str("run", d.Run).Msg("removing the artifacts and logs of an old run")
		}
	}
	if res.Objects > 0 {
		s.Log.Info().Int("runs", res.Runs).Int("objects", res.Objects).Int64("bytes", res.Bytes).Msg("retention sweep done")
	}
	return res, nil
}

// readRuns reads what the policy needs from the runs projection.
func readRuns(ctx context.Context, js jetstream.JetStream) ([]Run, error) {
	var out []Run
	err := eachValue(ctx, js, events.BucketRuns, func(v []byte) {
		var st struct {
			Run         string    `json:"run"`
			Pipeline    string    `json:"pipeline"`
			Phase       run.Phase `json:"phase"`
			RequestedAt time.Time `json:"requestedAt"`
			EndedAt     time.Time `json:"endedAt"`
		}
		if json.Unmarshal(v, &st) != nil || st.Run == "" {
			return // unreadable: its objects stay
		}
		out = append(out, Run{Pipeline: st.Pipeline, ID: st.Run, Done: st.Phase.Done(),
			Requested: st.RequestedAt, Ended: st.EndedAt})
	})
	return out, err
}

// readDeployments reads what the policy needs from the deployments
// projection.
func readDeployments(ctx context.Context, js jetstream.JetStream) ([]Deployment, error) {
	var out []Deployment
	err := eachValue(ctx, js, events.BucketDeployments, func(v []byte) {
		var st struct {
			Created struct {
				Deployment string             `json:"deployment"`
				Group      string             `json:"group"`
				Revision   events.ArtifactRef `json:"revision"`
			} `json:"created"`
			Phase   deploydecider.Phase `json:"phase"`
			Started time.Time           `json:"started"`
			EndSeq  uint64              `json:"endSeq"`
		}
		if json.Unmarshal(v, &st) != nil || st.Created.Deployment == "" {
			return
		}
		out = append(out, Deployment{Group: st.Created.Group, ID: st.Created.Deployment,
			InProgress: st.Phase == "" || st.Phase == deploydecider.InProgress, Succeeded: st.Phase == deploydecider.Succeeded,
			Started: st.Started, EndSeq: st.EndSeq, RevisionKey: st.Created.Revision.Key})
	})
	return out, err
}

func eachValue(ctx context.Context, js jetstream.JetStream, bucket string, fn func([]byte)) error {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("%s bucket: %w", bucket, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return fmt.Errorf("list %s: %w", bucket, err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			_ = keys.Stop()
			return fmt.Errorf("read %s %s: %w", bucket, k, err)
		}
		fn(e.Value())
	}
	return nil
}
