// Package deploy is the deploy service (role `deployer`) and the library
// behind `gantry deploy`: deployment groups, creating and stopping
// deployments, listing and showing them. The service consumes the
// GANTRY_DEPLOYS log as the conductor consumes the run log: it folds a
// deployment, asks the pure deploydecider what comes next, appends that
// with the expected last subject sequence and sends the agents their
// commands with deterministic Nats-Msg-Ids. A ticker fails in-progress hosts
// whose agent stopped heartbeating, and alarms raised on a group stop its
// deployments.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/deployplan"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// Durable names are API: renaming one re-consumes its stream.
const (
	Durable       = "deployer"
	DurableAlarms = "deployer-alarms"
)

// Alarm is a message on gantry.alarms.<group>.
type Alarm struct {
	Group  string `json:"group"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// RaiseAlarm publishes an alarm on a group.
func RaiseAlarm(ctx context.Context, b *bus.Bus, a Alarm) error {
	if err := events.CheckName("group", a.Group); err != nil {
		return err
	}
	if a.Name == "" {
		a.Name = "manual"
	}
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = b.JetStream().PublishMsg(ctx, &nats.Msg{Subject: events.AlarmSubject(a.Group), Data: data})
	return err
}

// Options configure the service.
type Options struct {
	Bus *bus.Bus
	Log zerolog.Logger
	// HeartbeatTimeout fails an in-progress host whose agent entry is older
	// (default 30s).
	HeartbeatTimeout time.Duration
	// CheckEvery is the period of the heartbeat check (default 1s).
	CheckEvery time.Duration
	AckWait    time.Duration
	Now        func() time.Time
}

// Service is one deploy service process.
type Service struct {
	o       Options
	deploys *bus.Deploys
	// agents is the heartbeat bucket the ticker reads.
	agents jetstream.KeyValue
	mu     sync.Mutex
	// active maps deployments seen in progress to their group.
	active map[string]string
	// folded caches each active deployment's state, so an event costs a
	// read of what is new rather than of the whole log.
	folded map[string]folded
}

// folded is a deployment's state and its subject's last sequence. The two
// differ when refused messages (dead-lettered, never folded) sit at the end
// of the subject; appends must expect the tip, or every decision after such
// a message would conflict forever and the deployment would hang.
type folded struct {
	st  deploydecider.State
	tip uint64
}

// New checks options; it does no I/O.
func New(o Options) (*Service, error) {
	if o.Bus == nil {
		return nil, errors.New("deploy service: a bus is required")
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 30 * time.Second
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Second
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, active: map[string]string{}}, nil
}

// Run consumes until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	d, err := s.o.Bus.Deploys(ctx)
	if err != nil {
		return err
	}
	s.deploys = d
	if s.agents, err = s.o.Bus.JetStream().KeyValue(ctx, events.BucketAgents); err != nil {
		return fmt.Errorf("agents bucket: %w", err)
	}
	js := s.o.Bus.JetStream()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamDeploys, jetstream.ConsumerConfig{
		Durable: Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.o.AckWait,
		MaxAckPending: 1024, DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: events.SubjectDeploysAll, MaxDeliver: consume.MaxDeliver,
		Description: "the deploy service: folds deployments and decides what comes next",
	})
	if err != nil {
		return fmt.Errorf("deployer consumer: %w", err)
	}
	alarms, err := js.CreateOrUpdateConsumer(ctx, events.StreamAlarms, jetstream.ConsumerConfig{
		Durable: DurableAlarms, AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.o.AckWait,
		DeliverPolicy: jetstream.DeliverNewPolicy, FilterSubject: events.SubjectAlarmsAll, MaxDeliver: consume.MaxDeliver,
		Description: "the deploy service: alarms stop deployments",
	})
	if err != nil {
		return fmt.Errorf("alarm consumer: %w", err)
	}
	cc, err := cons.Consume(consume.AckOrRedeliver(ctx, s.o.Log, "deployment event", 250*time.Millisecond, s.o.Bus,
		func(m jetstream.Msg) error { return s.handle(ctx, m) }))
	if err != nil {
		return err
	}
	defer cc.Stop()
	ac, err := alarms.Consume(consume.AckOrRedeliver(ctx, s.o.Log, "alarm", 250*time.Millisecond, s.o.Bus,
		func(m jetstream.Msg) error { return s.alarm(ctx, m) }))
	if err != nil {
		return err
	}
	defer ac.Stop()
	// Deployments in progress when this process starts may receive no new
	// event (a dead agent sends none): the ticker must know them.
	states, err := List(ctx, s.o.Bus, "")
	if err != nil {
		return fmt.Errorf("list deployments in progress: %w", err)
	}
	s.mu.Lock()
	for _, st := range states {
		if st.Phase == deploydecider.InProgress {
			s.active[st.ID()] = st.Group()
		}
	}
	s.mu.Unlock()
	s.o.Log.Info().Msg("deploy service consuming the deployment log")
	t := time.NewTicker(s.o.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.mu.Lock()
			active := make(map[string]string, len(s.active))
			for k, v := range s.active {
				active[k] = v
			}
			s.mu.Unlock()
			for dep, group := range active {
				if err := s.advance(ctx, group, dep); err != nil && ctx.Err() == nil {
					s.o.Log.Warn().Err(err).Str("deployment", dep).Msg("heartbeat check failed")
				}
			}
		}
	}
}

// parseSubject splits gantry.deploys.<group>.<deployment>.
func parseSubject(subject string) (group, dep string, ok bool) {
	p := strings.Split(subject, ".")
	if len(p) != 4 || p[0] != "gantry" || p[1] != "deploys" {
		return "", "", false
	}
	return p[2], p[3], true
}

func (s *Service) handle(ctx context.Context, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	group, dep, ok := parseSubject(m.Subject())
	e, derr := s.o.Bus.Codec().Decode(m.Data())
	if derr == nil && (!ok || e.Subject != dep) {
		derr = fmt.Errorf("%w: event subject %q does not match the deployment of NATS subject %s", events.ErrInvalidEvent, e.Subject, m.Subject())
	}
	if derr != nil {
		s.o.Log.Warn().Err(derr).Str("subject", m.Subject()).Msg("refused event sent to the dead-letter stream")
		return s.o.Bus.DeadLetter(ctx, events.StreamDeploys, m.Subject(), meta.Sequence.Stream, m.Data(), derr)
	}
	var republish string
	if d, ok := e.Payload.(events.DeployHostDispatched); ok {
		republish = d.Host
	}
	return s.advanceRepublish(ctx, group, dep, republish, false)
}

// advance is the ticker's path: it also fails hosts whose agent went silent.
func (s *Service) advance(ctx context.Context, group, dep string) error {
	return s.advanceRepublish(ctx, group, dep, "", true)
}

// dead returns the in-progress hosts whose agent's heartbeat expired.
func (s *Service) dead(ctx context.Context, st deploydecider.State) (map[string]bool, error) {
	var out map[string]bool
	now := s.o.Now()
	for _, h := range st.Hosts {
		if h.Status != deployplan.InProgress {
			continue
		}
		e, err := s.agents.Get(ctx, events.AgentKey(st.Group(), h.Name))
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
		if err != nil || now.Sub(e.Created()) > s.o.HeartbeatTimeout {
			if out == nil {
				out = map[string]bool{}
			}
			out[h.Name] = true
		}
	}
	return out, nil
}

// advanceRepublish folds a deployment, republishes the command of host
// `republish` if it is still in progress, then decides and appends until
// the deployment waits.
//
// Agent liveness (a KV read per in-progress host) is checked only on the
// ticker's path, checkDead: the event path would pay it on every lifecycle
// event of every host.
func (s *Service) advanceRepublish(ctx context.Context, group, dep, republish string, checkDead bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.folded == nil {
		s.folded = map[string]folded{}
	}
	f := s.folded[dep]
	evs, tip, err := s.deploys.ReadTip(ctx, group, dep, f.tip)
	if err != nil {
		return err
	}
	st := deploydecider.Fold(f.st, evs...)
	defer func() {
		if st.Phase.Ended() {
			delete(s.folded, dep)
		} else if st.Phase != "" {
			s.folded[dep] = folded{st: st, tip: tip}
		}
	}()
	if st.Phase == "" {
		return nil
	}
	if republish != "" {
		if h := st.Host(republish); h != nil && h.Status == deployplan.InProgress && !st.Phase.Ended() {
			if err := s.sendCommand(ctx, st.Created, republish); err != nil {
				return err
			}
		}
	}
	log := s.o.Log.With().Str("deployment", dep).Str("group", group).Logger()
	for range 64 {
		if st.Phase.Ended() {
			delete(s.active, dep)
			return nil
		}
		s.active[dep] = group
		var dead map[string]bool
		if checkDead {
			if dead, err = s.dead(ctx, st); err != nil {
				return err
			}
		}
		out := deploydecider.Decide(st, deploydecider.Inputs{Now: s.o.Now(), Dead: dead})
		if len(out) == 0 {
			return nil
		}
		stale := false
		// Commands go out after the whole decision is appended, so agents'
		// lifecycle events do not land between our appends and make every
		// later dispatch of the batch conflict.
		var send []string
		for _, e := range out {
			expect := tip
			seq, dup, err := s.deploys.Append(ctx, group, e, &expect)
			if errors.Is(err, bus.ErrConflict) || dup {
				stale = true
				break
			}
			if err != nil {
				return err
			}
			e.Seq, tip = seq, seq
			st = deploydecider.Evolve(st, e)
			log.Info().Str("type", e.Type).Str("id", e.ID).Msg("appended")
			if d, ok := e.Payload.(events.DeployHostDispatched); ok {
				send = append(send, d.Host)
			}
		}
		for _, h := range send {
			if err := s.sendCommand(ctx, st.Created, h); err != nil {
				return err
			}
		}
		if stale {
			more, t, err := s.deploys.ReadTip(ctx, group, dep, tip)
			if err != nil {
				return err
			}
			st, tip = deploydecider.Fold(st, more...), t
		}
	}
	return fmt.Errorf("deployment %s: decider did not settle", dep)
}

func (s *Service) sendCommand(ctx context.Context, c events.DeploymentCreated, host string) error {
	data, err := json.Marshal(agent.CommandFor(c, host))
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: events.AgentSubject(c.Group, host), Data: data}
	if _, err := s.o.Bus.JetStream().PublishMsg(ctx, msg, jetstream.WithMsgID(events.DeployCommandID(c.Deployment, host))); err != nil {
		return fmt.Errorf("send command to %s: %w", host, err)
	}
	return nil
}

// parseAlarm reads an alarm and checks it names a valid group, the group of
// the subject it was raised on. Its error is the dead letter's reason: it
// must say what was wrong, never wrap a nil error (which read "<nil>").
func parseAlarm(subject string, data []byte) (Alarm, error) {
	var a Alarm
	if err := json.Unmarshal(data, &a); err != nil {
		return Alarm{}, fmt.Errorf("%w: unreadable alarm: %w", events.ErrInvalidEvent, err)
	}
	if err := events.CheckName("alarm group", a.Group); err != nil {
		return Alarm{}, fmt.Errorf("%w: alarm: %w", events.ErrInvalidEvent, err)
	}
	if want := events.AlarmSubject(a.Group); subject != want {
		return Alarm{}, fmt.Errorf("%w: alarm for group %q raised on %s, not %s", events.ErrInvalidEvent, a.Group, subject, want)
	}
	return a, nil
}

// alarm stops the in-progress deployments of the alarm's group.
func (s *Service) alarm(ctx context.Context, m jetstream.Msg) error {
	a, err := parseAlarm(m.Subject(), m.Data())
	if err != nil {
		var seq uint64
		if meta, merr := m.Metadata(); merr == nil {
			seq = meta.Sequence.Stream
		}
		s.o.Log.Warn().Err(err).Str("subject", m.Subject()).Msg("refused alarm sent to the dead-letter stream")
		return s.o.Bus.DeadLetter(ctx, events.StreamAlarms, m.Subject(), seq, m.Data(), err)
	}
	g, err := GetGroup(ctx, s.o.Bus.JetStream(), a.Group)
	if errors.Is(err, ErrNoGroup) {
		return nil
	}
	if err != nil {
		return err
	}
	if !g.StopsOnAlarm(a.Name) {
		return nil
	}
	states, err := List(ctx, s.o.Bus, a.Group)
	if err != nil {
		return err
	}
	for _, st := range states {
		if st.Phase != deploydecider.InProgress {
			continue
		}
		reason := fmt.Sprintf("alarm %s on %s: %s", a.Name, a.Group, a.Reason)
		s.o.Log.Warn().Str("deployment", st.ID()).Str("alarm", a.Name).Msg("alarm stops the deployment")
		if err := Stop(ctx, s.o.Bus, st.ID(), reason, g.RollsBackOn(RollbackOnAlarm)); err != nil && !errors.Is(err, ErrEnded) {
			return err
		}
	}
	return nil
}
