package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploydecider"
)

// Source is the CloudEvents source of events the deploy service and the
// CLI append.
const Source = deploydecider.Source

// Request asks for a deployment.
type Request struct {
	Group    string
	Revision events.ArtifactRef
	// ID is the deployment ID; empty means a new UUIDv7. Deterministic IDs
	// (a pipeline action, a rollback) make a repeated request name the same
	// deployment, which the expected-sequence check then refuses.
	ID         string
	RollbackOf string
	Trigger    *events.DeploymentTrigger
	// Variables are the revision's, given to every hook.
	Variables map[string]string
	// IgnoreApplicationStopFailures: hosts go on when their previous
	// revision's ApplicationStop hook fails.
	IgnoreApplicationStopFailures bool
	// Actor names who asked (recorded in deployment.created); empty for
	// pipeline actions and the rollback service.
	Actor string
	// LiveWithin drops agents whose heartbeat is older (default 1 minute).
	LiveWithin time.Duration
	Now        time.Time
	// Guard, if set, sees the group's deployments as folded at the
	// sequence the created event is appended against; an error refuses the
	// deployment. The rollback service uses it to check, atomically, that
	// nothing newer than the failed deployment was created meanwhile.
	Guard func(group []deploydecider.State) error
}

// BusyError refuses a deployment to a group that has one in progress
// (errors.Is(err, ErrGroupBusy)).
type BusyError struct {
	Group string
	// Active is the deployment in progress.
	Active string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v: deployment %s is in progress on %s; wait for it (`gantry deploy show %s`) or stop it (`gantry deploy stop %s`)",
		ErrGroupBusy, e.Active, e.Group, e.Active, e.Active)
}

// Unwrap makes errors.Is(err, ErrGroupBusy) hold.
func (e *BusyError) Unwrap() error { return ErrGroupBusy }

// Agents lists the live agents of a group that match its selector, sorted
// by host name.
func Agents(ctx context.Context, js jetstream.JetStream, g Group, liveWithin time.Duration, now time.Time) ([]agent.Info, error) {
	kv, err := js.KeyValue(ctx, events.BucketAgents)
	if err != nil {
		return nil, fmt.Errorf("agents bucket: %w", err)
	}
	lister, err := kv.ListKeysFiltered(ctx, g.Name+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var out []agent.Info
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		if liveWithin > 0 && now.Sub(e.Created()) > liveWithin {
			continue
		}
		info, err := agent.DecodeInfo(e.Value())
		if err != nil {
			continue
		}
		match := true
		for lk, lv := range g.Selector {
			if info.Labels[lk] != lv {
				match = false
			}
		}
		if match {
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out, nil
}

// Create appends a deployment's created event after resolving the group's
// hosts, and returns the event.
//
// Deployments of a group are serialised, as in CodeDeploy: while one is in
// progress Create refuses with a *BusyError naming it (ErrGroupBusy).
// Refusing rather than queueing keeps the order of what a group runs the
// order of the log, visible to whoever asked: a queued deployment would
// start later on a group that may have moved on (a queued rollback would
// undo whatever ran before it). Pipeline deploy actions wait and retry
// (see Action). The check is atomic: the created event is appended
// expecting the group's last sequence as folded (bus AppendIfGroupAt), so
// two Creates racing cannot both pass; the loser folds again.
//
// A deployment of that ID that exists already gives bus.ErrConflict.
func Create(ctx context.Context, b *bus.Bus, req Request) (events.DeploymentCreated, error) {
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	if req.LiveWithin == 0 {
		req.LiveWithin = time.Minute
	}
	js := b.JetStream()
	g, err := GetGroup(ctx, js, req.Group)
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	cfg, err := g.Config()
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	agents, err := Agents(ctx, js, g, req.LiveWithin, req.Now)
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	if len(agents) == 0 {
		return events.DeploymentCreated{}, fmt.Errorf("%w: %s (selector %v; start agents with `gantry agent --group %s`)", ErrNoAgents, g.Name, g.Selector, g.Name)
	}
	if req.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return events.DeploymentCreated{}, err
		}
		req.ID = id.String()
	}
	if err := events.CheckName("deployment", req.ID); err != nil {
		return events.DeploymentCreated{}, err
	}
	c := events.DeploymentCreated{
		Deployment: req.ID, Group: g.Name, Application: g.Application, Revision: req.Revision,
		Config:      events.DeploymentConfig{Name: strings.TrimPrefix(cfg.Name, "CodeDeployDefault."), Type: string(cfg.Type), Value: cfg.Value},
		HealthCheck: g.HealthCheck, RollbackOf: req.RollbackOf, Trigger: req.Trigger,
		IgnoreApplicationStopFailures: req.IgnoreApplicationStopFailures, Actor: req.Actor,
	}
	// Names the agent sets itself are left out: in the log they would only
	// mislead (a run's exported DEPLOYMENT_ID names an older deployment).
	for k, v := range req.Variables {
		if agent.SetsVariable(k) {
			continue
		}
		if c.Variables == nil {
			c.Variables = map[string]string{}
		}
		c.Variables[k] = v
	}
	for _, a := range agents {
		c.Hosts = append(c.Hosts, a.Host)
	}
	e, err := events.New(events.DeployID(req.ID, "created"), Source, req.ID, req.Now, c)
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	d, err := b.Deploys(ctx)
	if err != nil {
		return events.DeploymentCreated{}, err
	}
	for range 32 {
		states, tip, err := fold(ctx, d, events.GroupDeploys(g.Name))
		if err != nil {
			return events.DeploymentCreated{}, err
		}
		for _, s := range states {
			if s.ID() == req.ID {
				return c, fmt.Errorf("%w: deployment %s exists", bus.ErrConflict, req.ID)
			}
		}
		for _, s := range states {
			if s.Phase == deploydecider.InProgress {
				return events.DeploymentCreated{}, &BusyError{Group: g.Name, Active: s.ID()}
			}
		}
		if req.Guard != nil {
			if err := req.Guard(states); err != nil {
				return events.DeploymentCreated{}, err
			}
		}
		_, dup, err := d.AppendIfGroupAt(ctx, g.Name, e, tip)
		if errors.Is(err, bus.ErrConflict) {
			continue // the group moved since the fold: decide again
		}
		if err != nil {
			return events.DeploymentCreated{}, err
		}
		if dup {
			return c, fmt.Errorf("%w: deployment %s exists", bus.ErrConflict, req.ID)
		}
		return c, nil
	}
	return events.DeploymentCreated{}, fmt.Errorf("create deployment %s on %s: the group kept moving", req.ID, g.Name)
}

// Stop appends deployment.stopped to a deployment that has not ended.
func Stop(ctx context.Context, b *bus.Bus, deployment, reason string, rollback bool) error {
	d, err := b.Deploys(ctx)
	if err != nil {
		return err
	}
	group, err := d.Find(ctx, deployment)
	if err != nil {
		return err
	}
	for range 16 {
		evs, tip, err := d.ReadTip(ctx, group, deployment, 0)
		if err != nil {
			return err
		}
		st := deploydecider.Fold(deploydecider.State{}, evs...)
		if st.Phase.Ended() {
			return fmt.Errorf("%w: %s is %s", ErrEnded, deployment, st.Phase)
		}
		e, err := events.New(events.DeployID(deployment, "stopped"), Source, deployment, time.Now(),
			events.DeploymentStopped{Deployment: deployment, Group: group, Reason: events.TruncateReason(reason), Rollback: rollback})
		if err != nil {
			return err
		}
		// The tip, not the last event: a refused message at the end of the
		// subject must not make every stop conflict.
		_, _, err = d.Append(ctx, group, e, &tip)
		if errors.Is(err, bus.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("stop %s: the deployment kept moving", deployment)
}

// Load folds a deployment from the log.
func Load(ctx context.Context, b *bus.Bus, deployment string) (deploydecider.State, error) {
	d, err := b.Deploys(ctx)
	if err != nil {
		return deploydecider.State{}, err
	}
	group, err := d.Find(ctx, deployment)
	if err != nil {
		return deploydecider.State{}, err
	}
	evs, err := d.Read(ctx, group, deployment, 0)
	if err != nil {
		return deploydecider.State{}, err
	}
	return deploydecider.Fold(deploydecider.State{}, evs...), nil
}

// List folds every deployment (of one group, or all when group is empty),
// in creation order.
func List(ctx context.Context, b *bus.Bus, group string) ([]deploydecider.State, error) {
	d, err := b.Deploys(ctx)
	if err != nil {
		return nil, err
	}
	filter := events.SubjectDeploysAll
	if group != "" {
		filter = events.GroupDeploys(group)
	}
	out, _, err := fold(ctx, d, filter)
	return out, err
}

// fold folds every deployment matching filter, in creation order, and
// returns the filter's last sequence, for AppendIfGroupAt.
func fold(ctx context.Context, d *bus.Deploys, filter string) ([]deploydecider.State, uint64, error) {
	byID := map[string]*deploydecider.State{}
	var order []string
	tip, err := d.ScanTip(ctx, filter, func(e events.Event) {
		s, ok := byID[e.Subject]
		if !ok {
			s = &deploydecider.State{}
			byID[e.Subject] = s
			order = append(order, e.Subject)
		}
		*s = deploydecider.Evolve(*s, e)
	})
	if err != nil {
		return nil, 0, err
	}
	var out []deploydecider.State
	for _, id := range order {
		if s := byID[id]; s.Phase != "" {
			out = append(out, *s)
		}
	}
	return out, tip, nil
}
