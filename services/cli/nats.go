package cli

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/devcert"
)

// natsCmd groups what an operator needs to run Gantry's own NATS server.
func natsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "nats",
		Short: "Run Gantry's NATS server: its configuration with one user per role, and provisioning",
	}
	c.AddCommand(natsConfigCmd(g), natsProvisionCmd(g))
	return c
}

func natsConfigCmd(g *globals) *cobra.Command {
	cfg := access.Defaults()
	var spec access.Spec
	var agents []string
	var out string
	var envPasswords bool
	c := &cobra.Command{
		Use:   "config",
		Short: "Write a nats-server configuration: TLS required, one user per role with the permissions of its job only",
		Long: `Write a nats-server configuration for Gantry: the GANTRY account with
JetStream, TLS required for every client, and one user per role (admin,
operator, conductor, projector, triggers, source, build, test,
deploy-service, rollback-service, deploy-worker, one per custom worker
--kind and one per --agent host) whose publish and subscribe permissions
are those of its job only (see docs/operations.md).

By default it makes a random password for every user and writes
  OUT/nats-server.conf      the configuration, with bcrypt hashes only
  OUT/passwords/USER        each user's password (mode 0600)
Hand each service its user and password (--nats-user, NATS_PASSWORD).

With --env-passwords the configuration holds no secret at all: nats-server
reads each password from GANTRY_NATS_PASSWORD_<USER> when it starts. It is
written to --out (a file) or stdout; deploy/nats/gantry.conf is one.`,
		Example: `  gantry nats config --out /etc/gantry/nats --agent web/web-1 --agent web/web-2
  gantry dev certs --dir /etc/gantry/tls --host nats.internal   # or your own CA`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, a := range agents {
				group, host, ok := strings.Cut(a, "/")
				if !ok {
					return fmt.Errorf("--agent %q: want GROUP/HOST", a)
				}
				spec.Agents = append(spec.Agents, access.Agent{Group: group, Host: host})
			}
			if envPasswords {
				c, err := access.WithEnvPasswords(cfg, spec)
				if err != nil {
					return err
				}
				text, err := c.Render()
				if err != nil {
					return err
				}
				if out == "" {
					_, err = fmt.Fprint(g.stdout, text)
					return err
				}
				return os.WriteFile(out, []byte(text), 0o644)
			}
			if out == "" {
				return errors.New("--out DIR is required (or --env-passwords)")
			}
			return writeNATSConfig(g, cfg, spec, out)
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "", "directory to write into (with --env-passwords: a file; default stdout)")
	f.BoolVar(&envPasswords, "env-passwords", false, "read passwords from GANTRY_NATS_PASSWORD_<USER> variables: a configuration without secrets")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "client listener host:port (bind beyond loopback on purpose)")
	f.StringVar(&cfg.Monitor, "monitor", cfg.Monitor, "HTTP monitoring host:port (empty for none)")
	f.StringVar(&cfg.StoreDir, "store-dir", cfg.StoreDir, "JetStream store directory")
	f.StringVar(&cfg.ServerName, "server-name", cfg.ServerName, "server name")
	f.StringVar(&cfg.CertFile, "server-cert", cfg.CertFile, "server TLS certificate")
	f.StringVar(&cfg.KeyFile, "server-key", cfg.KeyFile, "server TLS key")
	f.StringVar(&cfg.CAFile, "ca", cfg.CAFile, "CA of client certificates")
	f.BoolVar(&cfg.VerifyClients, "verify-clients", false, "require client certificates signed by --ca")
	f.StringVar(&cfg.ClusterName, "cluster-name", "", "join a JetStream cluster of this name (with --cluster-listen and --route)")
	f.StringVar(&cfg.ClusterListen, "cluster-listen", "", "route listener host:port of a cluster member, e.g. 0.0.0.0:6222")
	f.StringArrayVar(&cfg.Routes, "route", nil, "a cluster peer's route URL, nats-route://HOST:6222 (repeat)")
	f.StringSliceVar(&spec.Pools, "pool", nil, "worker pools served (default: default)")
	f.StringSliceVar(&spec.Kinds, "kind", nil, "custom worker kinds, each a user")
	f.StringArrayVar(&agents, "agent", nil, "an agent host as GROUP/HOST, each a user (repeat)")
	return c
}

// writeNATSConfig writes the configuration with bcrypt hashes and each
// user's password in a file of its own.
func writeNATSConfig(g *globals, cfg access.ServerConfig, spec access.Spec, dir string) error {
	users, err := access.Users(spec)
	if err != nil {
		return err
	}
	pwDir := filepath.Join(dir, "passwords")
	if err := os.MkdirAll(pwDir, 0o700); err != nil {
		return fmt.Errorf("passwords directory: %w", err)
	}
	for _, u := range users {
		pw, err := randomSecret()
		if err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", u.Name, err)
		}
		if err := os.WriteFile(filepath.Join(pwDir, u.Name), []byte(pw+"\n"), 0o600); err != nil {
			return fmt.Errorf("password of %s: %w", u.Name, err)
		}
		cfg.Users = append(cfg.Users, access.UserEntry{User: u, PasswordHash: string(hash)})
	}
	text, err := cfg.Render()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(g.stdout, "wrote %s and %d passwords under %s\n", path, len(users), pwDir)
	return nil
}

func natsProvisionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "provision",
		Short: "Create or update every stream and bucket Gantry uses (as the admin user)",
		Long: `Create or update every stream and bucket Gantry uses. Only the admin user
may; the services' own users open what exists, so run this once before
starting them, and again after an upgrade.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if g.auth.User != "" && g.auth.User != access.Admin {
				return fmt.Errorf("provisioning needs the %s user, not %s", access.Admin, g.auth.User)
			}
			conn, err := g.open(cmd.Context(), "gantry-provision", true)
			if err != nil {
				return err
			}
			conn.Close()
			fmt.Fprintln(g.stdout, "provisioned")
			return nil
		},
	}
}

// devCertsCmd makes TLS material for a development or test server.
func devCertsCmd(g *globals) *cobra.Command {
	var dir string
	var hosts []string
	c := &cobra.Command{
		Use:   "certs",
		Short: "Make a throwaway CA and server and client certificates for a development NATS server",
		Long: `Make a new CA and a server and a client certificate it signs, as PEM
files in --dir (keys mode 0600): ca.pem, server.pem, server-key.pem,
client.pem, client-key.pem. The server certificate names localhost,
127.0.0.1, ::1 and every --host. For development and tests: never commit
them, and use your own CA in production. (gantry dev makes its own.)`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return errors.New("--dir is required")
			}
			f, err := devcert.Create(dir, hosts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "CA %s\nserver %s (key %s)\nclient %s (key %s)\n", f.CA, f.ServerCert, f.ServerKey, f.ClientCert, f.ClientKey)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to write the certificates into")
	c.Flags().StringSliceVar(&hosts, "host", nil, "more DNS names or IP addresses of the server")
	return c
}

func randomSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
