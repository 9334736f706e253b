package stack

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/devcert"
)

// Auth is how a connection proves who it is: a user of services/access
// with its password, over TLS checked against CAFile (and, where the
// server verifies clients, with a client certificate).
type Auth struct {
	User, Password            string
	CAFile, CertFile, KeyFile string
}

// Options turns Auth into connection options. A user's connection takes
// replies on its own inbox prefix, the only one its permissions let it
// subscribe to.
func (a Auth) Options() []nats.Option {
	var opts []nats.Option
	if a.User != "" {
		opts = append(opts, nats.UserInfo(a.User, a.Password), nats.CustomInboxPrefix(access.Inbox(a.User)))
	}
	if a.CAFile != "" {
		opts = append(opts, nats.RootCAs(a.CAFile))
	}
	if a.CertFile != "" || a.KeyFile != "" {
		opts = append(opts, nats.ClientCert(a.CertFile, a.KeyFile))
	}
	return opts
}

// mayProvision reports whether the user may create streams and buckets:
// only admin (or a server without users).
func (a Auth) mayProvision() bool { return a.User == "" || a.User == access.Admin }

// DevAuthDir holds what `gantry dev` makes for its server: TLS material,
// the server's configuration and the users' passwords (0700).
func DevAuthDir(dataDir string) string { return filepath.Join(dataDir, "auth") }

// devPasswords is where the dev users' passwords are kept (0600).
func devPasswords(dataDir string) string { return filepath.Join(DevAuthDir(dataDir), "passwords.json") }

// DevServerConfig is the nats-server configuration `gantry dev` runs with.
func DevServerConfig(dataDir string) string {
	return filepath.Join(DevAuthDir(dataDir), "nats-server.conf")
}

// WriteDevAuth makes fresh TLS certificates, a random password for every
// user of spec, and the server configuration holding their bcrypt hashes,
// under DevAuthDir. Other commands find the passwords there (DevAuth).
func WriteDevAuth(dataDir string, spec access.Spec) error {
	dir := DevAuthDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev auth directory: %w", err)
	}
	certs, err := devcert.Create(filepath.Join(dir, "tls"))
	if err != nil {
		return err
	}
	users, err := access.Users(spec)
	if err != nil {
		return err
	}
	passwords := map[string]string{}
	cfg := access.ServerConfig{StoreDir: JetStreamDir(dataDir), CertFile: certs.ServerCert, KeyFile: certs.ServerKey,
		CAFile: certs.CA, VerifyClients: true}
	for _, u := range users {
		pw, err := randomPassword()
		if err != nil {
			return err
		}
		// The passwords are random and long: the cheapest bcrypt cost
		// loses nothing and keeps a dozen connections quick.
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("hash password of %s: %w", u.Name, err)
		}
		passwords[u.Name] = pw
		cfg.Users = append(cfg.Users, access.UserEntry{User: u, PasswordHash: string(hash)})
	}
	text, err := cfg.Render()
	if err != nil {
		return err
	}
	if err := writeSecret(DevServerConfig(dataDir), []byte(text)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(passwords, "", "  ")
	if err != nil {
		return err
	}
	return writeSecret(devPasswords(dataDir), b)
}

// DevAuth returns the credentials of user on the `gantry dev` server of
// dataDir, or ok false when that server runs without users.
func DevAuth(dataDir, user string) (a Auth, ok bool, err error) {
	b, err := os.ReadFile(devPasswords(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		return Auth{}, false, nil
	}
	if err != nil {
		return Auth{}, false, fmt.Errorf("dev passwords: %w", err)
	}
	var pw map[string]string
	if err := json.Unmarshal(b, &pw); err != nil {
		return Auth{}, false, fmt.Errorf("dev passwords %s: %w", devPasswords(dataDir), err)
	}
	p, found := pw[user]
	if !found {
		return Auth{}, false, fmt.Errorf("dev server of %s has no user %q", dataDir, user)
	}
	certs := devcert.Paths(filepath.Join(DevAuthDir(dataDir), "tls"))
	return Auth{User: user, Password: p, CAFile: certs.CA, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, true, nil
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// writeSecret replaces path with a file only its owner can read.
func writeSecret(path string, data []byte) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// AdoptDefaultAccount moves the JetStream state a data directory holds in
// NATS's default account (a Gantry before users, or an offline CLI) into
// the GANTRY account the dev server's users live in, so upgrading keeps
// every run. It does nothing when the GANTRY account has state already.
func AdoptDefaultAccount(dataDir string) error {
	base := filepath.Join(JetStreamDir(dataDir), "jetstream")
	from, to := filepath.Join(base, "$G"), filepath.Join(base, access.Account)
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if _, err := os.Stat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("move the data directory's state into account %s: %w", access.Account, err)
	}
	return nil
}
