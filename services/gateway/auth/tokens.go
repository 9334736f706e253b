// Package auth is the gateway's authentication and authorization: a file
// of hashed bearer tokens, each with a name and roles, and the HTTP
// middleware that turns a request's token (an Authorization header, or for
// browsers an HttpOnly cookie with a double-submit CSRF check) into a
// Caller, refusing with 401 or 403. The UI (services/gateway/ui) uses the
// same middleware and reads the Caller from the request context.
//
// Tokens are 32 random bytes, so a plain SHA-256 of each is as strong a
// hash as a slow password hash would be and costs nothing per request; the
// file never holds a token itself, only its hash.
package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/events"
)

// Role is what a token may do.
type Role string

// Roles are a set: viewer reads; operator and approver are viewers that
// may also act; admin may do everything.
const (
	// Viewer reads pipelines, runs, logs, artifacts and deployments.
	Viewer Role = "viewer"
	// Operator starts, stops and retries runs, rolls stages and
	// deployment groups back and disables or enables stage transitions.
	Operator Role = "operator"
	// Approver approves or rejects approval actions.
	Approver Role = "approver"
	// Admin applies pipelines and deployment groups and may do anything
	// the others may.
	Admin Role = "admin"
)

// AllRoles lists the roles in the order they are documented.
var AllRoles = []Role{Viewer, Operator, Approver, Admin}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(AllRoles, r) {
		return "", fmt.Errorf("%w: %q (roles: viewer, operator, approver, admin)", ErrUnknownRole, s)
	}
	return r, nil
}

// Grants reports whether holding role r allows what need requires.
func (r Role) Grants(need Role) bool {
	switch {
	case r == Admin:
		return true
	case need == Viewer:
		return slices.Contains(AllRoles, r)
	default:
		return r == need
	}
}

// Sentinel errors.
var (
	// ErrUnknownRole: a role name that is not one of AllRoles.
	ErrUnknownRole = errors.New("unknown role")
	// ErrNameTaken: a token of that name exists already.
	ErrNameTaken = errors.New("token name taken")
	// ErrNoToken: no token of that name.
	ErrNoToken = errors.New("no such token")
	// ErrBadTokenFile: a line of the token file does not parse.
	ErrBadTokenFile = errors.New("bad token file")
)

// Entry is one line of the token file.
type Entry struct {
	Name  string `json:"name"`
	Roles []Role `json:"roles"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

// May reports whether any of the entry's roles grants need.
func (e Entry) May(need Role) bool {
	for _, r := range e.Roles {
		if r.Grants(need) {
			return true
		}
	}
	return false
}

// TokenPrefix starts every token, so that one is easy to recognise in a
// leaked file or a secret scanner.
const TokenPrefix = "gantry_"

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash is the hex SHA-256 of a token, as the file stores it.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ReadFile parses a token file: one JSON object per line, blank lines and
// lines starting with # ignored. A missing file is an empty one.
func ReadFile(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return parse(path, b)
}

func parse(path string, b []byte) ([]Entry, error) {
	var out []Entry
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(b))
	seen := map[string]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var e Entry
		d := json.NewDecoder(strings.NewReader(line))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s:%d: %v", ErrBadTokenFile, path, n, err))
			continue
		}
		if err := e.check(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s:%d: %v", ErrBadTokenFile, path, n, err))
			continue
		}
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("%w: %s:%d: name %q twice", ErrBadTokenFile, path, n, e.Name))
			continue
		}
		seen[e.Name] = true
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("token file %s: %w", path, err))
	}
	return out, errors.Join(errs...)
}

func (e Entry) check() error {
	var errs []error
	errs = append(errs, events.CheckName("token name", e.Name))
	if len(e.Roles) == 0 {
		errs = append(errs, errors.New("roles: at least one role"))
	}
	for _, r := range e.Roles {
		if _, err := ParseRole(string(r)); err != nil {
			errs = append(errs, fmt.Errorf("roles: %w", err))
		}
	}
	if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != sha256.Size {
		errs = append(errs, errors.New("sha256: want 64 hex digits"))
	}
	return errors.Join(errs...)
}

// writeFile replaces the token file atomically (write a temporary file in
// the same directory, then rename), readable by its owner only.
func writeFile(path string, entries []Entry) error {
	var buf bytes.Buffer
	buf.WriteString("# gantry gateway tokens: one JSON object per line; only hashes are stored\n")
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token file directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tokens-*")
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("token file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return nil
}

// Create makes a new token with roles, appends its hash to the file at
// path and returns the token: the only time it is ever shown.
func Create(path, name string, roles []Role) (string, Entry, error) {
	e := Entry{Name: name, Roles: roles, Created: time.Now().UTC().Truncate(time.Second)}
	tok, err := NewToken()
	if err != nil {
		return "", Entry{}, err
	}
	e.SHA256 = Hash(tok)
	if err := e.check(); err != nil {
		return "", Entry{}, err
	}
	all, err := ReadFile(path)
	if err != nil {
		return "", Entry{}, err
	}
	if slices.ContainsFunc(all, func(x Entry) bool { return x.Name == name }) {
		return "", Entry{}, fmt.Errorf("%w: %q (revoke it first, or pick another name)", ErrNameTaken, name)
	}
	if err := writeFile(path, append(all, e)); err != nil {
		return "", Entry{}, err
	}
	return tok, e, nil
}

// Revoke removes the token named name from the file.
func Revoke(path, name string) error {
	all, err := ReadFile(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(x Entry) bool { return x.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrNoToken, name)
	}
	return writeFile(path, slices.Delete(all, i, i+1))
}

// Tokens holds the entries of a token file for lookups and reloads them
// when the file changes (Watch) or when asked (Reload, on SIGHUP).
type Tokens struct {
	path string
	mu   sync.RWMutex
	all  []Entry
	// stamp is the file's size and modification time at the last load.
	stamp string
}

// Load reads the token file at path.
func Load(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Static returns Tokens holding entries and no file, for tests and
// embedding.
func Static(entries ...Entry) *Tokens { return &Tokens{all: entries} }

// Path is the token file.
func (t *Tokens) Path() string { return t.path }

func stamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
}

// Reload rereads the file. On a parse error the previous entries stay in
// force: a half-edited file must not lock everyone out or let anyone in.
func (t *Tokens) Reload() error {
	if t.path == "" {
		return nil
	}
	st := stamp(t.path)
	all, err := ReadFile(t.path)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.all, t.stamp = all, st
	t.mu.Unlock()
	return nil
}

// Watch reloads the file whenever its size or modification time changes,
// checking every interval, until ctx ends. Errors go to onErr.
func (t *Tokens) Watch(ctx context.Context, interval time.Duration, onErr func(error)) {
	if t.path == "" {
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.RLock()
		old := t.stamp
		t.mu.RUnlock()
		if stamp(t.path) == old {
			continue
		}
		if err := t.Reload(); err != nil && onErr != nil {
			onErr(err)
		}
	}
}

// Entries returns a copy of the loaded entries.
func (t *Tokens) Entries() []Entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return slices.Clone(t.all)
}

// Lookup returns the entry of token. It compares the token's hash with
// every entry's in constant time, so timing tells nothing about which
// entry, or how much of a hash, matched.
func (t *Tokens) Lookup(token string) (Entry, bool) {
	if token == "" {
		return Entry{}, false
	}
	h := sha256.Sum256([]byte(token))
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found Entry
	ok := 0
	for _, e := range t.all {
		want, err := hex.DecodeString(e.SHA256)
		if err != nil || len(want) != len(h) {
			continue
		}
		if subtle.ConstantTimeCompare(want, h[:]) == 1 {
			found, ok = e, 1
		}
	}
	return found, ok == 1
}
