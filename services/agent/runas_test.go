package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/appspec"
)

func TestResolveRunAs(t *testing.T) {
	errBroken := errors.New("nsswitch unavailable")
	users := map[string]account{
		"root":  {UID: 0, GID: 0, Groups: []uint32{0}, Home: "/root"},
		"agent": {UID: 1000, GID: 1000, Groups: []uint32{1000}, Home: "/home/agent"},
		"app":   {UID: 1001, GID: 1002, Groups: []uint32{1002, 27}, Home: "/srv/app"},
	}
	lookup := func(name string) (account, error) {
		if name == "broken" {
			return account{}, errBroken
		}
		if a, ok := users[name]; ok {
			return a, nil
		}
		return account{}, errNoSuchUser
	}
	for _, c := range []struct {
		name     string
		runas    string
		agentUID int
		want     *hookUser
		wantErr  error
		wantMsg  string
	}{
		{name: "no runas", runas: "", agentUID: 1000},
		{name: "no runas as root", runas: "", agentUID: 0},
		{name: "the agent's own user", runas: "agent", agentUID: 1000},
		{name: "root as root", runas: "root", agentUID: 0},
		{name: "another user as root", runas: "app", agentUID: 0,
			want: &hookUser{Name: "app", Home: "/srv/app", Cred: &syscall.Credential{Uid: 1001, Gid: 1002, Groups: []uint32{1002, 27}}}},
		{name: "another user as non-root", runas: "app", agentUID: 1000, wantErr: errNotRoot,
			wantMsg: "runas app: the agent runs as uid 1000; run the agent as root (see deploy/systemd/gantry-agent.service) to run hooks as other users"},
		{name: "root as non-root", runas: "root", agentUID: 1000, wantErr: errNotRoot,
			wantMsg: "runas root: the agent runs as uid 1000; run the agent as root (see deploy/systemd/gantry-agent.service) to run hooks as other users"},
		{name: "unknown user as root", runas: "ghost", agentUID: 0, wantErr: errNoSuchUser,
			wantMsg: "runas ghost: no such user on host web-1; create it or remove runas from appspec.yml"},
		{name: "unknown user as non-root", runas: "ghost", agentUID: 1000, wantErr: errNoSuchUser,
			wantMsg: "runas ghost: no such user on host web-1; create it or remove runas from appspec.yml"},
		{name: "lookup failure", runas: "broken", agentUID: 0, wantErr: errBroken,
			wantMsg: "runas broken: nsswitch unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := resolveRunAs(c.runas, "web-1", c.agentUID, lookup)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) || err.Error() != c.wantMsg {
					t.Fatalf("error %v, want %q (wrapping %v)", err, c.wantMsg, c.wantErr)
				}
				if got != nil {
					t.Errorf("user %+v alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestResolveRunAsDoesNotShareGroups(t *testing.T) {
	groups := []uint32{5, 6}
	u, err := resolveRunAs("app", "h", 0, func(string) (account, error) {
		return account{UID: 7, GID: 5, Groups: groups}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	groups[0] = 99
	if u.Cred.Groups[0] != 5 {
		t.Errorf("credential groups %v follow the lookup's slice", u.Cred.Groups)
	}
}

func TestHookUserEnviron(t *testing.T) {
	u := &hookUser{Name: "app", Home: "/srv/app"}
	got := u.environ([]string{"PATH=/usr/bin", "HOME=/root", "LIFECYCLE_EVENT=AfterInstall", "USER=root", "HOMEDIR=kept"})
	want := []string{"PATH=/usr/bin", "LIFECYCLE_EVENT=AfterInstall", "HOMEDIR=kept", "HOME=/srv/app", "USER=app", "LOGNAME=app"}
	if !slices.Equal(got, want) {
		t.Errorf("environ\n got %q\nwant %q", got, want)
	}
}

func TestLookupAccount(t *testing.T) {
	if _, err := lookupAccount("no-such-user-xyz"); !errors.Is(err, errNoSuchUser) {
		t.Errorf("unknown user: %v, want errNoSuchUser", err)
	}
	root, err := lookupAccount("root")
	if err != nil {
		t.Fatal(err)
	}
	if root.UID != 0 || root.GID != 0 || !slices.Contains(root.Groups, 0) {
		t.Errorf("root: %+v", root)
	}
}

func TestRunScriptAsNobody(t *testing.T) {
	nobody := needNobody(t)
	dir := sharedTempDir(t)
	script := filepath.Join(dir, "who.sh")
	body := "#!/bin/sh\n" +
		"echo \"uid=$(id -u) gid=$(id -g) groups=$(id -G)\"\n" +
		"echo \"home=$HOME user=$USER logname=$LOGNAME keep=$KEEP\"\n" +
		"echo \"pid=$$ pgid=$(cut -d' ' -f5 /proc/$$/stat)\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	as, err := resolveRunAs("nobody", "h1", os.Geteuid(), lookupAccount)
	if err != nil || as == nil {
		t.Fatalf("resolveRunAs(nobody) as root: %+v %v", as, err)
	}
	// Output goes to a file the agent opened, as in hooks: the child
	// inherits it, so nobody needs no write permission on it.
	logPath := filepath.Join(dir, "out.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=/root", "USER=root", "LOGNAME=root", "KEEP=kept"}
	code, err := runScript(context.Background(), script, dir, env, as, 10*time.Second, out)
	out.Close()
	b, _ := os.ReadFile(logPath)
	if code != 0 || err != nil {
		t.Fatalf("runScript: %d %v; output:\n%s", code, err, b)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", b)
	}
	ids := strings.Fields(lines[0])
	if ids[0] != "uid="+strconv.Itoa(int(nobody.UID)) || ids[1] != "gid="+strconv.Itoa(int(nobody.GID)) {
		t.Errorf("ran as %q, want uid %d gid %d", lines[0], nobody.UID, nobody.GID)
	}
	// The agent's (root's) supplementary groups must be gone.
	var gotGroups []uint32
	for i, f := range ids[2:] {
		n, err := strconv.ParseUint(strings.TrimPrefix(f, "groups="), 10, 32)
		if err != nil {
			t.Fatalf("group %d of %q: %v", i, lines[0], err)
		}
		gotGroups = append(gotGroups, uint32(n))
	}
	wantGroups := append(slices.Clone(nobody.Groups), nobody.GID)
	slices.Sort(gotGroups)
	slices.Sort(wantGroups)
	if !slices.Equal(slices.Compact(gotGroups), slices.Compact(wantGroups)) {
		t.Errorf("groups %v, want %v", gotGroups, wantGroups)
	}
	if want := "home=" + nobody.Home + " user=nobody logname=nobody keep=kept"; lines[1] != want {
		t.Errorf("environment %q, want %q", lines[1], want)
	}
	var pid, pgid int
	for _, f := range strings.Fields(lines[2]) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "pid":
			pid = n
		case "pgid":
			pgid = n
		}
	}
	if pid == 0 || pid != pgid {
		t.Errorf("%q: the script must lead its own process group", lines[2])
	}
}

func TestHooksRunAsNobody(t *testing.T) {
	nobody := needNobody(t)
	r, bundle := hookRun(t)
	got := afterInstall(t, r, bundle, "who.sh", "#!/bin/sh\necho \"uid=$(id -u) home=$HOME\"\n", "      runas: nobody\n")
	if len(got) != 2 || got[0].Status != events.StepStarted || got[1].Status != events.StepSucceeded {
		t.Fatalf("lifecycle %+v, want started then succeeded", got)
	}
	want := "== AfterInstall: who.sh\n== running as nobody (uid " + strconv.Itoa(int(nobody.UID)) + ")\n" +
		"uid=" + strconv.Itoa(int(nobody.UID)) + " home=" + nobody.Home + "\n"
	if got[1].LogTail != want {
		t.Errorf("log tail %q, want %q", got[1].LogTail, want)
	}
}

func TestHooksRunAsUnknownUserFails(t *testing.T) {
	r, bundle := hookRun(t)
	ran := filepath.Join(bundle, "ran")
	if err := os.WriteFile(filepath.Join(bundle, "touch.sh"), []byte("touch "+ran+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := parseAppspec(t, "hooks:\n  BeforeInstall:\n    - location: touch.sh\n      runas: no-such-user-xyz\n")
	err := r.hooks(context.Background(), appspec.BeforeInstall, spec, bundle)
	reason := "runas no-such-user-xyz: no such user on host h1; create it or remove runas from appspec.yml"
	if !errors.Is(err, errNoSuchUser) || err.Error() != "BeforeInstall: touch.sh: "+reason {
		t.Fatalf("hooks: %v, want the host to fail with %q", err, reason)
	}
	if _, err := os.Stat(ran); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the hook ran anyway (%v)", err)
	}
	got := lifecycle(t, r)
	if len(got) != 2 || got[1].Status != events.StepFailed || got[1].Event != appspec.BeforeInstall {
		t.Fatalf("lifecycle %+v, want started then failed", got)
	}
	if want := "== BeforeInstall: touch.sh\ntouch.sh: " + reason + "\n"; got[1].LogTail != want {
		t.Errorf("log tail %q, want %q", got[1].LogTail, want)
	}
}

// afterInstall writes script into bundle, runs it as r's only AfterInstall
// hook (hookYAML adds fields such as runas to the hook's entry) and returns
// the lifecycle events r recorded.
func afterInstall(t *testing.T, r *deployRun, bundle, script, body, hookYAML string) []events.DeployHostLifecycle {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bundle, script), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := parseAppspec(t, "hooks:\n  AfterInstall:\n    - location: "+script+"\n"+hookYAML)
	if err := r.hooks(context.Background(), appspec.AfterInstall, spec, bundle); err != nil {
		t.Fatal(err)
	}
	return lifecycle(t, r)
}

func parseAppspec(t *testing.T, hooks string) *appspec.Spec {
	t.Helper()
	spec, err := appspec.Parse("appspec.yml", []byte("version: 0.0\nos: linux\n"+hooks))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// needNobody skips unless the test can switch to the user nobody.
func needNobody(t *testing.T) account {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running hooks as another user needs root; run the tests as root to cover runas")
	}
	a, err := lookupAccount("nobody")
	if errors.Is(err, errNoSuchUser) {
		t.Skip("this host has no user nobody")
	}
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// sharedTempDir is a temporary directory other users can enter: a hook run
// as another user must reach its script, and t.TempDir's parent is 0700.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hookRun is a deployRun of host h1 on a test's own JetStream server, and
// its bundle directory: enough to run one event's hooks and read back
// what the agent recorded.
func hookRun(t *testing.T) (*deployRun, string) {
	t.Helper()
	b := natstest.Bus(t, natstest.Start(t).ClientURL())
	deploys, err := b.Deploys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	root := sharedTempDir(t)
	bundle := filepath.Join(root, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	a := &Agent{o: Options{Bus: b, Group: "web", Name: "h1", Root: root, Keep: 5}}
	cmd := Command{Deployment: "d-1", Group: "web", Host: "h1", Application: "app"}
	return &deployRun{a: a, cmd: cmd, deploys: deploys, log: zerolog.Nop()}, bundle
}

// lifecycle returns the host.lifecycle events r recorded, in order.
func lifecycle(t *testing.T, r *deployRun) []events.DeployHostLifecycle {
	t.Helper()
	evs, err := r.deploys.Read(context.Background(), r.cmd.Group, r.cmd.Deployment, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.DeployHostLifecycle
	for _, e := range evs {
		if p, ok := e.Payload.(events.DeployHostLifecycle); ok {
			out = append(out, p)
		}
	}
	return out
}

// TestHooksGetTheRevisionsVariables: a hook sees the revision's variables,
// and none of them can replace PATH or the names CodeDeploy sets.
func TestHooksGetTheRevisionsVariables(t *testing.T) {
	r, bundle := hookRun(t)
	r.cmd.Variables = map[string]string{"VERSION": "1.2.3", "GANTRY_RUN_ID": "01a2", "PATH": "/evil", "DEPLOYMENT_ID": "forged"}
	got := afterInstall(t, r, bundle, "env.sh",
		"#!/bin/sh\necho \"version=$VERSION run=$GANTRY_RUN_ID id=$DEPLOYMENT_ID event=$LIFECYCLE_EVENT\"\ncase \"$PATH\" in /evil) echo path replaced ;; esac\n", "")
	want := "== AfterInstall: env.sh\nversion=1.2.3 run=01a2 id=d-1 event=AfterInstall\n"
	if len(got) != 2 || got[1].LogTail != want {
		t.Fatalf("lifecycle %+v, want the log tail %q", got, want)
	}
}

func TestSetsVariable(t *testing.T) {
	r, bundle := hookRun(t)
	env := r.env(appspec.AfterInstall, bundle)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !SetsVariable(k) {
			t.Errorf("the agent sets %s but SetsVariable says it does not", k)
		}
	}
	for _, k := range []string{"VERSION", "GANTRY_RUN_ID", "GANTRY_PIPELINE", "APP_VERSION"} {
		if SetsVariable(k) {
			t.Errorf("SetsVariable(%s) = true; a revision variable of that name must reach hooks", k)
		}
	}
}
