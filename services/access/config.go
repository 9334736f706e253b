package access

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Account is the NATS account every Gantry user lives in, with JetStream
// enabled. Other accounts on the same server see none of Gantry's subjects.
const Account = "GANTRY"

// ServerConfig is what a nats-server configuration for Gantry says.
type ServerConfig struct {
	// ServerName names the server (default gantry-nats-1).
	ServerName string
	// Listen is host:port of the client listener (default 127.0.0.1:4222:
	// bind to another address on purpose, never by accident).
	Listen string
	// Monitor is host:port of the HTTP monitoring listener; empty for none.
	Monitor string
	// StoreDir is JetStream's directory.
	StoreDir string
	// TLS: every client must speak TLS. CertFile and KeyFile are the
	// server's; CAFile, when VerifyClients is set, checks client
	// certificates too.
	CertFile, KeyFile, CAFile string
	VerifyClients             bool
	// Users and their password entries, in order.
	Users []UserEntry
	// Cluster: when ClusterName is set the server joins a JetStream
	// cluster of that name, listening for routes on ClusterListen and
	// dialling every Routes URL (nats-route://host:port; listing the
	// server itself is harmless). Routes use the server's TLS
	// certificate and CA both ways, so a peer must present a
	// certificate the CA signed.
	ClusterName, ClusterListen string
	Routes                     []string
}

// UserEntry is a user and how its password appears in the file.
type UserEntry struct {
	User
	// PasswordHash is a bcrypt hash; PasswordEnv names an environment
	// variable nats-server reads the password from. Exactly one is set.
	PasswordHash string
	PasswordEnv  string
}

// PasswordEnv is the environment variable `gantry nats config
// --env-passwords` names for a user's password.
func PasswordEnv(user string) string {
	return "GANTRY_NATS_PASSWORD_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(user))
}

// Render writes the configuration in nats-server's format.
func (c ServerConfig) Render() (string, error) {
	var errs []error
	if c.StoreDir == "" {
		errs = append(errs, errors.New("a JetStream store directory is required"))
	}
	if c.CertFile == "" || c.KeyFile == "" {
		errs = append(errs, errors.New("a TLS certificate and key are required: clients must use TLS"))
	}
	if c.VerifyClients && c.CAFile == "" {
		errs = append(errs, errors.New("verifying client certificates needs a CA file"))
	}
	for _, u := range c.Users {
		if (u.PasswordHash == "") == (u.PasswordEnv == "") {
			errs = append(errs, fmt.Errorf("user %s: exactly one of a password hash or a password variable", u.Name))
		}
	}
	if c.ClusterName == "" && (c.ClusterListen != "" || len(c.Routes) > 0) {
		errs = append(errs, errors.New("cluster listen address and routes need a cluster name"))
	}
	if c.ClusterName != "" {
		if c.ClusterListen == "" {
			errs = append(errs, errors.New("a cluster needs a route listen address"))
		}
		if c.CAFile == "" {
			errs = append(errs, errors.New("a cluster needs a CA file: routes verify each other's certificates"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("nats-server config: %w", err)
	}
	name := c.ServerName
	if name == "" {
		name = "gantry-nats-1"
	}
	listen := c.Listen
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# nats-server configuration for Gantry, written by `gantry nats config`.\n")
	w("# Users and permissions come from services/access; regenerate, do not edit.\n")
	w("server_name: %s\n", q(name))
	w("listen: %s\n", q(listen))
	if c.Monitor != "" {
		w("http: %s\n", q(c.Monitor))
	}
	w("max_payload: 8MB\n\n")
	w("jetstream {\n  store_dir: %s\n  max_memory_store: 256MB\n  max_file_store: 50GB\n}\n\n", q(c.StoreDir))
	w("# Every client connection must use TLS.\ntls {\n  cert_file: %s\n  key_file: %s\n", q(c.CertFile), q(c.KeyFile))
	if c.CAFile != "" {
		w("  ca_file: %s\n", q(c.CAFile))
	}
	if c.VerifyClients {
		w("  verify: true\n")
	}
	w("  timeout: 5\n}\n\n")
	if c.ClusterName != "" {
		w("# Routes to the other servers of the JetStream cluster, TLS both ways.\n")
		w("cluster {\n  name: %s\n  listen: %s\n", q(c.ClusterName), q(c.ClusterListen))
		w("  tls {\n    cert_file: %s\n    key_file: %s\n    ca_file: %s\n    verify: true\n    timeout: 5\n  }\n", q(c.CertFile), q(c.KeyFile), q(c.CAFile))
		// Clients keep the URLs they were given: the members' addresses
		// inside a container network mean nothing to a client outside it.
		w("  no_advertise: true\n")
		w("  routes: %s\n}\n\n", list(c.Routes, "  "))
	}
	w("accounts {\n  %s {\n    jetstream: enabled\n    users: [\n", Account)
	for _, u := range c.Users {
		w("      {\n        user: %s\n", q(u.Name))
		if u.PasswordEnv != "" {
			w("        password: $%s\n", u.PasswordEnv)
		} else {
			w("        password: %s\n", q(u.PasswordHash))
		}
		w("        permissions: {\n")
		w("          publish: { allow: %s }\n", list(u.Permissions.Publish, "            "))
		w("          subscribe: { allow: %s }\n", list(u.Permissions.Subscribe, "            "))
		if u.Permissions.Responses {
			w("          allow_responses: true\n")
		}
		w("        }\n      }\n")
	}
	w("    ]\n  }\n}\n")
	return b.String(), nil
}

// q quotes a string for the configuration: quoted values are never taken
// for variables, which matters for bcrypt hashes and $JS subjects.
func q(s string) string { return strconv.Quote(s) }

// list writes one subject a line, so that a diff of two configurations
// shows which permission changed.
func list(s []string, indent string) string {
	switch len(s) {
	case 0:
		return "[]"
	case 1:
		return "[" + q(s[0]) + "]"
	}
	var b strings.Builder
	b.WriteString("[\n")
	for _, v := range s {
		b.WriteString(indent + "  " + q(v) + "\n")
	}
	b.WriteString(indent + "]")
	return b.String()
}

// Defaults is the configuration `gantry nats config` writes when told
// nothing else: loopback only, TLS material under /etc/gantry/tls.
func Defaults() ServerConfig {
	return ServerConfig{ServerName: "gantry-nats-1", Listen: "127.0.0.1:4222", Monitor: "127.0.0.1:8222",
		StoreDir: "/var/lib/nats", CertFile: "/etc/gantry/tls/server.pem", KeyFile: "/etc/gantry/tls/server-key.pem",
		CAFile: "/etc/gantry/tls/ca.pem"}
}

// WithEnvPasswords returns c with every user of spec reading its password
// from its PasswordEnv variable: a configuration that holds no secret and
// may be committed.
func WithEnvPasswords(c ServerConfig, spec Spec) (ServerConfig, error) {
	users, err := Users(spec)
	if err != nil {
		return c, err
	}
	c.Users = nil
	for _, u := range users {
		c.Users = append(c.Users, UserEntry{User: u, PasswordEnv: PasswordEnv(u.Name)})
	}
	return c, nil
}
