package source_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/source"
)

// gitRepo is a local repository the poller polls.
type gitRepo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *gitRepo {
	t.Helper()
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git("init", "--quiet", "-b", "main")
	r.commit("README.md", "hello")
	return r
}

func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+r.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r *gitRepo) commit(file, content string) string {
	r.t.Helper()
	path := filepath.Join(r.dir, file)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("add", "--", file)
	r.git("commit", "--quiet", "-m", "change "+file)
	return r.git("rev-parse", "HEAD")
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }
func decisions(t *testing.T, ctx context.Context, s *stack, pipeline string) []events.Event {
	t.Helper()
	evs, err := source.ReadDecisions(ctx, s.b, pipeline, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestPollTriggersOnNewCommits polls a local repository: the first poll
// records the head and starts nothing; a commit touching src/ is seen at
// the next poll due (not before) and starts a run; a commit touching only
// docs is filtered out by filePaths, with an event saying so; a restarted
// poller (a new one on the same bucket) re-triggers nothing; two pollers
// polling the same new commit start one run.
func TestPollTriggersOnNewCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	repo := newRepo(t)
	def := events.Definition{Name: "polled", Stages: sourceStage(repo.dir),
		Triggers: []events.TriggerDef{{Poll: &events.PollDef{Interval: "5m"}, FilePaths: &events.GlobFilter{Includes: []string{"src/**"}}}}}
	s := startStack(t, ctx, def)
	kv, err := source.PollBucket(ctx, s.b.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	// Each poller is a source service of its own, with its own mirrors.
	poller := func() *source.Poller {
		return &source.Poller{Decider: s.dec, Log: zerolog.Nop(), Git: &source.GitFiles{Dir: t.TempDir()}, Now: clk.Now}
	}
	p := poller()
	poll := func(p *source.Poller) {
		t.Helper()
		if err := p.PollDue(ctx, kv); err != nil {
			t.Fatal(err)
		}
	}

	poll(p)
	if n := triggerCount(t, ctx, s.b); n != 0 {
		t.Fatalf("the first poll published %d messages, want none", n)
	}
	head := repo.commit("src/app.go", "package app")
	clk.Add(time.Minute)
	poll(p)
	if n := triggerCount(t, ctx, s.b); n != 0 {
		t.Fatalf("a poll before the interval published %d messages", n)
	}
	clk.Add(5 * time.Minute)
	poll(p)
	evs := decisions(t, ctx, s, "polled")
	if len(evs) != 1 || evs[0].Type != events.TypeTriggerAccepted {
		t.Fatalf("decisions after a src/ commit: %v, want one accepted", evs)
	}
	acc := evs[0].Payload.(events.TriggerAccepted)
	if acc.Change.Commit != head || acc.Change.Source != "poll" || acc.Change.Files != 1 || !strings.Contains(acc.Reason, "src/app.go") {
		t.Errorf("accepted %+v", acc)
	}
	s.waitStarted(t, ctx, "polled", acc.Run)

	repo.commit("docs/guide.md", "# guide")
	clk.Add(5 * time.Minute)
	poll(p)
	evs = decisions(t, ctx, s, "polled")
	if len(evs) != 2 || evs[1].Type != events.TypeTriggerFiltered ||
		!strings.Contains(evs[1].Payload.(events.TriggerFiltered).Reason, `none of the 1 changed files passes filePaths (first: "docs/guide.md")`) {
		t.Fatalf("decisions after a docs commit: %v, want a filtered one naming docs/guide.md", evs)
	}

	// A restart: a new poller, the same bucket, due again. Nothing moved.
	clk.Add(5 * time.Minute)
	poll(poller())
	if evs := decisions(t, ctx, s, "polled"); len(evs) != 2 {
		t.Fatalf("a restarted poller decided again: %d decisions", len(evs))
	}

	// Two pollers see the same new commit at once: one run.
	repo.commit("src/two.go", "package app")
	clk.Add(5 * time.Minute)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := poller().PollDue(ctx, kv); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	evs = decisions(t, ctx, s, "polled")
	if len(evs) != 3 || evs[2].Type != events.TypeTriggerAccepted {
		t.Fatalf("decisions after two pollers: %d %v, want a third, accepted", len(evs), evs)
	}
	s.waitStarted(t, ctx, "polled", evs[2].Payload.(events.TriggerAccepted).Run)
	time.Sleep(200 * time.Millisecond)
	if n := s.runsOf(t, ctx, "polled"); n != 2 {
		t.Errorf("polled has %d runs, want 2", n)
	}
}

// TestPollTags: a poll trigger listening to tags sees a new tag (annotated,
// so ls-remote lists the tag object and the commit it peels to) and
// starts a run of the tagged commit; a tag its filter excludes is filtered.
func TestPollTags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	repo := newRepo(t)
	def := events.Definition{Name: "tags", Stages: sourceStage(repo.dir), Triggers: []events.TriggerDef{{
		Poll: &events.PollDef{Interval: "1m"}, Events: []string{"tag"},
		Tags: &events.GlobFilter{Includes: []string{"v*"}, Excludes: []string{"*-rc*"}}}}}
	s := startStack(t, ctx, def)
	kv, err := source.PollBucket(ctx, s.b.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	p := &source.Poller{Decider: s.dec, Log: zerolog.Nop(), Git: &source.GitFiles{Dir: t.TempDir()}, Now: clk.Now}
	if err := p.PollDue(ctx, kv); err != nil {
		t.Fatal(err)
	}
	head := repo.commit("src/a.go", "package a")
	repo.git("tag", "-a", "-m", "release", "v1.0.0")
	repo.git("tag", "v1.1.0-rc1")
	clk.Add(2 * time.Minute)
	if err := p.PollDue(ctx, kv); err != nil {
		t.Fatal(err)
	}
	evs := decisions(t, ctx, s, "tags")
	if len(evs) != 2 {
		t.Fatalf("decisions: %v, want two", evs)
	}
	for _, e := range evs {
		switch pl := e.Payload.(type) {
		case events.TriggerAccepted:
			if pl.Change.Ref != "refs/tags/v1.0.0" || pl.Change.Commit != head {
				t.Errorf("accepted %+v, want v1.0.0 at %s (the commit, not the tag object)", pl.Change, head)
			}
		case events.TriggerFiltered:
			if pl.Change.Ref != "refs/tags/v1.1.0-rc1" || !strings.Contains(pl.Reason, `matches exclude "*-rc*"`) {
				t.Errorf("filtered %+v", pl)
			}
		}
	}
}
