package source

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventHeader is the header naming the event kind of each forge.
var eventHeader = map[string]string{ForgeGitHub: "X-GitHub-Event", ForgeGitLab: "X-Gitlab-Event", ForgeGitea: "X-Gitea-Event"}

// TestParseFixtures reads each forge's documented payloads.
func TestParseFixtures(t *testing.T) {
	cases := []struct {
		file, forge, event string
		want               Delivery
		ignored            bool
	}{
		{file: "github/push.json", forge: ForgeGitHub, event: "push", want: Delivery{Repository: "Codertocat/Hello-World",
			Event: "push", Ref: "refs/heads/main", Commit: "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", Base: "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
			Files: []string{"src/hello.c", "README.md"}, FilesKnown: true, Actor: "Codertocat",
			Time: time.Date(2019, 5, 15, 20, 20, 30, 0, time.UTC)}},
		{file: "github/push-tag.json", forge: ForgeGitHub, event: "push", want: Delivery{Repository: "Codertocat/Hello-World",
			Event: "tag", Ref: "refs/tags/simple-tag", Commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", Actor: "Codertocat",
			Time: time.Date(2019, 5, 15, 20, 19, 25, 0, time.UTC)}},
		{file: "github/push-delete.json", forge: ForgeGitHub, event: "push", ignored: true},
		{file: "github/pull_request-opened.json", forge: ForgeGitHub, event: "pull_request", want: Delivery{Repository: "Codertocat/Hello-World",
			Event: "pullRequest", Action: "opened", Ref: "refs/heads/master", HeadRef: "refs/heads/changes", Number: 2,
			Commit: "ec26c3e57ca3a959ca5aad62de7213c562f8c821", Base: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Actor: "Codertocat",
			Time: time.Date(2019, 5, 15, 15, 20, 33, 0, time.UTC)}},
		{file: "github/pull_request-synchronize.json", forge: ForgeGitHub, event: "pull_request", want: Delivery{Repository: "Codertocat/Hello-World",
			Event: "pullRequest", Action: "updated", Ref: "refs/heads/master", HeadRef: "refs/heads/changes", Number: 2,
			Commit: "34c5c7793cb3b279e22454cb6750c80560547b3a", Base: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Actor: "Codertocat",
			Time: time.Date(2019, 5, 15, 15, 40, 12, 0, time.UTC)}},
		{file: "github/pull_request-closed.json", forge: ForgeGitHub, event: "pull_request", want: Delivery{Repository: "Codertocat/Hello-World",
			Event: "pullRequest", Action: "closed", Ref: "refs/heads/master", HeadRef: "refs/heads/changes", Number: 2,
			Commit: "34c5c7793cb3b279e22454cb6750c80560547b3a", Base: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Actor: "Codertocat",
			Time: time.Date(2019, 5, 15, 16, 2, 57, 0, time.UTC)}},
		{file: "github/push.json", forge: ForgeGitHub, event: "ping", ignored: true},
		{file: "gitlab/push.json", forge: ForgeGitLab, event: "Push Hook", want: Delivery{Repository: "mike/diaspora",
			Event: "push", Ref: "refs/heads/master", Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Base: "95790bf891e76fee5e1747ab589903a6a1f80f22",
			Files: []string{"CHANGELOG", "app/controller/application.rb"}, FilesKnown: true, Actor: "jsmith",
			Time: time.Date(2012, 1, 3, 21, 36, 29, 0, time.UTC)}},
		{file: "gitlab/tag_push.json", forge: ForgeGitLab, event: "Tag Push Hook", want: Delivery{Repository: "jsmith/example",
			Event: "tag", Ref: "refs/tags/v1.0.0", Commit: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", Actor: "jsmith"}},
		{file: "gitlab/merge_request.json", forge: ForgeGitLab, event: "Merge Request Hook", want: Delivery{Repository: "gitlabhq/gitlab-test",
			Event: "pullRequest", Action: "opened", Ref: "refs/heads/master", HeadRef: "refs/heads/ms-viewport", Number: 1,
			Commit: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", Base: "ae73b9b3b0b7f0f8f5d5c6b4f3a6f5d2c1b0a9e8", Actor: "root",
			Time: time.Date(2013, 12, 3, 17, 23, 34, 0, time.UTC)}},
		{file: "gitea/push.json", forge: ForgeGitea, event: "push", want: Delivery{Repository: "gitea/webhooks",
			Event: "push", Ref: "refs/heads/develop", Commit: "bffeb74224043ba2feb48d137756c8a9331c449a", Base: "28e1879d029cb852e4844d9c718537df08844e03",
			Actor: "gitea", Time: time.Date(2017, 3, 13, 17, 52, 11, 0, time.UTC)}},
		{file: "gitea/pull_request.json", forge: ForgeGitea, event: "pull_request", want: Delivery{Repository: "gitea/webhooks",
			Event: "pullRequest", Action: "updated", Ref: "refs/heads/master", HeadRef: "refs/heads/develop", Number: 7,
			Commit: "bffeb74224043ba2feb48d137756c8a9331c449a", Base: "28e1879d029cb852e4844d9c718537df08844e03", Actor: "gitea",
			Time: time.Date(2017, 3, 13, 17, 55, 41, 0, time.UTC)}},
	}
	for _, tc := range cases {
		t.Run(tc.file+"/"+tc.event, func(t *testing.T) {
			h := http.Header{}
			h.Set(eventHeader[tc.forge], tc.event)
			d, err := ParseDelivery(tc.forge, h, fixture(t, tc.file))
			if tc.ignored {
				if err == nil || !strings.Contains(err.Error(), ErrIgnoredEvent.Error()) {
					t.Fatalf("ParseDelivery = %+v, %v; want ErrIgnoredEvent", d, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := d
			got.URLs, got.Forge = nil, ""
			if !got.Time.Equal(tc.want.Time) {
				t.Errorf("time %v, want %v", got.Time, tc.want.Time)
			}
			got.Time, tc.want.Time = time.Time{}, time.Time{}
			if !slices.Equal(got.Files, tc.want.Files) || got.FilesKnown != tc.want.FilesKnown {
				t.Errorf("files %v (known %v), want %v (known %v)", got.Files, got.FilesKnown, tc.want.Files, tc.want.FilesKnown)
			}
			got.Files, tc.want.Files = nil, nil
			if got.Repository != tc.want.Repository || got.Event != tc.want.Event || got.Action != tc.want.Action ||
				got.Ref != tc.want.Ref || got.HeadRef != tc.want.HeadRef || got.Commit != tc.want.Commit || got.Base != tc.want.Base ||
				got.Number != tc.want.Number || got.Actor != tc.want.Actor {
				t.Errorf("delivery\n got %+v\nwant %+v", got, tc.want)
			}
			if len(d.URLs) == 0 || d.Forge != tc.forge {
				t.Errorf("forge %q, URLs %v", d.Forge, d.URLs)
			}
		})
	}
}

// TestVerify: each forge's signature scheme, valid and forged.
func TestVerify(t *testing.T) {
	body := fixture(t, "github/push.json")
	secret := []byte("It's a Secret to Everybody")
	good := map[string]http.Header{
		ForgeGitHub: {"X-Hub-Signature-256": {"sha256=" + Sign(secret, body)}},
		ForgeGitLab: {"X-Gitlab-Token": {string(secret)}},
		ForgeGitea:  {"X-Gitea-Signature": {Sign(secret, body)}},
	}
	for forge, h := range good {
		if err := verify(forge, h, body, secret); err != nil {
			t.Errorf("%s: a valid signature is refused: %v", forge, err)
		}
		if err := verify(forge, http.Header{}, body, secret); err == nil {
			t.Errorf("%s: an unsigned delivery is accepted", forge)
		}
		if err := verify(forge, h, body, []byte("another secret")); err == nil {
			t.Errorf("%s: a delivery signed with another secret is accepted", forge)
		}
		if err := verify(forge, h, body, nil); err == nil {
			t.Errorf("%s: a delivery is accepted though no secret is configured", forge)
		}
		if forge != ForgeGitLab {
			if err := verify(forge, h, append([]byte(" "), body...), secret); err == nil {
				t.Errorf("%s: a changed body is accepted", forge)
			}
		}
	}
	// GitHub's documented test vector.
	if got := Sign(secret, []byte("Hello, World!")); got != "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" {
		t.Errorf("Sign = %s, not GitHub's documented signature", got)
	}
}

// TestRefusedDeliveries: unsigned, forged and oversized deliveries are
// answered 401 or 413 before anything is read from the bus (the receiver
// has no decider here, so it would panic if it went further).
func TestRefusedDeliveries(t *testing.T) {
	w := &Webhooks{Log: zerolog.Nop(), Secrets: WebhookSecrets{ForgeGitHub: {"codertocat/hello-world": "s3cret"},
		ForgeGitLab: {"*": "tok"}, ForgeGitea: {"gitea/webhooks": "s3cret"}}}
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	post := func(forge, file string, h map[string]string, body []byte) int {
		if body == nil {
			body = fixture(t, file)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/"+forge, strings.NewReader(string(body)))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	gh := fixture(t, "github/push.json")
	for _, c := range []struct {
		name, forge, file string
		h                 map[string]string
		body              []byte
		want              int
	}{
		{"github unsigned", ForgeGitHub, "github/push.json", map[string]string{"X-GitHub-Event": "push"}, nil, 401},
		{"github forged", ForgeGitHub, "github/push.json", map[string]string{"X-GitHub-Event": "push",
			"X-Hub-Signature-256": "sha256=" + Sign([]byte("guess"), gh)}, nil, 401},
		{"github sha1 only", ForgeGitHub, "github/push.json", map[string]string{"X-GitHub-Event": "push",
			"X-Hub-Signature": "sha1=0000000000000000000000000000000000000000"}, nil, 401},
		{"gitlab wrong token", ForgeGitLab, "gitlab/push.json", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "tok2"}, nil, 401},
		{"gitlab no token", ForgeGitLab, "gitlab/push.json", map[string]string{"X-Gitlab-Event": "Push Hook"}, nil, 401},
		{"gitea forged", ForgeGitea, "gitea/push.json", map[string]string{"X-Gitea-Event": "push", "X-Gitea-Signature": strings.Repeat("0", 64)}, nil, 401},
		{"gitea repository without a secret", ForgeGitea, "", map[string]string{"X-Gitea-Event": "push",
			"X-Gitea-Signature": Sign([]byte("s3cret"), []byte(`{"repository":{"full_name":"other/repo"}}`))},
			[]byte(`{"repository":{"full_name":"other/repo"}}`), 401},
		{"too large", ForgeGitHub, "", map[string]string{"X-GitHub-Event": "push"}, []byte(strings.Repeat(" ", MaxWebhookBytes+1)), 413},
		{"github ping, signed", ForgeGitHub, "github/push.json", map[string]string{"X-GitHub-Event": "ping",
			"X-Hub-Signature-256": "sha256=" + Sign([]byte("s3cret"), gh)}, nil, 200},
	} {
		if got := post(c.forge, c.file, c.h, c.body); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	resp, err := http.Get(srv.URL + "/webhooks/github")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /webhooks/github: %d, want 405", resp.StatusCode)
	}
}

func TestTriggerID(t *testing.T) {
	a := TriggerID("web", "push", "", "refs/heads/main", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", 0)
	if a != TriggerID("web", "push", "", "refs/heads/main", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", 0) {
		t.Fatal("TriggerID is not deterministic")
	}
	for _, b := range []string{
		TriggerID("api", "push", "", "refs/heads/main", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", 0),
		TriggerID("web", "push", "", "refs/heads/dev", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", 0),
		TriggerID("web", "pullRequest", "closed", "refs/heads/main", "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", 3),
	} {
		if a == b {
			t.Errorf("different changes share the trigger ID %s", a)
		}
	}
}
