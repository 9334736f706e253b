package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/triggerfilter"
)

// Poller polls the source repository of every pipeline with a poll
// trigger, at the trigger's interval, with git ls-remote. A ref whose
// commit moved is a push (or a tag) that goes through the same filters
// as a webhook's, with the changed files from git. What it saw is kept in
// the KV bucket events.BucketPoll, so a restart neither re-triggers nor
// polls early; several source services may poll at once, because a
// change's trigger ID is derived from it (TriggerID) and so starts one run.
//
// The first poll of a pipeline records the refs' commits and starts no
// run: polling starts runs for what is pushed after it began.
type Poller struct {
	Decider *Decider
	Log     zerolog.Logger
	Git     *GitFiles
	// ReposDir resolves relative repository paths of source actions.
	ReposDir string
	// Tick is how often it looks for pipelines due a poll (default 10s).
	Tick time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// PollState is a pipeline's entry in the poll bucket.
type PollState struct {
	Repository string            `json:"repository"`
	Polled     time.Time         `json:"polled"`
	Refs       map[string]string `json:"refs"`
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// PollBucket opens the poll bucket, creating it the first time.
func PollBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, events.BucketPoll)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// Create, not CreateOrUpdate: the source user may create this
		// bucket's stream but not update it.
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: events.BucketPoll,
			Description: "source service: the commits git polling last saw, per pipeline", History: 1,
			Storage: jetstream.FileStorage})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, events.BucketPoll)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("poll bucket %s: %w", events.BucketPoll, err)
	}
	return kv, nil
}

// Run polls until ctx ends. A failure (the bucket, a repository out of
// reach) is logged and tried again at the next tick: it must not stop the
// checkout worker the poller shares a process with.
func (p *Poller) Run(ctx context.Context) error {
	tick := p.Tick
	if tick <= 0 {
		tick = 10 * time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	var kv jetstream.KeyValue
	for {
		var err error
		if kv == nil {
			kv, err = PollBucket(ctx, p.Decider.Bus.JetStream())
		}
		if err == nil {
			err = p.PollDue(ctx, kv)
		}
		if err != nil && ctx.Err() == nil {
			p.Log.Warn().Err(err).Msg("poll")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// PollDue polls every pipeline whose interval has passed since its last
// poll (by the bucket, not by memory).
func (p *Poller) PollDue(ctx context.Context, kv jetstream.KeyValue) error {
	pipes, err := listPipelines(ctx, p.Decider.Bus.JetStream())
	if err != nil {
		return err
	}
	var errs []error
	for _, def := range pipes {
		every := pollInterval(def)
		if every == 0 {
			continue
		}
		if err := p.pollOne(ctx, kv, def, every); err != nil {
			errs = append(errs, fmt.Errorf("poll %s: %w", def.Name, err))
		}
	}
	return errors.Join(errs...)
}

// pollInterval is the shortest interval of a pipeline's poll triggers; 0
// when it has none.
func pollInterval(def events.Definition) time.Duration {
	var every time.Duration
	for _, t := range def.Triggers {
		if t.Poll == nil {
			continue
		}
		d, err := time.ParseDuration(t.Poll.Interval)
		if err != nil || d <= 0 {
			continue
		}
		if every == 0 || d < every {
			every = d
		}
	}
	return every
}

func (p *Poller) pollOne(ctx context.Context, kv jetstream.KeyValue, def events.Definition, every time.Duration) error {
	repo, branch := SourceRepository(def, p.ReposDir)
	if repo == "" {
		return fmt.Errorf("no source action with a repository to poll")
	}
	var st PollState
	var rev uint64
	entry, err := kv.Get(ctx, def.Name)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("read poll state: %w", err)
	default:
		rev = entry.Revision()
		if err := json.Unmarshal(entry.Value(), &st); err != nil {
			return fmt.Errorf("decode poll state: %w", err)
		}
	}
	now := p.now()
	if st.Repository == repo && now.Sub(st.Polled) < every {
		return nil
	}
	remote, err := LsRemote(ctx, repo)
	if err != nil {
		return err
	}
	refs := map[string]string{}
	for ref, sha := range remote {
		if watched(def, ref, branch) {
			refs[ref] = sha
		}
	}
	first := st.Repository != repo // a new pipeline, or its repository changed
	if !first {
		for _, ref := range slices.Sorted(maps.Keys(refs)) {
			if st.Refs[ref] == refs[ref] {
				continue
			}
			if err := p.change(ctx, def, repo, ref, st.Refs[ref], refs[ref]); err != nil {
				return err
			}
		}
	}
	next, err := json.Marshal(PollState{Repository: repo, Polled: now.UTC(), Refs: refs})
	if err != nil {
		return err
	}
	// Update at the revision read: of two pollers only one records, and the
	// other's triggers were the same (TriggerID), so nothing is lost.
	if rev == 0 {
		_, err = kv.Create(ctx, def.Name, next)
	} else {
		_, err = kv.Update(ctx, def.Name, next, rev)
	}
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
			return fmt.Errorf("record poll state: %w", err)
		}
	}
	return nil
}

// watched reports whether a poll looks at a ref: branches a poll trigger's
// branches filter names (without one, the source action's branch), and
// tags when a poll trigger listens to tags.
func watched(def events.Definition, ref, branch string) bool {
	for _, t := range def.Triggers {
		if t.Poll == nil {
			continue
		}
		if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok && slices.Contains(triggerfilter.Events(t), events.TriggerEventPush) {
			if t.Branches == nil {
				if name == branch {
					return true
				}
			} else if ok, _ := triggerfilter.Passes(t.Branches, name); ok {
				return true
			}
		}
		if _, ok := strings.CutPrefix(ref, "refs/tags/"); ok && slices.Contains(triggerfilter.Events(t), events.TriggerEventTag) {
			return true
		}
	}
	return false
}

// change holds one moved ref against the pipeline's triggers.
func (p *Poller) change(ctx context.Context, def events.Definition, repo, ref, before, after string) error {
	event := events.TriggerEventPush
	c := triggerfilter.Change{Poll: true, Repository: []string{repo}, Event: event}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		event, c.Event, c.Tag = events.TriggerEventTag, events.TriggerEventTag, tag
	} else {
		c.Branch = strings.TrimPrefix(ref, "refs/heads/")
		if needsFiles(def) {
			// Without the files the filter could only refuse, and the
			// commit would be recorded as seen: fail the poll instead, so
			// the next one tries again.
			files, err := p.Git.Changed(ctx, repo, before, after)
			if err != nil {
				return fmt.Errorf("changed files of %s: %w", ref, err)
			}
			c.Files, c.FilesKnown = files, true
		}
	}
	seen := events.TriggerChange{Source: "poll", Forge: "git", Repository: repo, Event: event, Ref: ref, Commit: after, Files: -1}
	if c.FilesKnown {
		seen.Files = len(c.Files)
	}
	t := Trigger{ID: TriggerID(def.Name, event, "", ref, after, 0), Pipeline: def.Name, Kind: "poll",
		Commit: after, Ref: ref, Actor: "git poll"}
	o, err := p.Decider.Decide(ctx, def, seen, c, t)
	if err != nil {
		return err
	}
	p.Log.Info().Str("pipeline", def.Name).Str("ref", ref).Str("commit", after).Bool("accepted", o.Accepted).
		Str("run", o.Run).Str("reason", o.Reason).Msg("poll decided")
	return nil
}
