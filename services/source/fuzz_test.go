package source

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseDelivery: any body under any event header of any forge is
// parsed or refused with an error, never a panic, and what parses has a
// repository, a commit SHA and a known event kind.
func FuzzParseDelivery(f *testing.F) {
	seeds := map[string][2]string{
		"github/push.json": {ForgeGitHub, "push"}, "github/pull_request-opened.json": {ForgeGitHub, "pull_request"},
		"gitlab/push.json": {ForgeGitLab, "Push Hook"}, "gitlab/merge_request.json": {ForgeGitLab, "Merge Request Hook"},
		"gitlab/tag_push.json": {ForgeGitLab, "Tag Push Hook"}, "gitea/push.json": {ForgeGitea, "push"},
		"gitea/pull_request.json": {ForgeGitea, "pull_request"},
	}
	for file, fe := range seeds {
		b, err := os.ReadFile(filepath.Join("testdata", "webhooks", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fe[0], fe[1], b)
	}
	f.Fuzz(func(t *testing.T, forge, event string, body []byte) {
		h := http.Header{}
		for _, k := range []string{"X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event"} {
			h.Set(k, event)
		}
		d, err := ParseDelivery(forge, h, body)
		if err != nil {
			return
		}
		if d.Repository == "" || !validSHA(d.Commit) || (d.Base != "" && !validSHA(d.Base)) {
			t.Fatalf("parsed %+v", d)
		}
		switch d.Event {
		case "push", "tag", "pullRequest":
		default:
			t.Fatalf("event %q", d.Event)
		}
		_ = d.Change()
		_ = repositoryOf(forge, body)
	})
}
