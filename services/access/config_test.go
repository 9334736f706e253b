package access_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/devcert"
)

// exampleSpec is what deploy/nats/gantry.conf is generated for: the
// example deployment group's three hosts, as `gantry dev` runs them.
var exampleSpec = access.Spec{Agents: []access.Agent{
	{Group: "hello-dev", Host: "hello-dev-1"}, {Group: "hello-dev", Host: "hello-dev-2"}, {Group: "hello-dev", Host: "hello-dev-3"},
}}

const committedConfig = "../../deploy/nats/gantry.conf"

// TestCommittedConfigIsGenerated: deploy/nats/gantry.conf is what
// `gantry nats config --env-passwords --agent hello-dev/hello-dev-1 ...`
// writes, under a header naming that command, so it cannot drift from the
// permissions the code grants.
// GANTRY_UPDATE_DOCS=1 rewrites it.
func TestCommittedConfigIsGenerated(t *testing.T) {
	cfg, err := access.WithEnvPasswords(access.Defaults(), exampleSpec)
	if err != nil {
		t.Fatal(err)
	}
	text, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	header := "# The committed example (no secrets: every password comes from the environment):\n" +
		"#   gantry nats config --env-passwords --agent hello-dev/hello-dev-1 --agent hello-dev/hello-dev-2 \\\n" +
		"#     --agent hello-dev/hello-dev-3 --out deploy/nats/gantry.conf\n"
	want := header + text
	if os.Getenv("GANTRY_UPDATE_DOCS") != "" {
		if err := os.WriteFile(committedConfig, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(committedConfig)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run GANTRY_UPDATE_DOCS=1 go test -run TestCommittedConfigIsGenerated ./access/", committedConfig)
	}
	if strings.Contains(string(got), "$2a$") || strings.Contains(string(got), "0.0.0.0") {
		t.Fatal("the committed configuration holds a password hash or listens on every address")
	}
	// nats-server accepts it, with the passwords from the environment.
	for _, u := range cfg.Users {
		t.Setenv(u.PasswordEnv, "pw-"+u.Name)
	}
	// The same file names as devcert's, in a temporary directory.
	tlsDir := t.TempDir()
	if _, err := devcert.Create(tlsDir); err != nil {
		t.Fatal(err)
	}
	loadable := filepath.Join(t.TempDir(), "gantry.conf")
	if err := os.WriteFile(loadable, []byte(strings.ReplaceAll(string(got), "/etc/gantry/tls", tlsDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(loadable)
	if err != nil {
		t.Fatalf("nats-server refuses %s: %v", committedConfig, err)
	}
	if opts.Host != "127.0.0.1" || opts.TLSConfig == nil {
		t.Errorf("host %q, TLS %v", opts.Host, opts.TLSConfig != nil)
	}
	if len(opts.Users) != len(cfg.Users) || opts.Users[0].Password != "pw-admin" {
		t.Errorf("%d users, want %d, passwords from the environment", len(opts.Users), len(cfg.Users))
	}
}

// TestRenderedConfigRefusesMissingTLS: no configuration without TLS, or
// with a user without a password.
func TestRenderedConfigRefusesMissingTLS(t *testing.T) {
	c := access.Defaults()
	c.CertFile = ""
	if _, err := c.Render(); err == nil {
		t.Fatal("rendered a configuration without TLS")
	}
	c = access.Defaults()
	c.Users = []access.UserEntry{{User: access.User{Name: "x"}}}
	if _, err := c.Render(); err == nil {
		t.Fatal("rendered a user without a password")
	}
}

// TestClusterConfig: a cluster member's configuration names its cluster,
// route listener and peers, with TLS verified both ways on routes, and
// nats-server accepts it; routes without a cluster name are refused.
func TestClusterConfig(t *testing.T) {
	tlsDir := t.TempDir()
	files, err := devcert.Create(tlsDir, "nats1", "nats2", "nats3")
	if err != nil {
		t.Fatal(err)
	}
	c := access.Defaults()
	c.StoreDir, c.CertFile, c.KeyFile, c.CAFile = t.TempDir(), files.ServerCert, files.ServerKey, files.CA
	c.Listen, c.Monitor = "127.0.0.1:-1", ""
	c.ClusterName, c.ClusterListen = "gantry", "127.0.0.1:6222"
	c.Routes = []string{"nats-route://nats1:6222", "nats-route://nats2:6222", "nats-route://nats3:6222"}
	c, err = access.WithEnvPasswords(c, exampleSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range c.Users {
		t.Setenv(u.PasswordEnv, "pw-"+u.Name)
	}
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses a cluster config: %v\n%s", err, text)
	}
	if opts.Cluster.Name != "gantry" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
		t.Errorf("cluster %q port %d, %d routes", opts.Cluster.Name, opts.Cluster.Port, len(opts.Routes))
	}
	if opts.Cluster.TLSConfig == nil || opts.Cluster.TLSConfig.ClientCAs == nil {
		t.Error("routes without TLS verification")
	}

	bad := access.Defaults()
	bad.Routes = []string{"nats-route://nats1:6222"}
	if _, err := bad.Render(); err == nil || !strings.Contains(err.Error(), "cluster name") {
		t.Errorf("routes without a cluster name: %v", err)
	}
}
