package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/deploy"
)

// LoadGroups parses every examples/*/deploygroup.yaml.
func LoadGroups(dir string) ([]deploy.Group, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*", "deploygroup.yaml"))
	if err != nil {
		return nil, err
	}
	var out []deploy.Group
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		g, err := deploy.ParseGroup(m, data)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// ApplyGroups stores deployment groups.
func ApplyGroups(ctx context.Context, c *Conn, gs []deploy.Group) error {
	for _, g := range gs {
		if _, err := deploy.ApplyGroup(ctx, c.Bus.JetStream(), g); err != nil {
			return err
		}
	}
	return nil
}

// LocalAgent is an agent `gantry dev` runs in-process for a local host.
type LocalAgent struct {
	Name string
	Port int
	Root string
}

// URL is where the local host's service answers.
func (a LocalAgent) URL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(a.Port) + path
}

// LocalAgentNames are the host names of a group's n local agents.
func LocalAgentNames(group string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", group, i+1)
	}
	return names
}

// LocalAgents makes n agents of a group, each with its own root under
// dataDir and a free loopback port as its "port" label, as roles. connect
// gives each its connection, as the agent's own user where the server has
// users.
func LocalAgents(connect func(host string) (*Conn, error), log zerolog.Logger, dataDir, group string, n int) ([]LocalAgent, []Role, error) {
	var hosts []LocalAgent
	var roles []Role
	for _, name := range LocalAgentNames(group, n) {
		root := filepath.Join(dataDir, "agents", name)
		port, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		c, err := connect(name)
		if err != nil {
			return nil, nil, err
		}
		a, err := agent.New(agent.Options{
			Bus: c.Bus, Log: log.With().Str("service", "agent").Logger(), // agent.New adds group and host
			Group: group, Name: name, Root: root, InstallRoot: filepath.Join(root, "fs"),
			Labels: map[string]string{"port": strconv.Itoa(port)}, StopOnExit: true,
		})
		if err != nil {
			return nil, nil, err
		}
		hosts = append(hosts, LocalAgent{Name: name, Port: port, Root: root})
		roles = append(roles, Role{Name: "agent " + name, Run: a.Run})
	}
	return hosts, roles, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
