package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// ErrNoDeployment is returned when a deployment's subject holds no events.
var ErrNoDeployment = errors.New("deployment not found")

// Deploys is the deployment event log, GANTRY_DEPLOYS: one subject per
// deployment, gantry.deploys.<group>.<deployment>, appended to with the
// same deduplication and optimistic concurrency as the run log.
type Deploys struct {
	b *Bus
	s jetstream.Stream
}

// Deploys binds the deployment stream (provisioned by Provision).
func (b *Bus) Deploys(ctx context.Context) (*Deploys, error) {
	s, err := b.js.Stream(ctx, events.StreamDeploys)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.StreamDeploys, err)
	}
	return &Deploys{b: b, s: s}, nil
}

// Stream is the underlying stream.
func (d *Deploys) Stream() jetstream.Stream { return d.s }

// Append validates and publishes a deployment event to its deployment's
// subject (the event's CloudEvents subject is the deployment ID). With
// expect set the publish succeeds only if the subject's last sequence is
// *expect, else ErrConflict.
func (d *Deploys) Append(ctx context.Context, group string, e events.Event, expect *uint64) (seq uint64, dup bool, err error) {
	var opts []jetstream.PublishOpt
	if expect != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*expect))
	}
	return d.append(ctx, group, e, opts...)
}

// AppendIfGroupAt appends e only if the last sequence of the whole group's
// subjects (gantry.deploys.<group>.*, every deployment of the group) is
// groupTip, else ErrConflict: a decision taken on a fold of the group (no
// deployment in progress, nothing newer than the failed one) holds when
// its event lands, because nothing was appended to the group in between.
// groupTip comes from ScanTip. It needs nats-server 2.11 or later
// (Nats-Expected-Last-Subject-Sequence-Subject).
func (d *Deploys) AppendIfGroupAt(ctx context.Context, group string, e events.Event, groupTip uint64) (seq uint64, dup bool, err error) {
	return d.append(ctx, group, e, jetstream.WithExpectLastSequenceForSubject(groupTip, events.GroupDeploys(group)))
}

func (d *Deploys) append(ctx context.Context, group string, e events.Event, opts ...jetstream.PublishOpt) (seq uint64, dup bool, err error) {
	data, err := d.b.codec.Encode(e)
	if err != nil {
		return 0, false, err
	}
	subject := events.DeploySubject(group, e.Subject)
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderType, e.Type)
	opts = append([]jetstream.PublishOpt{jetstream.WithMsgID(e.ID)}, opts...)
	ack, err := d.b.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, false, fmt.Errorf("%w: append %s to %s", ErrConflict, e.ID, subject)
		}
		return 0, false, fmt.Errorf("append %s to %s: %w", e.ID, subject, err)
	}
	return ack.Sequence, ack.Duplicate, nil
}

// Read returns a deployment's events stored after sequence `after`, in
// order. Events that fail to decode are skipped (the deploy service
// dead-letters them when it consumes them).
func (d *Deploys) Read(ctx context.Context, group, deployment string, after uint64) ([]events.Event, error) {
	evs, _, err := d.ReadTip(ctx, group, deployment, after)
	return evs, err
}

// ReadTip is Read that also returns the deployment subject's last
// sequence, counting messages that did not decode: the sequence an append
// must expect, which the events alone cannot tell when a refused message
// sits at the end of the subject.
func (d *Deploys) ReadTip(ctx context.Context, group, deployment string, after uint64) ([]events.Event, uint64, error) {
	return d.b.readEvents(ctx, events.StreamDeploys, events.DeploySubject(group, deployment), after, 0)
}

// Find returns the group a deployment belongs to, from its first event.
func (d *Deploys) Find(ctx context.Context, deployment string) (string, error) {
	g, err := ownerOf(ctx, d.s, "gantry.deploys", deployment)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", fmt.Errorf("%w: %s (list deployments with `gantry deploy list`)", ErrNoDeployment, deployment)
	}
	if err != nil {
		return "", fmt.Errorf("find deployment %s: %w", deployment, err)
	}
	return g, nil
}

// Scan delivers every stored event matching filter (e.g.
// events.GroupDeploys(group) or events.SubjectDeploysAll) in stream order,
// up to the stream's last sequence at the time of the call, then returns.
// It reads as a deployment is read, in batched direct gets (a wildcard
// filter is one), so it streams without a consumer. Events that fail to
// decode are skipped.
func (d *Deploys) Scan(ctx context.Context, filter string, fn func(events.Event)) error {
	_, err := d.ScanTip(ctx, filter, fn)
	return err
}

// ScanTip is Scan that also returns the last sequence of the messages
// matching filter, counting those that did not decode (0 when none): what
// AppendIfGroupAt expects.
func (d *Deploys) ScanTip(ctx context.Context, filter string, fn func(events.Event)) (uint64, error) {
	return d.b.scanEvents(ctx, events.StreamDeploys, filter, 0, 0, fn)
}

// Watch delivers a deployment's events from the first, in order, then live,
// until ctx ends or fn returns false.
func (d *Deploys) Watch(ctx context.Context, group, deployment string, fn func(events.Event) bool) error {
	cons, err := d.s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.DeploySubject(group, deployment)}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("watch deployment %s: %w", deployment, err)
	}
	return d.b.drive(ctx, cons, fn)
}
