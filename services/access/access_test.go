package access_test

import (
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/services/access"
)

func users(t *testing.T) map[string]access.Permissions {
	t.Helper()
	us, err := access.Users(access.Spec{Agents: []access.Agent{{Group: "web", Host: "h1"}}, Kinds: []string{"lint"}})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]access.Permissions{}
	for _, u := range us {
		m[u.Name] = u.Permissions
	}
	return m
}

// TestPublishPermissions: what each role may and may not publish, by the
// same wildcard rules as the server.
func TestPublishPermissions(t *testing.T) {
	perms := users(t)
	agent := access.AgentUser("web", "h1")
	for _, c := range []struct {
		user, subject string
		want          bool
	}{
		{access.Build, "gantry.events.hello.r1", true},
		{access.Build, "gantry.logs.r1.Build.compile", true},
		{access.Build, "$O.artifacts.C.abc", true},
		{access.Build, "$JS.API.CONSUMER.MSG.NEXT.GANTRY_TASKS.worker-build-default", true},
		{access.Build, "$JS.API.CONSUMER.CREATE.GANTRY_TASKS.worker-build-default.gantry.tasks.build.default", true},
		{access.Build, "$JS.API.DIRECT.GET.KV_gantry_secrets.$KV.gantry_secrets.token", true},
		{access.Build, "gantry.agents.web.h1", false},
		{access.Build, "gantry.alarms.web", false},
		{access.Build, "gantry.deploys.web.d1", false},
		{access.Build, "gantry.tasks.build.default", false},
		{access.Build, "$JS.API.CONSUMER.MSG.NEXT.GANTRY_TASKS.worker-test-default", false},
		{access.Build, "$JS.API.CONSUMER.CREATE.GANTRY_TASKS.worker-build-default.gantry.tasks.test.default", false},
		{access.Build, "$JS.API.CONSUMER.CREATE.GANTRY_TASKS.any.gantry.tasks.>", false},
		{access.Build, "$KV.pipelines.hello", false},
		{access.Build, "$KV.gantry_secrets.token", false},
		{access.Build, "$JS.API.DIRECT.GET.KV_gantry_keys.$KV.gantry_keys.lease", false},
		{access.Build, "$JS.API.STREAM.MSG.GET.KV_gantry_keys", false},
		{access.Build, "$JS.API.STREAM.PURGE.OBJ_artifacts", false},
		{access.Build, "$JS.API.STREAM.CREATE.GANTRY_EVENTS", false},
		{access.Test, "$JS.API.CONSUMER.MSG.NEXT.GANTRY_TASKS.worker-build-default", false},
		{"lint", "$JS.API.CONSUMER.MSG.NEXT.GANTRY_TASKS.worker-lint-default", true},
		{"lint", "$JS.API.DIRECT.GET.KV_gantry_secrets.$KV.gantry_secrets.token", false},
		{access.Conductor, "$JS.API.DIRECT.GET.KV_gantry_keys.$KV.gantry_keys.lease", true},
		{access.Conductor, "gantry.tasks.build.default", true},
		{access.Conductor, "gantry.agents.web.h1", false},
		{access.Projector, "gantry.events.hello.r1", false},
		{access.Projector, "$KV.runs.r1", true},
		{access.Triggers, "gantry.events.hello.r1", true},
		{access.Triggers, "gantry.tasks.build.default", false},
		{access.DeployService, "gantry.agents.web.h1", true},
		{access.DeployService, "gantry.events.hello.r1", false},
		{access.RollbackService, "gantry.agents.web.h1", false},
		{access.DeployWorker, "gantry.deploys.web.d1", true},
		{access.DeployWorker, "gantry.agents.web.h1", false},
		{agent, "gantry.deploys.web.d1", true},
		{agent, "gantry.deploys.shop.d1", false},
		{agent, "gantry.events.hello.r1", false},
		{agent, "$KV.agents.web.h1", true},
		{agent, "$KV.agents.web.h2", false},
		{agent, "$JS.API.CONSUMER.MSG.NEXT.GANTRY_AGENTS.agent-web-h1", true},
		{agent, "$JS.API.CONSUMER.MSG.NEXT.GANTRY_AGENTS.agent-web-h2", false},
		{access.Source, "gantry.triggers.hello", true},
		{access.Source, "gantry.triggers.hello.decisions", true},
		{access.Source, "$KV.gantry_poll.hello", true},
		{access.Source, "$KV.pipelines.hello", false},
		{access.Build, "gantry.triggers.hello", false},
		{access.Operator, "gantry.triggers.hello", true},
		{access.Operator, "$KV.pipelines.hello", true},
		{access.Operator, "gantry.agents.web.h1", false},
		{access.Operator, "gantry.tasks.build.default", false},
		{access.Operator, "$JS.API.DIRECT.GET.KV_gantry_keys.$KV.gantry_keys.lease", false},
		{access.Operator, "$KV.gantry_secrets.token", false},
		{access.Admin, "$KV.gantry_secrets.token", true},
		{access.Gateway, "gantry.triggers.hello", true},
		{access.Gateway, "gantry.cmd.approve", true},
		{access.Gateway, "$KV.pipelines.hello", true},
		{access.Gateway, "gantry.deploys.web.d1", true},
		{access.Gateway, "$KV.deploygroups.web", true},
		// It writes the two definition buckets its PUT routes apply, no other.
		{access.Gateway, "$KV.agents.web.h1", false},
		{access.Gateway, "$KV.runs.r1", false},
		{access.Gateway, "$KV.deployments.d1", false},
		{access.Gateway, "$KV.gantry_keys.lease", false},
		{access.Gateway, "$KV.gantry_poll.hello", false},
		{access.Gateway, "$JS.API.STREAM.PURGE.KV_deploygroups", false},
		{access.Gateway, "$JS.API.STREAM.CREATE.KV_deploygroups", false},
		{access.Gateway, "gantry.alarms.web", false},
		{access.Gateway, "gantry.events.hello.r1", false},
		{access.Gateway, "gantry.tasks.build.default", false},
		{access.Gateway, "gantry.agents.web.h1", false},
		{access.Gateway, "$KV.gantry_secrets.token", false},
		{access.Gateway, "$JS.API.DIRECT.GET.KV_gantry_secrets.$KV.gantry_secrets.token", false},
	} {
		p, ok := perms[c.user]
		if !ok {
			t.Fatalf("no user %s", c.user)
		}
		if got := access.Allows(p.Publish, c.subject); got != c.want {
			t.Errorf("%s publish %s: %v, want %v", c.user, c.subject, got, c.want)
		}
	}
}

// TestSubscribeOnlyOwnInbox: every user but admin subscribes to its own
// inbox and nothing else, so no one reads another's replies or, by a core
// subscription, the tasks and commands flowing into the streams.
// Every user subscribes to its own inbox and, besides, only to what its
// job listens to: the conductor to the command verbs it serves, workers to
// run logs (for an abandon of their task).
func TestSubscribeOnlyOwnInbox(t *testing.T) {
	extra := map[string][]string{
		access.Conductor: {"gantry.cmd.approve", "gantry.cmd.reject", "gantry.cmd.retry", "gantry.cmd.stage-disable",
			"gantry.cmd.stage-enable", "gantry.cmd.stage-rollback", "gantry.cmd.stop"},
		access.Source: {"gantry.events.>"}, access.Build: {"gantry.events.>"},
		access.Test: {"gantry.events.>"}, access.DeployWorker: {"gantry.events.>"}, "lint": {"gantry.events.>"},
	}
	for name, p := range users(t) {
		if name == access.Admin {
			continue
		}
		want := append([]string{access.Inbox(name) + ".>"}, extra[name]...)
		slices.Sort(want)
		got := slices.Sorted(slices.Values(p.Subscribe))
		if !slices.Equal(got, want) {
			t.Errorf("%s subscribes to %v, want %v", name, p.Subscribe, want)
		}
		if p.Responses != (name == access.Conductor) {
			t.Errorf("%s: allow_responses %v", name, p.Responses)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	for _, s := range []access.Spec{
		{Pools: []string{"a.b"}},
		{Kinds: []string{"build"}},
		{Kinds: []string{"agent-x"}},
		{Agents: []access.Agent{{Group: "web", Host: "h>"}}},
	} {
		if _, err := access.Users(s); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

func TestAllows(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		want             bool
	}{
		{"a.*", "a.b", true}, {"a.*", "a.b.c", false}, {"a.>", "a.b.c", true}, {"a.>", "a", false},
		{"a.b", "a.b", true}, {"a.b", "a.c", false}, {"*.b", "a.b", true},
	} {
		if got := access.Allows([]string{c.pattern}, c.subject); got != c.want {
			t.Errorf("%s ~ %s: %v", c.pattern, c.subject, got)
		}
	}
}
