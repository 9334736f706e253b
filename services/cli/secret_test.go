package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/secrets"
)

// gantryCLI runs the CLI in-process against url with stdin, returning
// stdout and the error.
func gantryCLI(t *testing.T, url string, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb}
	root := newRoot(g)
	root.SetArgs(append([]string{"--nats", url, "--creds", ""}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	if stdin != nil {
		root.SetIn(stdin)
	}
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestSecretSetListRm(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.ClientURL()
	b := natstest.Bus(t, url)
	store, err := secrets.OpenStore(context.Background(), b.JetStream())
	if err != nil {
		t.Fatal(err)
	}

	// From standard input: one trailing newline is dropped.
	out, err := gantryCLI(t, url, strings.NewReader("npm_S3cret\n"), "secret", "set", "npm-token")
	if err != nil || !strings.Contains(out, "secret npm-token stored (10 bytes)") {
		t.Fatalf("set: %q %v", out, err)
	}
	if v, _ := store.Get(context.Background(), "npm-token"); string(v) != "npm_S3cret" {
		t.Fatalf("stored %q", v)
	}
	// From a file: bytes as they are.
	f := filepath.Join(t.TempDir(), "key")
	os.WriteFile(f, []byte("-----BEGIN KEY-----\nabc\n"), 0o600)
	if _, err := gantryCLI(t, url, nil, "secret", "set", "deploy-key", "--from-file", f); err != nil {
		t.Fatal(err)
	}
	if v, _ := store.Get(context.Background(), "deploy-key"); string(v) != "-----BEGIN KEY-----\nabc\n" {
		t.Fatalf("stored %q", v)
	}

	// Refused: a value as an argument, a short value, a bad name, nothing.
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"secret", "set", "x", "hunter2-value"}, "accepts 1 arg"},
		{"123\n", []string{"secret", "set", "pin"}, "too short to be masked"},
		{"long-enough", []string{"secret", "set", "bad.name"}, "invalid secret name"},
		{"", []string{"secret", "set", "empty"}, "no value on standard input"},
		{"", []string{"secret", "rm", "never-set"}, "secret not found"},
	} {
		_, err := gantryCLI(t, url, strings.NewReader(tc.stdin), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}

	out, err = gantryCLI(t, url, nil, "secret", "list")
	if err != nil || !strings.Contains(out, "NAME") || !strings.Contains(out, "deploy-key") || !strings.Contains(out, "npm-token") {
		t.Fatalf("list: %q %v", out, err)
	}
	if strings.Contains(out, "S3cret") || strings.Contains(out, "BEGIN") {
		t.Fatalf("list shows a value: %q", out)
	}
	out, err = gantryCLI(t, url, nil, "secret", "list", "-o", "json")
	var infos []secrets.Info
	if err != nil || json.Unmarshal([]byte(out), &infos) != nil || len(infos) != 2 || infos[1].Name != "npm-token" || infos[1].Updated.IsZero() {
		t.Fatalf("list -o json: %q %v", out, err)
	}

	if out, err := gantryCLI(t, url, nil, "secret", "rm", "npm-token"); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("rm: %q %v", out, err)
	}
	out, _ = gantryCLI(t, url, nil, "secret", "list", "-o", "json")
	if strings.Contains(out, "npm-token") {
		t.Fatalf("removed secret still listed: %s", out)
	}
	if _, err := store.Get(context.Background(), "npm-token"); err == nil {
		t.Fatal("removed secret still readable")
	}
}

func TestSecretHelpTeaches(t *testing.T) {
	out, err := gantryCLI(t, "nats://127.0.0.1:1", nil, "secret", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"set", "list", "rm", "NPM_TOKEN: npm-token", "file:/path", "***", "never from an argument"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}
