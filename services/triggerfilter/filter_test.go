package triggerfilter

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/events"
)

func globs(in, ex []string) *events.GlobFilter { return &events.GlobFilter{Includes: in, Excludes: ex} }

func TestDecide(t *testing.T) {
	app := []string{"acme/app", "github.com/acme/app"}
	main := events.TriggerDef{Repository: "acme/app", Branches: globs([]string{"main", "release/**"}, []string{"release/old/**"})}
	src := events.TriggerDef{Repository: "github.com/Acme/App", Events: []string{"push", "pullRequest"},
		FilePaths: globs([]string{"src/**"}, []string{"**/*.md"})}
	tags := events.TriggerDef{Repository: "acme/app", Tags: globs([]string{"v*"}, []string{"v*-rc*"})}
	prs := events.TriggerDef{Repository: "acme/app", Events: []string{"pullRequest"}, PullRequestActions: []string{"closed"},
		Branches: globs([]string{"main"}, nil)}
	poll := events.TriggerDef{Poll: &events.PollDef{Interval: "5m"}, Branches: globs([]string{"main"}, nil)}
	cases := []struct {
		name     string
		triggers []events.TriggerDef
		change   Change
		accept   bool
		trigger  int
		reason   string
	}{
		{"no triggers", nil, Change{Repository: app, Event: "push", Branch: "main"}, false, -1, "no triggers"},
		{"push to main", []events.TriggerDef{main}, Change{Repository: app, Event: "push", Branch: "main"}, true, 0, `"main" matches include "main"`},
		{"push to a release branch", []events.TriggerDef{main}, Change{Repository: app, Event: "push", Branch: "release/1.2/hotfix"}, true, 0, `include "release/**"`},
		{"exclude wins over include", []events.TriggerDef{main}, Change{Repository: app, Event: "push", Branch: "release/old/1.0"}, false, -1, `matches exclude "release/old/**"`},
		{"push to a feature branch", []events.TriggerDef{main}, Change{Repository: app, Event: "push", Branch: "feature/x"}, false, -1, `matches no include of "main", "release/**"`},
		{"other repository", []events.TriggerDef{main}, Change{Repository: []string{"acme/other"}, Event: "push", Branch: "main"}, false, -1, "repository acme/other is not acme/app"},
		{"no repository hears no webhook", []events.TriggerDef{{Branches: globs([]string{"main"}, nil)}}, Change{Repository: app, Event: "push", Branch: "main"}, false, -1, "names no repository"},
		{"host-qualified repository without case", []events.TriggerDef{src}, Change{Repository: app, Event: "push", Branch: "x", Files: []string{"README.md", "src/a/b.go"}, FilesKnown: true}, true, 0, `file "src/a/b.go" matches include "src/**"`},
		{"only excluded files", []events.TriggerDef{src}, Change{Repository: app, Event: "push", Branch: "x", Files: []string{"src/README.md", "docs/a.go"}, FilesKnown: true}, false, -1, "none of the 2 changed files"},
		{"files unknown", []events.TriggerDef{src}, Change{Repository: app, Event: "pullRequest", Action: "opened", Branch: "main"}, false, -1, "changed files are unknown"},
		{"no file changed", []events.TriggerDef{src}, Change{Repository: app, Event: "push", Branch: "main", FilesKnown: true}, false, -1, "no file changed"},
		{"tag push with the default events of a tags filter", []events.TriggerDef{tags}, Change{Repository: app, Event: "tag", Tag: "v1.2.0"}, true, 0, `tag "v1.2.0" matches include "v*"`},
		{"release candidate tag excluded", []events.TriggerDef{tags}, Change{Repository: app, Event: "tag", Tag: "v1.2.0-rc1"}, false, -1, `exclude "v*-rc*"`},
		{"tag not listened to", []events.TriggerDef{main}, Change{Repository: app, Event: "tag", Tag: "v1"}, false, -1, "event tag is not one of push"},
		{"pull request opened, default actions", []events.TriggerDef{src}, Change{Repository: app, Event: "pullRequest", Action: "opened", Branch: "main", Files: []string{"src/x.go"}, FilesKnown: true}, true, 0, "pull request opened"},
		{"pull request closed, not by default", []events.TriggerDef{src}, Change{Repository: app, Event: "pullRequest", Action: "closed", Branch: "main", Files: []string{"src/x.go"}, FilesKnown: true}, false, -1, "action closed is not one of opened, updated"},
		{"pull request closed, listed", []events.TriggerDef{prs}, Change{Repository: app, Event: "pullRequest", Action: "closed", Branch: "main"}, true, 0, "target branch"},
		{"pull request to another target", []events.TriggerDef{prs}, Change{Repository: app, Event: "pullRequest", Action: "closed", Branch: "dev"}, false, -1, `target branch "dev" matches no include`},
		{"second trigger accepts", []events.TriggerDef{main, tags}, Change{Repository: app, Event: "tag", Tag: "v2"}, true, 1, "trigger 2 accepted"},
		{"every trigger's reason", []events.TriggerDef{main, src}, Change{Repository: app, Event: "push", Branch: "dev"}, false, -1, `trigger 1: branch "dev" matches no include of "main", "release/**"; trigger 2: changed files are unknown`},
		{"poll on main", []events.TriggerDef{main, poll}, Change{Poll: true, Repository: []string{"/srv/git/app"}, Event: "push", Branch: "main"}, true, 1, "trigger 2 accepted"},
		{"a webhook trigger does not poll", []events.TriggerDef{main}, Change{Poll: true, Event: "push", Branch: "main"}, false, -1, "does not poll"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.triggers, tc.change)
			if d.Accepted != tc.accept || d.Trigger != tc.trigger || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Decide = %+v, want accepted %v by trigger %d with a reason containing %q", d, tc.accept, tc.trigger, tc.reason)
			}
		})
	}
}

// A trigger without filters accepts any push of its repository.
func TestNoFilterAcceptsAnyBranch(t *testing.T) {
	d := Decide([]events.TriggerDef{{Repository: "acme/app"}}, Change{Repository: []string{"acme/app"}, Event: "push", Branch: "anything/at/all"})
	if !d.Accepted {
		t.Fatalf("a trigger without filters refused a push: %s", d.Reason)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"acme/app":                        "acme/app",
		"Acme/App/":                       "acme/app",
		"https://GitHub.com/Acme/App.git": "github.com/acme/app",
		"https://user:tok@gitlab.example:8443/group/sub/app.git": "gitlab.example/group/sub/app",
		"git@github.com:acme/app.git":                            "github.com/acme/app",
		"ssh://git@gitea.local:2222/acme/app":                    "gitea.local/acme/app",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
	names := Names("acme/app", "https://github.com/acme/app.git", "git@github.com:acme/app.git")
	if !strings.Contains(strings.Join(names, " "), "github.com/acme/app") {
		t.Errorf("Names = %v, want github.com/acme/app among them", names)
	}
}

// FuzzDecide: any triggers and change give a decision without panicking,
// consistent with itself (an accepted decision names a trigger that alone
// accepts the change; a refused one has a reason per trigger), and excludes
// always win over includes.
func FuzzDecide(f *testing.F) {
	f.Add("acme/app", "main", "release/**", "src/**", "**/*.md", "push", "opened", "main", "v1", "src/a.go", true, false)
	f.Add("acme/app", "", "", "", "", "tag", "", "", "v1.0", "", false, false)
	f.Add("", "[", "**", "*", "a/**/b", "pullRequest", "closed", "a/b", "", "a/x/b", true, true)
	f.Fuzz(func(t *testing.T, repo, include, exclude, fileIn, fileEx, event, action, branch, tag, file string, known, poll bool) {
		filter := func(in, ex string) *events.GlobFilter {
			if in == "" && ex == "" {
				return nil
			}
			g := &events.GlobFilter{}
			if in != "" {
				g.Includes = []string{in}
			}
			if ex != "" {
				g.Excludes = []string{ex}
			}
			return g
		}
		tr := events.TriggerDef{Repository: repo, Events: []string{"push", "tag", "pullRequest"},
			PullRequestActions: []string{"opened", "updated", "closed"},
			Branches:           filter(include, exclude), Tags: filter(include, exclude), FilePaths: filter(fileIn, fileEx)}
		if poll {
			tr.Poll = &events.PollDef{Interval: "1m"}
		}
		c := Change{Poll: poll, Repository: []string{repo}, Event: event, Action: action, Branch: branch, Tag: tag,
			Files: []string{file}, FilesKnown: known}
		triggers := []events.TriggerDef{tr, {Repository: "x/" + repo}}
		d := Decide(triggers, c)
		if !utf8.ValidString(repo + include + exclude + fileIn + fileEx + event + action + branch + tag + file) {
			return
		}
		if d.Accepted {
			if d.Trigger < 0 || d.Trigger >= len(triggers) || !Decide(triggers[d.Trigger:d.Trigger+1], c).Accepted {
				t.Fatalf("accepted by trigger %d, which alone does not accept", d.Trigger)
			}
			v := branch
			if event == "tag" {
				v = tag
			}
			if exclude != "" && d.Trigger == 0 {
				if ok, _ := Passes(&events.GlobFilter{Excludes: []string{exclude}}, v); !ok {
					t.Fatalf("accepted %q although it matches exclude %q", v, exclude)
				}
			}
		} else if d.Trigger != -1 || strings.Count(d.Reason, "trigger ") != len(triggers) {
			t.Fatalf("refused with trigger %d and reason %q", d.Trigger, d.Reason)
		}
	})
}
