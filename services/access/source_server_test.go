package access_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/source"
)

// TestSourceUserTriggers: as its own user, the source service lists the
// pipelines, publishes a webhook's trigger and decision, creates the poll
// bucket and polls a repository through it; it still cannot apply a
// pipeline or append to another stream than its own subjects.
func TestSourceUserTriggers(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	repo := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e", "HOME="+repo)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "--quiet", "-b", "main")
	if err := os.WriteFile(filepath.Join(repo, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "a")
	git("commit", "--quiet", "-m", "a")
	op := s.open(access.Operator, false)
	kv, err := op.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		t.Fatal(err)
	}
	def := events.Definition{Name: "hello", Triggers: []events.TriggerDef{{Repository: "acme/hello"}, {Poll: &events.PollDef{Interval: "1m"}}},
		Stages: []events.StageDef{{Name: "Source", Actions: []events.ActionDef{{Name: "checkout", Type: "source", Pool: "default",
			RunOrder: 1, Configuration: map[string]string{"repository": repo}}}}}}
	if _, err := (source.Pipelines{KV: kv}).Put(ctx, def); err != nil {
		t.Fatal(err)
	}

	src := s.open(access.Source, false)
	dec := &source.Decider{Bus: src.Bus, Validator: src.Validator}
	hooks := &source.Webhooks{Decider: dec, Log: zerolog.Nop()}
	out, err := hooks.Handle(ctx, source.Delivery{Forge: source.ForgeGitHub, Repository: "acme/hello", Event: "push",
		Ref: "refs/heads/main", Commit: git("rev-parse", "HEAD")})
	if err != nil || len(out) != 1 || !out[0].Accepted {
		t.Fatalf("webhook as the source user: %+v, %v", out, err)
	}
	// Again: the duplicate trigger is read back for its run.
	again, err := hooks.Handle(ctx, source.Delivery{Forge: source.ForgeGitHub, Repository: "acme/hello", Event: "push",
		Ref: "refs/heads/main", Commit: git("rev-parse", "HEAD")})
	if err != nil || len(again) != 1 || again[0].Run != out[0].Run {
		t.Fatalf("redelivery as the source user: %+v, %v; want run %s", again, err, out[0].Run)
	}
	pkv, err := source.PollBucket(ctx, src.Bus.JetStream())
	if err != nil {
		t.Fatalf("source creates the poll bucket: %v", err)
	}
	poller := &source.Poller{Decider: dec, Log: zerolog.Nop(), Git: &source.GitFiles{Dir: t.TempDir()}}
	if err := poller.PollDue(ctx, pkv); err != nil {
		t.Fatalf("poll as the source user: %v", err)
	}
	if e, err := pkv.Get(ctx, "hello"); err != nil || !strings.Contains(string(e.Value()), git("rev-parse", "HEAD")) {
		t.Fatalf("poll state: %v", err)
	}
	c := s.client(access.Source)
	c.cannotPublish("$KV." + events.BucketPipelines + ".hello")
	c.cannotPublish("$KV." + access.BucketSecrets + ".k")
}
