// Package rollback is the rollback service (role `rollback`) and the
// library behind `gantry rollback` and `gantry redeploy`. On a failed
// deployment, or one stopped with rollback requested, of a group whose
// autoRollback allows it, it finds the group's last known good revision by
// folding the group's deployment log (gantry.deploys.<group>.*; never a
// mutable table) and creates a new deployment of it that records
// rollbackOf. The rule is services/rollbackpolicy's: a rollback is never
// rolled back, and a deployment is never rolled back over a newer one.
package rollback

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/internal/consume"
	"github.com/gantry-ci/gantry/services/rollbackpolicy"
)

// Durable is the rollback service's consumer on GANTRY_DEPLOYS.
const Durable = "rollback"

// Source is the CloudEvents source of the rollback service's events.
const Source = "/gantry/rollback"

// ErrNoGoodRevision: the group has no succeeded deployment to return to.
var ErrNoGoodRevision = errors.New("no last known good revision")

// LastKnownGood folds the group's deployment log and returns the created
// event of the deployment that succeeded last, leaving out `except`.
func LastKnownGood(ctx context.Context, b *bus.Bus, group, except string) (events.DeploymentCreated, error) {
	states, err := deploy.List(ctx, b, group)
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	best := lastSucceeded(states, except)
	if best == nil {
		return events.DeploymentCreated{}, fmt.Errorf("%w in group %s", ErrNoGoodRevision, group)
	}
	return best.Created, nil
}

// lastSucceeded picks, among folded deployments, the one whose succeeded
// event is latest in the log (not the one with the latest event: hosts'
// events may follow a deployment's end), leaving out `except`.
func lastSucceeded(states []deploydecider.State, except string) *deploydecider.State {
	var best *deploydecider.State
	for i := range states {
		s := &states[i]
		if s.Phase != deploydecider.Succeeded || s.ID() == except {
			continue
		}
		if best == nil || s.EndSeq > best.EndSeq {
			best = s
		}
	}
	return best
}

// RollbackID is the deterministic ID of the rollback of a deployment, so
// that two rollback services (or a redelivery) create one rollback.
func RollbackID(failed string, endedAt time.Time) string {
	return events.RunIDForTrigger("rollback/"+failed, endedAt.UnixMilli())
}

// Request asks for a rollback.
type Request struct {
	Group string
	// Of is the deployment being rolled back, left out when looking for
	// the last known good revision; empty for a manual rollback.
	Of string
	// To deploys that deployment's revision instead of the last known good.
	To string
	// ID is the rollback deployment's ID; empty means a new one.
	ID string
	// IgnoreApplicationStopFailures: see deploy.Request.
	IgnoreApplicationStopFailures bool
	// Actor names who asked, for a manual rollback: see deploy.Request.
	Actor string
}

// Rollback creates a deployment of the group's last known good revision
// (or of deployment To's revision), with that revision's variables,
// recording rollbackOf.
func Rollback(ctx context.Context, b *bus.Bus, req Request) (events.DeploymentCreated, error) {
	var good events.DeploymentCreated
	group := req.Group
	if req.To != "" {
		st, err := deploy.Load(ctx, b, req.To)
		if err != nil {
			return events.DeploymentCreated{}, err
		}
		good = st.Created
		if group == "" {
			group = st.Group()
		}
	} else {
		var err error
		if good, err = LastKnownGood(ctx, b, group, req.Of); err != nil {
			return events.DeploymentCreated{}, err
		}
	}
	of := req.Of
	if of == "" {
		of = good.Deployment
	}
	return deploy.Create(ctx, b, deploy.Request{Group: group, Revision: good.Revision, Variables: good.Variables,
		RollbackOf: of, ID: req.ID, IgnoreApplicationStopFailures: req.IgnoreApplicationStopFailures, Actor: req.Actor})
}

// Redeploy creates a new deployment of a deployment's revision, with its
// variables.
func Redeploy(ctx context.Context, b *bus.Bus, deployment string, ignoreStopFailures bool) (events.DeploymentCreated, error) {
	st, err := deploy.Load(ctx, b, deployment)
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	return deploy.Create(ctx, b, deploy.Request{Group: st.Group(), Revision: st.Created.Revision, Variables: st.Created.Variables,
		IgnoreApplicationStopFailures: ignoreStopFailures})
}

// Service watches deployment ends.
type Service struct {
	Bus *bus.Bus
	Log zerolog.Logger
}

// Run consumes until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	cons, err := s.Bus.JetStream().CreateOrUpdateConsumer(ctx, events.StreamDeploys, jetstream.ConsumerConfig{
		Durable: Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: events.SubjectDeploysAll, MaxDeliver: consume.MaxDeliver,
		Description: "the rollback service: failed deployments roll back to the last known good revision",
	})
	if err != nil {
		return fmt.Errorf("rollback consumer: %w", err)
	}
	cc, err := cons.Consume(consume.AckOrRedeliver(ctx, s.Log, "rollback", time.Second, s.Bus,
		func(m jetstream.Msg) error { return s.handle(ctx, m) }))
	if err != nil {
		return err
	}
	defer cc.Stop()
	s.Log.Info().Msg("rollback service watching deployments")
	<-ctx.Done()
	return nil
}

// errDecisionChanged: the group moved between the decision and the
// rollback's append; decide again.
var errDecisionChanged = errors.New("the group changed since the rollback was decided")

// handle answers a deployment's end: rollbackpolicy decides on the group's
// folded history, and a rollback is created only if the same decision holds
// on the fold the created event is appended against (deploy.Request.Guard),
// so a deployment created meanwhile is never rolled back over.
func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	e, err := s.Bus.Codec().Decode(m.Data())
	if err != nil {
		return nil // the deploy service dead-letters it
	}
	var group, dep string
	var failed bool
	switch p := e.Payload.(type) {
	case events.DeploymentFailed:
		group, dep, failed = p.Group, p.Deployment, true
	case events.DeploymentStopped:
		if !p.Rollback {
			return nil
		}
		group, dep = p.Group, p.Deployment
	default:
		return nil
	}
	log := s.Log.With().Str("deployment", dep).Str("group", group).Logger()
	in := rollbackpolicy.Input{Deployment: dep, RollbackID: RollbackID(dep, e.Time)}
	if failed {
		g, err := deploy.GetGroup(ctx, s.Bus.JetStream(), group)
		if errors.Is(err, deploy.ErrNoGroup) {
			return nil
		}
		if err != nil {
			return err
		}
		if in.OnFailure = g.RollsBackOn(deploy.RollbackOnFailure); !in.OnFailure {
			return nil
		}
	}
	for range 16 {
		states, err := deploy.List(ctx, s.Bus, group)
		if err != nil {
			return err
		}
		in.History = states
		d := rollbackpolicy.Decide(in)
		switch d.Action {
		case rollbackpolicy.Ignore:
			return nil
		case rollbackpolicy.Answer:
			log.Info().Str("why", d.Message).Msg("not rolling back")
			var rb *events.DeploymentCreated
			if d.Rollback != nil {
				rb = &d.Rollback.Created
			}
			return s.record(ctx, group, dep, rb, d.Message)
		}
		target := d.Target.ID()
		c, err := deploy.Create(ctx, s.Bus, deploy.Request{
			Group: group, Revision: d.Target.Created.Revision, Variables: d.Target.Created.Variables,
			RollbackOf: dep, ID: in.RollbackID,
			Guard: func(h []deploydecider.State) error {
				again := in
				again.History = h
				if d := rollbackpolicy.Decide(again); d.Action != rollbackpolicy.Deploy || d.Target.ID() != target {
					return errDecisionChanged
				}
				return nil
			}})
		switch {
		case errors.Is(err, errDecisionChanged), errors.Is(err, bus.ErrConflict), errors.Is(err, deploy.ErrGroupBusy):
			// A deployment was created meanwhile (perhaps this rollback,
			// before a crash): the next decision answers with it.
			continue
		case errors.Is(err, deploy.ErrNoAgents):
			log.Warn().Err(err).Msg("cannot roll back")
			return s.record(ctx, group, dep, nil, "cannot roll back: "+err.Error())
		case err != nil:
			return err
		}
		log.Info().Str("rollback", c.Deployment).Str("revision", c.Revision.Key).Msg("rolling back to the last known good revision")
		return s.record(ctx, group, dep, &c, d.Message)
	}
	return fmt.Errorf("roll back %s: the group kept changing", dep)
}

// record appends the answer to the deployment that asked for a rollback,
// so that `gantry deploy show` says what became of it; its ID is fixed, so
// a redelivery appends it once.
func (s *Service) record(ctx context.Context, group, dep string, rb *events.DeploymentCreated, msg string) error {
	p := events.DeploymentRollback{Deployment: dep, Group: group, Message: msg}
	if rb != nil {
		p.RollbackDeployment, p.Revision = rb.Deployment, rb.Revision.Key
	}
	e, err := events.New(events.DeployID(dep, "rollback"), Source, dep, time.Now(), p)
	if err != nil {
		return err
	}
	d, err := s.Bus.Deploys(ctx)
	if err != nil {
		return err
	}
	if _, _, err := d.Append(ctx, group, e, nil); err != nil {
		return fmt.Errorf("record the rollback of %s: %w", dep, err)
	}
	return nil
}
