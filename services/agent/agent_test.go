package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/services/appspec"
	"github.com/gantry-ci/gantry/services/internal/proctest"
)

func TestRunScriptTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "hang.sh")
	// The script leaves a child in its process group, then hangs.
	body := "#!/bin/sh\nsleep 60 &\necho $! > " + filepath.Join(dir, "child.pid") + "\nsleep 60\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	start := time.Now()
	code, err := runScript(context.Background(), script, dir, nil, nil, 300*time.Millisecond, out)
	if !errors.Is(err, errTimeout) || code != -1 {
		t.Fatalf("runScript: %d %v, want a timeout", code, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	time.Sleep(100 * time.Millisecond)
	if proctest.Alive(pid) {
		t.Errorf("the hook's child %d survived the timeout", pid)
	}
}

func TestRunScriptExitCodeAndShell(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "fail.sh")
	// Not executable: run with /bin/sh.
	if err := os.WriteFile(script, []byte("echo \"event $LIFECYCLE_EVENT\"\nexit 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "out.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	code, err := runScript(context.Background(), script, dir, []string{"LIFECYCLE_EVENT=AfterInstall"}, nil, 5*time.Second, out)
	out.Close()
	if code != 7 || err == nil {
		t.Fatalf("runScript: %d %v, want exit 7", code, err)
	}
	if got := tail(logPath, 100); got != "event AfterInstall\n" {
		t.Errorf("output %q", got)
	}
}

func TestInstallFileExistsBehavior(t *testing.T) {
	bundle := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bundle, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "www", "index.html"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		behavior appspec.FileExistsBehavior
		previous bool
		wantErr  bool
		want     string
	}{
		{appspec.Disallow, false, true, "old"},
		{appspec.Disallow, true, false, "new"},
		{appspec.Overwrite, false, false, "new"},
		{appspec.Retain, false, false, "old"},
	} {
		root := t.TempDir()
		dst := filepath.Join(root, "srv", "app", "index.html")
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		spec := &appspec.Spec{Files: []appspec.File{{Source: "/www", Destination: "/srv/app"}}, FileExistsBehavior: c.behavior}
		var log strings.Builder
		_, err := install(spec, bundle, root, map[string]bool{dst: c.previous}, &log)
		if (err != nil) != c.wantErr {
			t.Errorf("%s previous=%v: error %v", c.behavior, c.previous, err)
		}
		if b, _ := os.ReadFile(dst); string(b) != c.want {
			t.Errorf("%s previous=%v: file holds %q, want %q", c.behavior, c.previous, b, c.want)
		}
	}
}

func TestPruneKeepsFiveRevisions(t *testing.T) {
	root := t.TempDir()
	a := &Agent{o: Options{Root: root, Keep: 5}}
	r := &deployRun{a: a}
	base := filepath.Join(root, "revisions")
	now := time.Now()
	for i := range 8 {
		d := filepath.Join(base, "d"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		mt := now.Add(time.Duration(i) * time.Minute)
		if err := os.Chtimes(d, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	r.prune("d7")
	ents, _ := os.ReadDir(base)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "d3,d4,d5,d6,d7" {
		t.Errorf("kept %v", names)
	}
}

func TestHealthURL(t *testing.T) {
	u, err := HealthURL("http://127.0.0.1:{{.Labels.port}}/healthz?h={{.Host}}", HealthTarget{Host: "h1", Labels: map[string]string{"port": "8080"}})
	if err != nil || u != "http://127.0.0.1:8080/healthz?h=h1" {
		t.Errorf("%q %v", u, err)
	}
	if _, err := HealthURL("http://{{.Labels.nope}}/", HealthTarget{Labels: map[string]string{}}); err == nil {
		t.Error("a missing label must be an error")
	}
}

// TestRunScriptGetsOnlyItsEnvironment: a hook sees the environment it is
// given and nothing of the agent's, even when given none.
func TestRunScriptGetsOnlyItsEnvironment(t *testing.T) {
	t.Setenv("NATS_CREDS", "/etc/agent/nats.creds")
	dir := t.TempDir()
	script := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(script, []byte("env\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, env := range [][]string{nil, {"A=1"}} {
		logPath := filepath.Join(dir, "out.log")
		out, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		code, err := runScript(context.Background(), script, dir, env, nil, 5*time.Second, out)
		out.Close()
		if code != 0 || err != nil {
			t.Fatalf("runScript: %d %v", code, err)
		}
		if got := tail(logPath, 10000); strings.Contains(got, "NATS_CREDS") {
			t.Errorf("env %v: the hook saw the agent's NATS_CREDS:\n%s", env, got)
		}
	}
}
