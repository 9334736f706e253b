package decider_test

import (
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/decider"
)

// nsDef: stage A's build (namespace Build) exports variables; stage B's
// deploy reads them in its configuration.
func nsDef(cfg map[string]string, kind string) events.Definition {
	return events.Definition{Name: "p", Variables: map[string]string{"REGION": "eu-1"}, Stages: []events.StageDef{
		{Name: "A", Actions: []events.ActionDef{{Name: "build", Type: "build", Pool: "default", RunOrder: 1, Namespace: "Build"}}},
		{Name: "B", Actions: []events.ActionDef{{Name: "use", Type: kind, Pool: "default", RunOrder: 1, Configuration: cfg}}},
	}}
}

func TestVariableReferences(t *testing.T) {
	hostile := `1.2"; rm -rf / ; $(id) #{Build.VERSION}`
	aDone := given{events.RunStarted{Run: runID}, events.StageStarted{Run: runID, Stage: "A", Attempt: 1}, dispN("A", "build", 1),
		events.ActionSucceeded{ActionRef: ref("A", "build", 1), Lease: lease("A", "build", 1),
			Variables: map[string]string{"VERSION": "1.2.3", "HOSTILE": hostile}},
		events.StageSucceeded{Run: runID, Stage: "A", Attempt: 1}, events.StageStarted{Run: runID, Stage: "B", Attempt: 1}}
	cases := []struct {
		name   string
		kind   string
		cfg    map[string]string
		want   map[string]string // the dispatched configuration
		failed string            // or the action fails at once with this in its reason
	}{
		{"exported variable and built-ins resolve", "deploy",
			map[string]string{"image": "app:#{Build.VERSION}", "run": "#{pipeline.runId}/#{pipeline.executionId}", "p": "#{pipeline.name}",
				"r": "#{variables.REGION}", "commit": "#{source.commitId}", "branch": "#{source.branch}", "plain": "${HOME} #x {y}"},
			map[string]string{"image": "app:1.2.3", "run": runID + "/" + runID, "p": "p", "r": "override",
				"commit": "abc123", "branch": "main", "plain": "${HOME} #x {y}"}, ""},
		{"a value is substituted once: a resolved #{...} stays data", "deploy",
			map[string]string{"v": "#{Build.HOSTILE}"}, map[string]string{"v": hostile}, ""},
		{"env keys of a build resolve", "build",
			map[string]string{"env.TAG": "#{Build.VERSION}", "buildspec": "buildspec.yml"},
			map[string]string{"env.TAG": "1.2.3", "buildspec": "buildspec.yml"}, ""},
		{"an unknown namespace fails the action, naming the reference", "deploy",
			map[string]string{"image": "#{Bild.VERSION}"}, nil, "unresolved variable reference #{Bild.VERSION}: no action declares namespace Bild"},
		{"a key not exported fails the action", "deploy",
			map[string]string{"image": "#{Build.NOPE}"}, nil, "#{Build.NOPE}: action A.build (namespace Build) did not export NOPE"},
		{"an unknown built-in key fails the action", "deploy",
			map[string]string{"x": "#{pipeline.id}"}, nil, "#{pipeline.id}: pipeline has no key id"},
		{"a reference in a buildspec is refused", "build",
			map[string]string{"buildspec": "version: 1\nphases:\n  build:\n    commands: [echo #{Build.VERSION}]\n"}, nil,
			"pass it through an env key instead"},
		{"a malformed reference fails the action", "deploy",
			map[string]string{"x": "#{VERSION}"}, nil, "malformed variable reference #{VERSION}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := append(given{}, aDone...)
			s := foldDef(t, nsDef(c.cfg, c.kind), g)
			s.Variables = map[string]string{"REGION": "override"}
			s.Trigger.Commit, s.Trigger.Ref = "abc123", "refs/heads/main"
			evs := decider.Decide(s, in0)
			task := evs[0].Payload.(events.ActionDispatched).Task
			if c.failed != "" {
				if len(evs) != 2 {
					t.Fatalf("want dispatched and failed, got %v", summary(evs))
				}
				f := evs[1].Payload.(events.ActionFailed)
				if !strings.Contains(f.Reason, c.failed) || f.Lease != lease("B", "use", 1) {
					t.Fatalf("reason %q, want it to contain %q", f.Reason, c.failed)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("got %v", summary(evs))
			}
			for k, v := range c.want {
				if task.Configuration[k] != v {
					t.Errorf("configuration %s = %q, want %q", k, task.Configuration[k], v)
				}
			}
		})
	}
}

func TestReferences(t *testing.T) {
	refs, err := decider.References("a #{Ns.K_1} b #{variables.x-y}")
	if err != nil || len(refs) != 2 || refs[0].Namespace != "Ns" || refs[0].Key != "K_1" || refs[1].Key != "x-y" {
		t.Fatalf("refs %+v err %v", refs, err)
	}
	for _, bad := range []string{"#{}", "#{Ns}", "#{.K}", "#{Ns.}", "#{Ns.K", "#{a b.K}"} {
		if _, err := decider.References(bad); err == nil {
			t.Errorf("References(%q) accepted", bad)
		}
	}
}
