package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/source"
)

// signed posts a fixture to a receiver as its forge would sign it.
func signed(t *testing.T, url, forge, event, secret string, body []byte) (int, source.Reply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/"+forge, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch forge {
	case source.ForgeGitHub:
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", "d-"+event)
		req.Header.Set("X-Hub-Signature-256", "sha256="+source.Sign([]byte(secret), body))
	case source.ForgeGitLab:
		req.Header.Set("X-Gitlab-Event", event)
		req.Header.Set("X-Gitlab-Event-UUID", "d-"+event)
		req.Header.Set("X-Gitlab-Token", secret)
	case source.ForgeGitea:
		req.Header.Set("X-Gitea-Event", event)
		req.Header.Set("X-Gitea-Delivery", "d-"+event)
		req.Header.Set("X-Gitea-Signature", source.Sign([]byte(secret), body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep source.Reply
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, rep
}

// TestEachForgeSigned posts every documented payload, correctly signed, to
// a receiver whose pipelines' triggers accept some and refuse others.
func TestEachForgeSigned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defs := []events.Definition{
		{Name: "gh", Stages: sourceStage("repos/gh"), Triggers: []events.TriggerDef{{Repository: "codertocat/hello-world",
			Events: []string{"push", "tag", "pullRequest"}, PullRequestActions: []string{"opened", "closed"},
			Tags: &events.GlobFilter{Excludes: []string{"simple-*"}}}}},
		{Name: "gl", Stages: sourceStage("repos/gl"), Triggers: []events.TriggerDef{
			{Repository: "example.com/mike/diaspora", Branches: &events.GlobFilter{Includes: []string{"master"}},
				FilePaths: &events.GlobFilter{Includes: []string{"app/**"}}},
			{Repository: "jsmith/example", Tags: &events.GlobFilter{Includes: []string{"v1.*"}}},
			{Repository: "gitlabhq/gitlab-test", Events: []string{"pullRequest"}, Branches: &events.GlobFilter{Includes: []string{"main"}}}}},
		{Name: "gt", Stages: sourceStage("repos/gt"), Triggers: []events.TriggerDef{{Repository: "gitea/webhooks",
			Events: []string{"push", "pullRequest"}, Branches: &events.GlobFilter{Includes: []string{"develop", "master"}}}}},
	}
	s := startStack(t, ctx, defs...)
	secrets := source.WebhookSecrets{source.ForgeGitHub: {"*": "gh-secret"}, source.ForgeGitLab: {"*": "gl-token"},
		source.ForgeGitea: {"gitea/webhooks": "gt-secret"}}
	srv := httptest.NewServer((&source.Webhooks{Decider: s.dec, Log: zerolog.Nop(), Secrets: secrets}).Handler())
	defer srv.Close()
	for _, c := range []struct {
		forge, file, event, secret, pipeline string
		accepted                             bool
		reason                               string
	}{
		{source.ForgeGitHub, "github/push.json", "push", "gh-secret", "gh", true, `branch "main" (no filter)`},
		{source.ForgeGitHub, "github/push-tag.json", "push", "gh-secret", "gh", false, `tag "simple-tag" matches exclude "simple-*"`},
		{source.ForgeGitHub, "github/pull_request-opened.json", "pull_request", "gh-secret", "gh", true, "pull request opened"},
		{source.ForgeGitHub, "github/pull_request-synchronize.json", "pull_request", "gh-secret", "gh", false, "pull request action updated is not one of opened, closed"},
		{source.ForgeGitHub, "github/pull_request-closed.json", "pull_request", "gh-secret", "gh", true, "pull request closed"},
		{source.ForgeGitLab, "gitlab/push.json", "Push Hook", "gl-token", "gl", true, `file "app/controller/application.rb" matches include "app/**"`},
		{source.ForgeGitLab, "gitlab/tag_push.json", "Tag Push Hook", "gl-token", "gl", true, `trigger 2 accepted: tag "v1.0.0" matches include "v1.*"`},
		{source.ForgeGitLab, "gitlab/merge_request.json", "Merge Request Hook", "gl-token", "gl", false, `target branch "master" matches no include of "main"`},
		{source.ForgeGitea, "gitea/push.json", "push", "gt-secret", "gt", true, `branch "develop" matches include "develop"`},
		{source.ForgeGitea, "gitea/pull_request.json", "pull_request", "gt-secret", "gt", true, "pull request updated"},
	} {
		code, rep := signed(t, srv.URL, c.forge, c.event, c.secret, readFixture(t, c.file))
		if code != http.StatusAccepted || len(rep.Outcomes) != 1 {
			t.Errorf("%s: status %d, reply %+v; want 202 and one outcome", c.file, code, rep)
			continue
		}
		o := rep.Outcomes[0]
		if o.Pipeline != c.pipeline || o.Accepted != c.accepted || !strings.Contains(o.Reason, c.reason) || (o.Run != "") != c.accepted {
			t.Errorf("%s: outcome %+v, want %s accepted=%v with %q", c.file, o, c.pipeline, c.accepted, c.reason)
		}
	}
}

// TestPullRequestFilesFromGit: a pull request payload lists no files, so
// the receiver diffs the pull request's base and head in the source
// action's repository, and the filePaths filter sees them.
func TestPullRequestFilesFromGit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	repo := newRepo(t)
	base := repo.git("rev-parse", "HEAD")
	repo.git("checkout", "--quiet", "-b", "changes")
	docsOnly := repo.commit("docs/intro.md", "# intro")
	code := repo.commit("src/cart.go", "package cart")
	repo.git("checkout", "--quiet", "main")
	def := events.Definition{Name: "prs", Stages: sourceStage(repo.dir), Triggers: []events.TriggerDef{{
		Repository: "Codertocat/Hello-World", Events: []string{"pullRequest"},
		FilePaths: &events.GlobFilter{Includes: []string{"src/**"}}}}}
	s := startStack(t, ctx, def)
	srv := httptest.NewServer((&source.Webhooks{Decider: s.dec, Log: zerolog.Nop(),
		Secrets: source.WebhookSecrets{source.ForgeGitHub: {"*": "k"}}, Git: &source.GitFiles{Dir: t.TempDir()}}).Handler())
	defer srv.Close()
	payload := func(head string) []byte {
		var p map[string]any
		if err := json.Unmarshal(readFixture(t, "github/pull_request-opened.json"), &p); err != nil {
			t.Fatal(err)
		}
		pr := p["pull_request"].(map[string]any)
		pr["head"].(map[string]any)["sha"] = head
		pr["base"].(map[string]any)["sha"] = base
		b, _ := json.Marshal(p)
		return b
	}
	// A head git cannot fetch: nothing is decided, and the forge hears 500.
	if status, rep := signed(t, srv.URL, source.ForgeGitHub, "pull_request", "k", payload(strings.Repeat("e", 40))); status != http.StatusInternalServerError || len(rep.Outcomes) != 0 {
		t.Fatalf("an unfetchable head: %d %+v, want 500 and no outcome", status, rep)
	}
	if n := triggerCount(t, ctx, s.b); n != 0 {
		t.Fatalf("an unfetchable head published %d messages", n)
	}
	_, rep := signed(t, srv.URL, source.ForgeGitHub, "pull_request", "k", payload(docsOnly))
	if len(rep.Outcomes) != 1 || rep.Outcomes[0].Accepted || !strings.Contains(rep.Outcomes[0].Reason, `"docs/intro.md"`) {
		t.Fatalf("a pull request touching docs: %+v, want filtered naming docs/intro.md", rep)
	}
	_, rep = signed(t, srv.URL, source.ForgeGitHub, "pull_request", "k", payload(code))
	if len(rep.Outcomes) != 1 || !rep.Outcomes[0].Accepted || !strings.Contains(rep.Outcomes[0].Reason, `file "src/cart.go"`) {
		t.Fatalf("a pull request touching src: %+v, want accepted for src/cart.go", rep)
	}
	s.waitStarted(t, ctx, "prs", rep.Outcomes[0].Run)
	evs, err := s.b.ReadRun(ctx, "prs", rep.Outcomes[0].Run, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tr := evs[0].Payload.(events.RunRequested).Trigger; tr.Commit != code || tr.Ref != "refs/heads/changes" {
		t.Errorf("the run builds %s of %s, want the head %s of refs/heads/changes", tr.Commit, tr.Ref, code)
	}
}

// TestFormEncodedDelivery: GitHub's default content type sends the JSON in
// a form's payload field, signed as a form; it is verified and read like
// a JSON delivery, and a forged one is still refused.
func TestFormEncodedDelivery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	def := events.Definition{Name: "form", Stages: sourceStage("repos/form"),
		Triggers: []events.TriggerDef{{Repository: "Codertocat/Hello-World"}}}
	s := startStack(t, ctx, def)
	srv := httptest.NewServer((&source.Webhooks{Decider: s.dec, Log: zerolog.Nop(),
		Secrets: source.WebhookSecrets{source.ForgeGitHub: {"codertocat/hello-world": "k"}}}).Handler())
	defer srv.Close()
	form := []byte(url.Values{"payload": {string(readFixture(t, "github/push.json"))}}.Encode())
	post := func(sig string) (int, source.Reply) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/github", bytes.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rep source.Reply
		_ = json.NewDecoder(resp.Body).Decode(&rep)
		return resp.StatusCode, rep
	}
	if code, _ := post(source.Sign([]byte("guess"), form)); code != http.StatusUnauthorized {
		t.Fatalf("forged form: %d, want 401", code)
	}
	code, rep := post(source.Sign([]byte("k"), form))
	if code != http.StatusAccepted || len(rep.Outcomes) != 1 || !rep.Outcomes[0].Accepted {
		t.Fatalf("signed form: %d %+v, want 202 accepted", code, rep)
	}
}
