package projection

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/deploydecider"
)

// DeployDurable is the deployments projector's consumer on GANTRY_DEPLOYS.
const DeployDurable = "deploy-projector"

// runDeploys folds the deployment log into the deployments bucket, as the
// run projector does for runs.
func (p *Projector) runDeploys(ctx context.Context) error {
	js := p.Bus.JetStream()
	kv, err := js.KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		return fmt.Errorf("deployments bucket: %w", err)
	}
	d, err := p.Bus.Deploys(ctx)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamDeploys, jetstream.ConsumerConfig{
		Durable: DeployDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		FilterSubject: events.SubjectDeploysAll, Description: "projector: folds deployments into the deployments bucket",
		MaxDeliver: p.poison(events.StreamDeploys).ServerMaxDeliver(),
	})
	if err != nil {
		return fmt.Errorf("deploy projector consumer: %w", err)
	}
	deploys := newBucket[deploydecider.State](kv)
	return p.consume(ctx, cons, "deployment", p.poison(events.StreamDeploys),
		each(func(m jetstream.Msg) error { return p.handleDeploy(ctx, deploys, d, m) }))
}

func (p *Projector) handleDeploy(ctx context.Context, deploys *bucket[deploydecider.State], d *bus.Deploys, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	parts := strings.Split(m.Subject(), ".")
	if len(parts) != 4 {
		return nil
	}
	group, id := parts[2], parts[3]
	c, err := deploys.load(ctx, id)
	if err != nil {
		return err
	}
	if c.st.LastSeq >= meta.Sequence.Stream {
		return nil
	}
	evs, err := d.Read(ctx, group, id, c.st.LastSeq)
	if err != nil {
		return err
	}
	next := deploydecider.Fold(c.st, evs...)
	if next.ID() == "" || (c.rev != 0 && next.LastSeq == c.st.LastSeq) {
		return nil
	}
	return deploys.store(ctx, id, c, next)
}

// FoldAllDeploys folds every deployment in the log.
func FoldAllDeploys(ctx context.Context, b *bus.Bus) (map[string]deploydecider.State, int, error) {
	d, err := b.Deploys(ctx)
	if err != nil {
		return nil, 0, err
	}
	states := map[string]deploydecider.State{}
	n := 0
	// A deployment event's CloudEvents subject is its deployment ID.
	err = d.Scan(ctx, events.SubjectDeploysAll, func(e events.Event) {
		states[e.Subject] = deploydecider.Evolve(states[e.Subject], e)
		n++
	})
	if err != nil {
		return nil, n, err
	}
	for k, st := range states {
		if st.ID() == "" {
			delete(states, k)
		}
	}
	return states, n, nil
}
