package chatops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// Durable consumer names of the notifier (durable names are API: renaming
// one re-reads its stream).
const (
	// EventsDurable reads GANTRY_EVENTS and fans each matching event out
	// into one delivery job per target.
	EventsDurable = "notifier"
	// DeliveriesDurable reads the delivery jobs and posts them.
	DeliveriesDurable = "notifier-deliveries"
)

// NotifySource is the CloudEvents source of the outcome events.
const NotifySource = "/gantry/notify"

// Defaults of the delivery policy.
const (
	DefaultMaxAttempts = 5
	DefaultHTTPTimeout = 10 * time.Second
	// notifyMaxAge bounds the GANTRY_NOTIFY stream: jobs and outcomes are
	// a delivery record, not the run's truth.
	notifyMaxAge = 7 * 24 * time.Hour
)

// Notifier is the notification service (role `notify`): it consumes every
// run event with a durable consumer, applies the rules, and delivers each
// matching event to each of its targets with retries. Two stages, both
// durable consumers, so that a retry to one target never repeats a
// delivery another target already accepted, and a retry survives a
// restart: the event becomes one job per target on GANTRY_NOTIFY (Nats-Msg-Id
// <event ID>/<target>, so a redelivered event makes no second job), and a
// failed job comes back through NakWithDelay with the attempt number the
// server counts (NumDelivered).
type Notifier struct {
	Bus   *bus.Bus
	Rules *Rules
	Log   zerolog.Logger
	// Client posts the notifications (default: one with DefaultHTTPTimeout).
	Client *http.Client
	// MaxAttempts bounds the attempts of one delivery (default DefaultMaxAttempts).
	MaxAttempts int
	// Backoff is the wait before attempt n+1 after attempt n failed
	// (default: 2s doubling per attempt, at most 5 minutes).
	Backoff func(attempt int) time.Duration
	// Now is the clock of the outcome events (default time.Now).
	Now func() time.Time
}

// job is one delivery: a run event for one target.
type job struct {
	Target   string          `json:"target"`
	Pipeline string          `json:"pipeline"`
	Event    json.RawMessage `json:"event"`
}

func defaultBackoff(attempt int) time.Duration {
	d := 2 * time.Second << min(attempt-1, 8)
	return min(d, 5*time.Minute)
}

func (n *Notifier) defaults() {
	if n.Client == nil {
		n.Client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if n.MaxAttempts <= 0 {
		n.MaxAttempts = DefaultMaxAttempts
	}
	if n.Backoff == nil {
		n.Backoff = defaultBackoff
	}
	if n.Now == nil {
		n.Now = time.Now
	}
}

// EnsureStream creates the GANTRY_NOTIFY stream when it is missing.
func EnsureStream(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.Stream(ctx, events.StreamNotify)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", events.StreamNotify, err)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name: events.StreamNotify, Subjects: []string{events.SubjectNotifyAll},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, MaxAge: notifyMaxAge,
		Duplicates: 10 * time.Minute, MaxMsgSize: events.MaxMessageBytes, AllowDirect: true,
		Description: "notification delivery jobs and the outcome of each attempt",
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("create stream %s: %w", events.StreamNotify, err)
	}
	return nil
}

// Run consumes until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	n.defaults()
	js := n.Bus.JetStream()
	if err := EnsureStream(ctx, js); err != nil {
		return err
	}
	evCons, err := js.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{
		Durable: EventsDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		// A new notifier announces what happens from now on, not the history.
		DeliverPolicy: jetstream.DeliverNewPolicy, FilterSubject: events.SubjectEventsAll, MaxDeliver: consume.MaxDeliver,
		Description: "the notifier: run events matching a notification rule become delivery jobs",
	})
	if err != nil {
		return fmt.Errorf("notifier consumer: %w", err)
	}
	jobCons, err := js.CreateOrUpdateConsumer(ctx, events.StreamNotify, jetstream.ConsumerConfig{
		Durable: DeliveriesDurable, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:       n.Client.Timeout + 30*time.Second,
		DeliverPolicy: jetstream.DeliverAllPolicy, FilterSubject: events.SubjectNotifyDeliveries,
		// The attempts, and room for an outcome that could not be recorded.
		MaxDeliver:  n.MaxAttempts + consume.MaxDeliver,
		Description: "the notifier: deliver each job to its target, retried with backoff",
	})
	if err != nil {
		return fmt.Errorf("notifier deliveries consumer: %w", err)
	}
	cc1, err := evCons.Consume(func(m jetstream.Msg) { n.onEvent(ctx, m) })
	if err != nil {
		return err
	}
	defer cc1.Stop()
	cc2, err := jobCons.Consume(func(m jetstream.Msg) { n.deliver(ctx, m) })
	if err != nil {
		return err
	}
	defer cc2.Stop()
	n.Log.Info().Int("targets", len(n.Rules.targets())).Msg("notifier watching run events")
	<-ctx.Done()
	return nil
}

func (r *Rules) targets() []Target {
	if r == nil {
		return nil
	}
	return r.Targets
}

// onEvent fans an event out. A failure (publishing to GANTRY_NOTIFY) is
// retried with backoff; it is never dead-lettered, since the run event
// itself is fine, and the notifier may not write the run log's DLQ.
func (n *Notifier) onEvent(ctx context.Context, m jetstream.Msg) {
	err := n.fanOut(ctx, m)
	if err == nil {
		_ = m.Ack()
		return
	}
	if ctx.Err() != nil {
		_ = m.Nak()
		return
	}
	delivered := 1
	if meta, err := m.Metadata(); err == nil {
		delivered = int(meta.NumDelivered)
	}
	ev := n.Log.Warn()
	if delivered >= consume.MaxDeliver {
		ev = n.Log.Error().Bool("dropped", true)
	}
	ev.Err(err).Str("subject", m.Subject()).Int("delivery", delivered).Msg("run event not fanned out to notification targets")
	_ = m.NakWithDelay(n.Backoff(delivered))
}

// Bounds of the envelope's id and type (schemas/envelope.json), which the
// outcome events repeat.
const (
	maxEventID   = 512
	maxEventType = 128
)

// pipelineOf reads the pipeline from a run subject gantry.events.<pipeline>.<run>.
func pipelineOf(subject string) string {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return ""
	}
	return parts[2]
}

// fanOut turns a run event into a job per matching target. It reads only
// the envelope: an event this build has no type for (a newer service's)
// can still be announced.
func (n *Notifier) fanOut(ctx context.Context, m jetstream.Msg) error {
	var env events.Envelope
	if err := json.Unmarshal(m.Data(), &env); err != nil || env.ID == "" || env.Type == "" ||
		len(env.ID) > maxEventID || len(env.Type) > maxEventType {
		return nil // not an event: the conductor dead-letters it; nothing to announce
	}
	pipeline := pipelineOf(m.Subject())
	if !events.ValidName(pipeline) || !events.ValidName(env.Subject) {
		return nil // no run to record outcomes under: not a run event
	}
	for _, t := range n.Rules.Match(pipeline, env.Type) {
		body, err := json.Marshal(job{Target: t.Name, Pipeline: pipeline, Event: m.Data()})
		if err != nil {
			return fmt.Errorf("job for %s: %w", t.Name, err)
		}
		if _, err := n.Bus.JetStream().PublishMsg(ctx, &nats.Msg{Subject: events.NotifyDeliverySubject(t.Name), Data: body},
			jetstream.WithMsgID(env.ID+"/"+t.Name)); err != nil {
			return fmt.Errorf("delivery job of %s to %s: %w", env.ID, t.Name, err)
		}
	}
	return nil
}

// attemptResult is what one post came to.
type attemptResult struct {
	status int
	err    error
	// retry: a server error, 429 or no answer; anything else is final.
	retry bool
}

func (n *Notifier) deliver(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		_ = m.NakWithDelay(time.Second)
		return
	}
	attempt := int(meta.NumDelivered)
	var j job
	var env events.Envelope
	if err := json.Unmarshal(m.Data(), &j); err == nil {
		err = json.Unmarshal(j.Event, &env)
	}
	if err != nil || env.ID == "" {
		reason := fmt.Errorf("not a delivery job: %v", err)
		if dlqErr := n.Bus.DeadLetter(ctx, meta.Stream, m.Subject(), meta.Sequence.Stream, m.Data(), reason); dlqErr != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
		_ = m.Term()
		return
	}
	log := n.Log.With().Str("run", env.Subject).Str("pipeline", j.Pipeline).Str("target", j.Target).
		Str("event", env.Type).Int("attempt", attempt).Logger()
	t, ok := n.Rules.Target(j.Target)
	if !ok {
		log.Warn().Msg("notification target no longer in the rules; job dropped")
		_ = m.Ack()
		return
	}
	if attempt > n.MaxAttempts {
		// The last attempt's outcome could not be recorded (or its ack was
		// lost): give up, saying so.
		final := events.NotificationFailed{Run: env.Subject, Pipeline: j.Pipeline, Target: t.Name, Kind: t.Kind,
			Event: env.ID, OfType: env.Type, Attempt: attempt,
			Reason: fmt.Sprintf("gave up after %d attempts; the last one's outcome was not recorded", n.MaxAttempts)}
		if err := n.record(ctx, j.Pipeline, env.Subject, final); err != nil {
			log.Error().Err(err).Msg("notification given up; not recorded")
		}
		_ = m.Ack()
		return
	}
	res := n.post(ctx, t, j.Pipeline, j.Event)
	if ctx.Err() != nil {
		_ = m.Nak() // stopping: the next notifier tries again
		return
	}
	retry := res.retry && attempt < n.MaxAttempts
	var outcome events.Payload
	if res.err == nil {
		outcome = events.NotificationDelivered{Run: env.Subject, Pipeline: j.Pipeline, Target: t.Name, Kind: t.Kind,
			Event: env.ID, OfType: env.Type, Attempt: attempt, StatusCode: res.status}
		log.Info().Int("status", res.status).Msg("notification delivered")
	} else {
		outcome = events.NotificationFailed{Run: env.Subject, Pipeline: j.Pipeline, Target: t.Name, Kind: t.Kind,
			Event: env.ID, OfType: env.Type, Attempt: attempt, StatusCode: res.status, Reason: cut(res.err.Error(), 4096), Retry: retry}
		ev := log.Warn()
		if !retry {
			ev = log.Error()
		}
		ev.Err(res.err).Int("status", res.status).Bool("retry", retry).Msg("notification failed")
	}
	// Recording goes to our own stream: retry a hiccup in place rather
	// than post again.
	err = n.record(ctx, j.Pipeline, env.Subject, outcome)
	for i := 0; err != nil && i < 3 && ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			err = n.record(ctx, j.Pipeline, env.Subject, outcome)
		}
	}
	if err != nil {
		// Without its record the attempt is not done: try it again.
		log.Error().Err(err).Msg("notification outcome not recorded; delivery will be retried")
		_ = m.NakWithDelay(time.Second)
		return
	}
	if retry {
		_ = m.NakWithDelay(n.Backoff(attempt))
		return
	}
	_ = m.Ack()
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// record appends an outcome event to gantry.notify.outcomes.<pipeline>.<run>.
func (n *Notifier) record(ctx context.Context, pipeline, runID string, p events.Payload) error {
	var id string
	switch o := p.(type) {
	case events.NotificationDelivered:
		id = events.NotificationID(o.Run, o.Target, o.Event, o.Attempt, "delivered")
	case events.NotificationFailed:
		id = events.NotificationID(o.Run, o.Target, o.Event, o.Attempt, "failed")
	}
	e, err := events.New(id, NotifySource, runID, n.Now(), p)
	if err != nil {
		return err
	}
	data, err := n.Bus.Codec().Encode(e)
	if err != nil {
		return err
	}
	_, err = n.Bus.JetStream().PublishMsg(ctx, &nats.Msg{Subject: events.NotifyOutcomeSubject(pipeline, runID), Data: data,
		Header: nats.Header{bus.HeaderType: []string{e.Type}}}, jetstream.WithMsgID(id))
	if err != nil {
		return fmt.Errorf("record %s: %w", id, err)
	}
	return nil
}

// post sends one notification. Errors never show the target's URL in clear.
func (n *Notifier) post(ctx context.Context, t Target, pipeline string, raw []byte) attemptResult {
	var body []byte
	var ctype string
	switch t.Kind {
	case KindSlack:
		msg := SlackMessage(n.Bus.Codec(), n.Rules.BaseURL, pipeline, raw)
		body, _ = json.Marshal(msg)
		ctype = "application/json"
	default:
		// Structured content mode: the envelope as it is in the log.
		body = raw
		ctype = "application/cloudevents+json"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("request to %s: bad URL", MaskURL(t.url))}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "gantry-notify")
	resp, err := n.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s %s: %w", ue.Op, MaskURL(t.url), ue.Err)
		}
		return attemptResult{err: err, retry: true}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return attemptResult{status: resp.StatusCode}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return attemptResult{status: resp.StatusCode, retry: true,
			err: fmt.Errorf("%s answered %s: %s", MaskURL(t.url), resp.Status, strings.TrimSpace(string(snippet)))}
	default:
		return attemptResult{status: resp.StatusCode,
			err: fmt.Errorf("%s refused with %s: %s", MaskURL(t.url), resp.Status, strings.TrimSpace(string(snippet)))}
	}
}
