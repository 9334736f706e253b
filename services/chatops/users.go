package chatops

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

// Roles, the gateway's (docs/api.md): viewer reads; operator starts runs
// and rolls deployment groups back; approver approves and rejects; admin
// may do everything.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleApprover = "approver"
	RoleAdmin    = "admin"
)

var knownRoles = []string{RoleViewer, RoleOperator, RoleApprover, RoleAdmin}

// Users maps chat user IDs (Slack's U… IDs, never display names, which
// anyone can change) to the gateway roles they hold.
type Users map[string][]string

// usersFile is the file `gantry gateway --chatops-users` reads:
//
//	users:
//	  U012ABCDEF: [operator, approver]
//	  U0456GHIJK: [viewer]
type usersFile struct {
	Users map[string][]string `yaml:"users"`
}

// ErrBadUsers is wrapped by every error about a users file.
var ErrBadUsers = errors.New("chat-ops users")

// ParseUsers reads a users document, refusing unknown fields and roles
// (every problem at once).
func ParseUsers(data []byte) (Users, error) {
	var f usersFile
	if err := yaml.UnmarshalWithOptions(data, &f, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadUsers, err)
	}
	var errs []error
	ids := make([]string, 0, len(f.Users))
	for id := range f.Users {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		roles := f.Users[id]
		if len(roles) == 0 {
			errs = append(errs, fmt.Errorf("%w: users.%s: no roles", ErrBadUsers, id))
		}
		for i, r := range roles {
			if !slices.Contains(knownRoles, r) {
				errs = append(errs, fmt.Errorf("%w: users.%s[%d]: unknown role %q (roles: %v)", ErrBadUsers, id, i, r, knownRoles))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return Users(f.Users), nil
}

// LoadUsers reads a users file.
func LoadUsers(path string) (Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadUsers, err)
	}
	u, err := ParseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return u, nil
}

// may reports whether user holds one of the roles allowed; admin holds
// every permission.
func (u Users) may(user string, allowed []string) bool {
	for _, r := range u[user] {
		if r == RoleAdmin || slices.Contains(allowed, r) {
			return true
		}
	}
	return false
}

// LoadConfig builds a Config from the files the gateway's flags name: the
// signing secret (a file, so the secret never sits on a command line or in
// the environment) and the users file. BaseURL is where the UI is served.
func LoadConfig(secretFile, usersFile, baseURL string) (Config, error) {
	var errs []error
	secret, err := os.ReadFile(secretFile)
	if err != nil {
		errs = append(errs, fmt.Errorf("chat-ops signing secret: %w", err))
	}
	users, err := LoadUsers(usersFile)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	cfg := Config{SigningSecret: strings.TrimSpace(string(secret)), Users: users, BaseURL: baseURL}
	return cfg, cfg.Validate()
}
