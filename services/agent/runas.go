package agent

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// Errors of resolveRunAs, wrapped with the user and what to do about it.
var (
	// errNoSuchUser: runas names a user the host does not have.
	errNoSuchUser = errors.New("no such user")
	// errNotRoot: runas names another user, and only root may switch to it.
	errNotRoot = errors.New("run the agent as root (see deploy/systemd/gantry-agent.service) to run hooks as other users")
)

// account is what the agent needs of a host user to run a hook as it.
type account struct {
	UID, GID uint32
	Groups   []uint32 // supplementary, the primary group included
	Home     string
}

// lookupFunc finds a host user by name, with errNoSuchUser when there is
// none. It is a parameter so that the decision in resolveRunAs is tested
// without real users.
type lookupFunc func(name string) (account, error)

// hookUser is a user other than the agent's that a hook runs as.
type hookUser struct {
	Name string
	Home string
	Cred *syscall.Credential
}

// resolveRunAs decides who a hook whose runas is name runs as, for an
// agent running as agentUID on host: nil for the agent itself (no runas,
// or runas naming the agent's own user), else the user to switch to. It
// returns errNoSuchUser or errNotRoot, wrapped with what the operator can
// do.
func resolveRunAs(name, host string, agentUID int, lookup lookupFunc) (*hookUser, error) {
	if name == "" {
		return nil, nil
	}
	acc, err := lookup(name)
	if errors.Is(err, errNoSuchUser) {
		return nil, fmt.Errorf("runas %s: %w on host %s; create it or remove runas from appspec.yml", name, errNoSuchUser, host)
	}
	if err != nil {
		return nil, fmt.Errorf("runas %s: %w", name, err)
	}
	if int64(acc.UID) == int64(agentUID) {
		return nil, nil
	}
	if agentUID != 0 {
		return nil, fmt.Errorf("runas %s: the agent runs as uid %d; %w", name, agentUID, errNotRoot)
	}
	return &hookUser{Name: name, Home: acc.Home, Cred: &syscall.Credential{
		Uid: acc.UID, Gid: acc.GID, Groups: slices.Clone(acc.Groups)}}, nil
}

// environ returns env for a script run as u: the agent's own HOME, USER
// and LOGNAME would point tools (ssh, git, npm) at the agent's files.
func (u *hookUser) environ(env []string) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "USER" && k != "LOGNAME" {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+u.Home, "USER="+u.Name, "LOGNAME="+u.Name)
}

// lookupAccount is the host's lookupFunc.
func lookupAccount(name string) (account, error) {
	u, err := user.Lookup(name)
	if errors.As(err, new(user.UnknownUserError)) {
		return account{}, errNoSuchUser
	}
	if err != nil {
		return account{}, err
	}
	uid, err := parseID("uid", u.Uid)
	if err != nil {
		return account{}, err
	}
	gid, err := parseID("gid", u.Gid)
	if err != nil {
		return account{}, err
	}
	gids, err := u.GroupIds()
	if err != nil {
		return account{}, fmt.Errorf("groups of %s: %w", name, err)
	}
	acc := account{UID: uid, GID: gid, Home: u.HomeDir, Groups: make([]uint32, 0, len(gids))}
	for _, s := range gids {
		g, err := parseID("group id", s)
		if err != nil {
			return account{}, err
		}
		acc.Groups = append(acc.Groups, g)
	}
	return acc, nil
}

func parseID(what, s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return uint32(n), nil
}
