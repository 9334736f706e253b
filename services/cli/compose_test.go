package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/chatops"
)

// TestComposeFileIsConsistent checks docker-compose.yml against the code
// without running it (make compose-up && make compose-demo do, in minutes,
// where a Docker engine and compose exist): every service runs a
// gantry command that exists with flags it has, as a NATS user that `gantry
// nats config` makes a password for, handed to it as a secret from that
// password's file; every published port is bound to 127.0.0.1; conductors
// and build workers run more than once; and the files it mounts from the
// repository load.
func TestComposeFileIsConsistent(t *testing.T) {
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Secrets     []string          `yaml:"secrets"`
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
			Deploy      struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	// Merged anchors (<<: *service) are overridden by explicit keys.
	if err := yaml.UnmarshalWithOptions(raw, &doc, yaml.AllowDuplicateMapKey()); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	spec := access.Spec{Agents: []access.Agent{{Group: "hello-dev", Host: "hello-dev-1"}, {Group: "hello-dev", Host: "hello-dev-2"},
		{Group: "hello-dev", Host: "hello-dev-3"}}}
	users, err := access.Users(spec)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, u := range users {
		known[u.Name] = true
	}
	cmd := newRoot(&globals{})
	ran := map[string]bool{}
	for name, s := range doc.Services {
		if strings.HasPrefix(name, "nats") {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("service %s: no command", name)
			continue
		}
		sub, rest, err := cmd.Find(s.Command)
		if err != nil || sub == cmd {
			t.Errorf("service %s: %q is no gantry command: %v", name, s.Command[0], err)
			continue
		}
		if err := sub.ParseFlags(rest); err != nil {
			t.Errorf("service %s: gantry %s %v: %v", name, sub.Name(), rest, err)
		}
		ran[sub.Name()] = true
		user := s.Environment["NATS_USER"]
		if name == "provision" {
			continue // runs as admin with the admin secret
		}
		if !known[user] {
			t.Errorf("service %s: NATS user %q is not one gantry nats config makes", name, user)
		}
		if !slices.Contains(s.Secrets, user) || doc.Secrets[user].File != "./.compose/passwords/"+user {
			t.Errorf("service %s: user %s's password is not its secret from .compose/passwords/%s", name, user, user)
		}
		if s.Environment["NATS_PASSWORD_FILE"] != "/run/secrets/"+user {
			t.Errorf("service %s: NATS_PASSWORD_FILE %q, want /run/secrets/%s", name, s.Environment["NATS_PASSWORD_FILE"], user)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s: port %s is published beyond 127.0.0.1", name, p)
			}
		}
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, "./deploy/") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	for _, want := range []string{"conductor", "projector", "triggers", "source", "build", "test", "deploy-service",
		"rollback-service", "deploy-worker", "retention", "notify", "gateway", "agent"} {
		if !ran[want] {
			t.Errorf("no service runs gantry %s", want)
		}
	}
	for _, many := range []string{"conductor", "build"} {
		if doc.Services[many].Deploy.Replicas < 2 {
			t.Errorf("service %s runs %d copies, want more than one", many, doc.Services[many].Deploy.Replicas)
		}
	}
	if _, err := chatops.LoadRules(filepath.Join(root, "deploy", "docker", "notify.yaml")); err != nil {
		t.Errorf("deploy/docker/notify.yaml: %v", err)
	}
}
