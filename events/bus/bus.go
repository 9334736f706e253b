// Package bus is Gantry's client of NATS JetStream: it provisions the streams
// and buckets, appends events to a run's log with deduplication and optimistic
// concurrency, reads a run back, publishes tasks and dead letters.
package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// Headers Gantry sets besides the JetStream ones.
const (
	HeaderType        = "Ce-Type"
	HeaderReason      = "Gantry-Reason"
	HeaderOrigSubject = "Gantry-Original-Subject"
	HeaderOrigStream  = "Gantry-Original-Stream"
	// HeaderOrigSize is set on a dead letter whose data was cut to
	// events.MaxDeadLetterBytes: the size of the refused message.
	HeaderOrigSize    = "Gantry-Original-Size"
	HeaderTraceparent = "traceparent"
)

// Config sizes the streams. The zero value is the single-server default.
type Config struct {
	// Replicas for every stream and bucket Gantry creates. Zero means 1 on
	// one server and DefaultClusterReplicas when the server is part of a
	// cluster. An existing stream is never shrunk (see ensureStream).
	Replicas int
	// Placement, when set, puts every stream and bucket on a cluster and/or
	// servers with the given tags (JetStream placement).
	Placement *jetstream.Placement
	// DuplicateWindow of the event and task streams. Long enough to cover a
	// worker redelivery after a crash (several AckWaits).
	DuplicateWindow time.Duration
	// TriggerDuplicateWindow is longer: a webhook may be redelivered hours later.
	TriggerDuplicateWindow time.Duration
	// TaskAckWait is how long a task stays with a silent worker.
	TaskAckWait time.Duration
	// LogMaxAge bounds the live log stream; archived logs live in the object store.
	LogMaxAge time.Duration
	// AtomicBatches lets the conductor append a chain of decisions in one
	// JetStream atomic batch (nats-server 2.12+) instead of one append each.
	// Off by default: on one file-storage server the server's batch staging
	// cost more than the round trips it saved (make bench, same machine).
	AtomicBatches bool
	// AgentTTL is how long an agent's heartbeat entry lives without renewal.
	AgentTTL time.Duration
}

// DefaultClusterReplicas is the replica count on a clustered server: R3
// survives the loss of any one node.
const DefaultClusterReplicas = 3

// ReplicasFor resolves the configured replica count for a server that is
// (clustered) or is not part of a cluster.
func (c Config) ReplicasFor(clustered bool) int {
	switch {
	case c.Replicas > 0:
		return c.Replicas
	case clustered:
		return DefaultClusterReplicas
	default:
		return 1
	}
}

func (c Config) withDefaults() Config {
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.TriggerDuplicateWindow == 0 {
		c.TriggerDuplicateWindow = 24 * time.Hour
	}
	if c.TaskAckWait == 0 {
		c.TaskAckWait = 30 * time.Second
	}
	if c.AgentTTL == 0 {
		c.AgentTTL = 5 * time.Minute
	}
	if c.LogMaxAge == 0 {
		c.LogMaxAge = 7 * 24 * time.Hour
	}
	return c
}

// headerRoom is what a stream's MaxMsgSize leaves for headers above a
// bounded payload (Nats-Msg-Id, traceparent, Gantry-* headers).
const headerRoom = 16 << 10

// Bus is safe for concurrent use.
type Bus struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	codec  *events.Codec
	events jetstream.Stream
	// replies routes batched reads' replies (read.go).
	replies replyMux
}

// Connect dials NATS with reconnects that never give up, so a service rides
// out a server restart.
func Connect(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}

// New wraps a connection. It does no I/O; call Provision or Open next.
func New(nc *nats.Conn, codec *events.Codec) (*Bus, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Bus{nc: nc, js: js, codec: codec}, nil
}

// Conn is the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream is the underlying JetStream handle.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Codec is the validating codec the bus uses.
func (b *Bus) Codec() *events.Codec { return b.codec }

// Provision creates or updates every stream and bucket Gantry uses. It is
// idempotent; every service calls it at start.
func (b *Bus) Provision(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	cfg.Replicas = cfg.ReplicasFor(b.nc.ConnectedClusterName() != "")
	streams := []jetstream.StreamConfig{
		{
			Name: events.StreamEvents, Subjects: []string{events.SubjectEventsAll},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas, MaxMsgSize: events.MaxMessageBytes,
			AllowDirect: true, AllowAtomicPublish: cfg.AtomicBatches,
			Description: "Gantry run event log: one subject per run",
		},
		{
			Name: events.StreamTriggers, Subjects: []string{events.SubjectTriggersAll},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: cfg.TriggerDuplicateWindow, Replicas: cfg.Replicas,
			MaxMsgSize: events.MaxTriggerBytes + headerRoom,
			MaxAge:     30 * 24 * time.Hour, Description: "requests for runs, deduplicated by trigger ID",
		},
		{
			Name: events.StreamTasks, Subjects: []string{events.SubjectTasksAll},
			Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas,
			Description: "work for the worker fleets, one consumer per kind and pool",
		},
		{
			Name: events.StreamLogs, Subjects: []string{events.SubjectLogsAll},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: cfg.LogMaxAge, MaxBytes: 1 << 30, Replicas: cfg.Replicas,
			Discard: jetstream.DiscardOld, Description: "live action output",
		},
		{
			Name: events.StreamDLQ, Subjects: []string{events.SubjectDLQAll},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			MaxAge: 30 * 24 * time.Hour, Replicas: cfg.Replicas, MaxMsgSize: events.MaxMessageBytes,
			Description: "messages refused by a consumer, with the reason",
		},
		{
			Name: events.StreamDeploys, Subjects: []string{events.SubjectDeploysAll},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas, MaxMsgSize: events.MaxMessageBytes,
			AllowDirect: true, Description: "Gantry deployment event log: one subject per deployment",
		},
		{
			Name: events.StreamAgents, Subjects: []string{events.SubjectAgentsAll},
			Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas,
			Description: "deploy commands, one subject and durable consumer per agent",
		},
		{
			Name: events.StreamAlarms, Subjects: []string{events.SubjectAlarmsAll},
			Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: cfg.DuplicateWindow, Replicas: cfg.Replicas, MaxAge: 30 * 24 * time.Hour,
			Description: "alarms raised on deployment groups; an alarm stops the group's deployment",
		},
	}
	for _, sc := range streams {
		sc.Placement = cfg.Placement
		if err := b.ensureStream(ctx, sc); err != nil {
			return fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	kvs := []jetstream.KeyValueConfig{
		{Bucket: events.BucketPipelines, History: 64, Replicas: cfg.Replicas, Description: "pipeline definitions, with history"},
		{Bucket: events.BucketRuns, History: 1, Replicas: cfg.Replicas, Description: "projection of folded runs"},
		{Bucket: events.BucketAgents, History: 1, Replicas: cfg.Replicas, TTL: cfg.AgentTTL, Description: "agent heartbeats by <group>.<host>; a missing or stale entry is a dead agent"},
		{Bucket: events.BucketDeployGroups, History: 16, Replicas: cfg.Replicas, Description: "deployment group documents"},
		{Bucket: events.BucketDeployments, History: 1, Replicas: cfg.Replicas, Description: "projection of folded deployments"},
		// History 1: a rotated or removed secret's old value does not linger.
		{Bucket: events.BucketSecrets, History: 1, Replicas: cfg.Replicas, Description: "secret values by name, read by build and test workers; never copied into events"},
	}
	for _, kc := range kvs {
		kc.Placement = cfg.Placement
		if _, err := b.js.KeyValue(ctx, kc.Bucket); err == nil {
			continue
		} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("provision bucket %s: %w", kc.Bucket, err)
		}
		if _, err := b.js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("provision bucket %s: %w", kc.Bucket, err)
		}
	}
	if _, err := b.js.ObjectStore(ctx, events.BucketArtifacts); errors.Is(err, jetstream.ErrBucketNotFound) {
		if _, err := b.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: events.BucketArtifacts, Replicas: cfg.Replicas, Storage: jetstream.FileStorage, Placement: cfg.Placement,
			Description: "artifacts and archived logs, keyed pipeline/run/name",
		}); err != nil {
			return fmt.Errorf("provision object store %s: %w", events.BucketArtifacts, err)
		}
	} else if err != nil {
		return fmt.Errorf("provision object store %s: %w", events.BucketArtifacts, err)
	}
	return b.Open(ctx)
}

// ensureStream creates a stream, or updates it only when what Gantry sets
// differs: every service provisions at start, and a no-op update from each
// of them would make the server rewrite the stream's configuration while
// others create consumers on it. An existing stream is never shrunk: an
// operator who raised its replicas, moved it (placement) or gave it more
// room (age, bytes) keeps that, whatever a service starting with defaults
// asks for; shrinking is an operator's deliberate act (nats stream edit).
func (b *Bus) ensureStream(ctx context.Context, want jetstream.StreamConfig) error {
	s, err := b.js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = b.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another service created it first
		}
		return err
	}
	if err != nil {
		return err
	}
	have := s.CachedInfo().Config
	want = NeverShrink(have, want)
	if want.Duplicates == 0 {
		// Unset means the server's default, which the server filled in.
		want.Duplicates = have.Duplicates
	}
	if slices.Equal(have.Subjects, want.Subjects) && have.Duplicates == want.Duplicates &&
		have.MaxAge == want.MaxAge && unlimited(have.MaxBytes) == unlimited(want.MaxBytes) && have.Replicas == want.Replicas &&
		have.AllowDirect == want.AllowDirect && have.AllowAtomicPublish == want.AllowAtomicPublish &&
		have.Retention == want.Retention && unlimited(int64(have.MaxMsgSize)) == unlimited(int64(want.MaxMsgSize)) {
		return nil
	}
	_, err = b.js.UpdateStream(ctx, want)
	return err
}

// NeverShrink is want with what an existing stream (have) has more of kept:
// replicas, placement, MaxAge and MaxBytes (zero or negative is unlimited,
// the most of all).
func NeverShrink(have, want jetstream.StreamConfig) jetstream.StreamConfig {
	want.Replicas = max(want.Replicas, have.Replicas)
	if want.Placement == nil {
		want.Placement = have.Placement
	}
	if have.MaxAge == 0 || (want.MaxAge != 0 && have.MaxAge > want.MaxAge) {
		want.MaxAge = have.MaxAge
	}
	if unlimited(have.MaxBytes) == -1 || (unlimited(want.MaxBytes) != -1 && have.MaxBytes > want.MaxBytes) {
		want.MaxBytes = have.MaxBytes
	}
	return want
}

// Open binds the event stream without changing anything.
func (b *Bus) Open(ctx context.Context) error {
	s, err := b.js.Stream(ctx, events.StreamEvents)
	if err != nil {
		return fmt.Errorf("open stream %s (run `gantry dev` or a service once to provision it): %w", events.StreamEvents, err)
	}
	b.events = s
	return nil
}

// Append validates and publishes an event to its run's subject. The event ID
// is the Nats-Msg-Id, so a repeat within the duplicate window is dropped
// (and reported as the original's sequence, with dup set). With expect set,
// the publish succeeds only if the run's last sequence is *expect, else
// ErrConflict.
func (b *Bus) Append(ctx context.Context, pipeline string, e events.Event, expect *uint64) (seq uint64, dup bool, err error) {
	data, err := b.codec.Encode(e)
	if err != nil {
		return 0, false, err
	}
	subject := events.RunSubject(pipeline, runOf(e))
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderType, e.Type)
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(e.ID)}
	if expect != nil {
		opts = append(opts, jetstream.WithExpectLastSequencePerSubject(*expect))
	}
	ack, err := b.js.PublishMsg(ctx, msg, opts...)
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

// runOf returns the run an event belongs to; the CloudEvents subject is the
// run ID for every Gantry event.
func runOf(e events.Event) string { return e.Subject }

// ReadRun returns a run's events stored after sequence `after`, in order,
// using direct gets (next message for the run's subject). Events that fail
// to decode are skipped here: the conductor dead-letters them when it
// consumes them, and the fold must not depend on them.
func (b *Bus) ReadRun(ctx context.Context, pipeline, run string, after uint64) ([]events.Event, error) {
	evs, _, err := b.ReadRunTip(ctx, pipeline, run, after)
	return evs, err
}

// ReadRunTip is ReadRun that also returns the run subject's last sequence,
// counting messages that did not decode: the sequence an append must
// expect, which the events alone cannot tell when refused messages sit at
// the end of the run's subject.
func (b *Bus) ReadRunTip(ctx context.Context, pipeline, run string, after uint64) ([]events.Event, uint64, error) {
	return b.readEvents(ctx, events.StreamEvents, events.RunSubject(pipeline, run), after, 0)
}

// ReadRunUntil reads a run's events after `after` up to and including `until`.
func (b *Bus) ReadRunUntil(ctx context.Context, pipeline, run string, after, until uint64) ([]events.Event, error) {
	evs, _, err := b.readEvents(ctx, events.StreamEvents, events.RunSubject(pipeline, run), after, until)
	return evs, err
}

// readEvents collects what scanEvents reads.
func (b *Bus) readEvents(ctx context.Context, stream, subject string, after, until uint64) ([]events.Event, uint64, error) {
	var out []events.Event
	tip, err := b.scanEvents(ctx, stream, subject, after, until, func(e events.Event) { out = append(out, e) })
	return out, tip, err
}

// scanEvents decodes what readSubject reads. Messages that do not decode
// are skipped (the consumers dead-letter them) but still move the tip.
func (b *Bus) scanEvents(ctx context.Context, stream, subject string, after, until uint64, fn func(events.Event)) (uint64, error) {
	return b.readSubject(ctx, stream, subject, after, until, func(seq uint64, data []byte) {
		if e, err := b.codec.Decode(data); err == nil {
			e.Seq = seq
			fn(e)
		}
	})
}

// PublishTask puts a task on its kind and pool's work queue; the task ID is
// the Nats-Msg-Id, so republishing after a crash is harmless.
func (b *Bus) PublishTask(ctx context.Context, t events.Task, data []byte) error {
	msg := &nats.Msg{Subject: events.TaskSubject(t.Kind, t.Pool), Data: data, Header: nats.Header{}}
	if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(t.ID)); err != nil {
		return fmt.Errorf("publish task %s: %w", t.ID, err)
	}
	return nil
}

// DeadLetter stores a refused message with the reason. The caller acks or
// terminates the original afterwards, so nothing is lost and nothing loops.
// A non-zero seq (the original's stream sequence) deduplicates redelivered
// refusals.
//
// The copy is cut to events.MaxDeadLetterBytes (HeaderOrigSize then gives
// the whole size) and the reason to events.MaxReason characters: a refusal
// of an oversized message must not fail for the same size, or the message
// would be redelivered forever.
func (b *Bus) DeadLetter(ctx context.Context, stream, subject string, seq uint64, data []byte, reason error) error {
	msg := &nats.Msg{Subject: events.DLQSubject(stream), Data: data, Header: nats.Header{}}
	if len(data) > events.MaxDeadLetterBytes {
		msg.Data = data[:events.MaxDeadLetterBytes]
		msg.Header.Set(HeaderOrigSize, strconv.Itoa(len(data)))
	}
	var opts []jetstream.PublishOpt
	if seq > 0 {
		opts = append(opts, jetstream.WithMsgID(fmt.Sprintf("dlq/%s/%d", stream, seq)))
	}
	// A header value is one line.
	msg.Header.Set(HeaderReason, events.TruncateReason(strings.NewReplacer("\r", " ", "\n", " ").Replace(reason.Error())))
	msg.Header.Set(HeaderOrigSubject, subject)
	msg.Header.Set(HeaderOrigStream, stream)
	if _, err := b.js.PublishMsg(ctx, msg, opts...); err != nil {
		return fmt.Errorf("dead-letter message from %s: %w", subject, err)
	}
	return nil
}

// FindRun returns the pipeline a run belongs to, from its first event.
func (b *Bus) FindRun(ctx context.Context, run string) (string, error) {
	p, err := ownerOf(ctx, b.events, "gantry.events", run)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", fmt.Errorf("%w: %s (list runs with `gantry run list`)", ErrNoRun, run)
	}
	if err != nil {
		return "", fmt.Errorf("find run %s: %w", run, err)
	}
	return p, nil
}

// ownerOf returns the middle token of the first subject prefix.*.id in s:
// the pipeline of a run, the group of a deployment. It returns
// jetstream.ErrMsgNotFound when there is none.
func ownerOf(ctx context.Context, s jetstream.Stream, prefix, id string) (string, error) {
	m, err := s.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(prefix+".*."+id))
	if err != nil {
		return "", err
	}
	parts := strings.Split(m.Subject, ".")
	if len(parts) != 4 {
		return "", fmt.Errorf("unexpected subject %s", m.Subject)
	}
	return parts[2], nil
}

// WatchRun delivers a run's events from the first, in order, and then live
// as they are appended, until ctx ends or fn returns false.
func (b *Bus) WatchRun(ctx context.Context, pipeline, run string, fn func(events.Event) bool) error {
	return b.watch(ctx, events.RunSubject(pipeline, run), jetstream.DeliverAllPolicy, fn)
}

// WatchAll delivers events of every run (or one filter subject) live,
// starting with the last `last` stored if last > 0.
func (b *Bus) WatchAll(ctx context.Context, filter string, fromSeq uint64, fn func(events.Event) bool) error {
	if fromSeq == 0 {
		return b.watch(ctx, filter, jetstream.DeliverNewPolicy, fn)
	}
	return b.watchFrom(ctx, filter, fromSeq, fn)
}

func (b *Bus) watch(ctx context.Context, filter string, policy jetstream.DeliverPolicy, fn func(events.Event) bool) error {
	cons, err := b.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: policy})
	if err != nil {
		return fmt.Errorf("watch %s: %w", filter, err)
	}
	return b.drive(ctx, cons, fn)
}

func (b *Bus) watchFrom(ctx context.Context, filter string, seq uint64, fn func(events.Event) bool) error {
	cons, err := b.events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq})
	if err != nil {
		return fmt.Errorf("watch %s: %w", filter, err)
	}
	return b.drive(ctx, cons, fn)
}

func (b *Bus) drive(ctx context.Context, cons jetstream.Consumer, fn func(events.Event) bool) error {
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		e, err := b.codec.Decode(m.Data())
		if err != nil {
			continue
		}
		if meta, err := m.Metadata(); err == nil {
			e.Seq = meta.Sequence.Stream
		}
		if !fn(e) {
			return nil
		}
	}
}

// LastSeq is the event stream's last sequence.
func (b *Bus) LastSeq(ctx context.Context) (uint64, error) {
	info, err := b.events.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("event stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// RunLastSeq returns the stream sequence of the run subject's last message, 0
// when it has none. Unlike a read from a sequence, the server answers it
// from its per-subject index without scanning the stream: a cheap way to
// learn that a cached fold is still current.
func (b *Bus) RunLastSeq(ctx context.Context, pipeline, run string) (uint64, error) {
	m, err := b.events.GetLastMsgForSubject(ctx, events.RunSubject(pipeline, run))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last event of %s: %w", run, err)
	}
	return m.Sequence, nil
}

// NextSeq returns the stream sequence of the run's first event after
// `after`, without decoding it; ok is false when there is none. The
// conductor uses it to check that the event it was handed is the next one.
func (b *Bus) NextSeq(ctx context.Context, pipeline, run string, after uint64) (seq uint64, ok bool, err error) {
	m, err := b.events.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(events.RunSubject(pipeline, run)))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("next event of %s after %d: %w", run, after, err)
	}
	return m.Sequence, true, nil
}

// unlimited maps the server's -1 and the client's zero value to one "no limit".
func unlimited(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}
