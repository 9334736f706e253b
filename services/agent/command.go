package agent

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/events"
)

// Command is what the deploy service sends an agent on
// gantry.agents.<group>.<host> when a host is dispatched: everything the
// agent needs, taken from the deployment's created event. Its Nats-Msg-Id
// is events.DeployCommandID, so a republish is dropped.
type Command struct {
	Deployment  string              `json:"deployment"`
	Group       string              `json:"group"`
	Host        string              `json:"host"`
	Application string              `json:"application"`
	Revision    events.ArtifactRef  `json:"revision"`
	HealthCheck *events.HealthCheck `json:"healthCheck,omitempty"`
	Variables   map[string]string   `json:"variables,omitempty"`
	// IgnoreApplicationStopFailures: see events.DeploymentCreated.
	IgnoreApplicationStopFailures bool `json:"ignoreApplicationStopFailures,omitempty"`
}

// CommandFor builds a host's command from a deployment's created event.
func CommandFor(c events.DeploymentCreated, host string) Command {
	return Command{Deployment: c.Deployment, Group: c.Group, Host: host, Application: c.Application,
		Revision: c.Revision, HealthCheck: c.HealthCheck, Variables: c.Variables,
		IgnoreApplicationStopFailures: c.IgnoreApplicationStopFailures}
}

// SetsVariable reports whether the agent sets a hook environment variable
// itself, so that a revision variable of that name would never reach a
// hook: PATH, HOME, CodeDeploy's names and GANTRY_HOST, GANTRY_BUNDLE_DIR,
// GANTRY_INSTALL_ROOT, GANTRY_REVISION_* and GANTRY_LABEL_*.
func SetsVariable(name string) bool {
	switch name {
	case "PATH", "HOME", "APPLICATION_NAME", "DEPLOYMENT_ID", "DEPLOYMENT_GROUP_NAME", "LIFECYCLE_EVENT",
		"GANTRY_HOST", "GANTRY_BUNDLE_DIR", "GANTRY_INSTALL_ROOT":
		return true
	}
	return strings.HasPrefix(name, "GANTRY_REVISION_") || strings.HasPrefix(name, "GANTRY_LABEL_")
}

// Validate checks the names that become paths and subjects.
func (c Command) Validate() error {
	for _, n := range [][2]string{{"deployment", c.Deployment}, {"group", c.Group}, {"host", c.Host}} {
		if err := events.CheckName(n[0], n[1]); err != nil {
			return err
		}
	}
	return nil
}

// Info is an agent's heartbeat entry in the agents bucket, key
// <group>.<host>. The entry's own time is the heartbeat: an entry older
// than the deploy service's timeout, or none, is a dead agent.
type Info struct {
	Group  string            `json:"group"`
	Host   string            `json:"host"`
	Labels map[string]string `json:"labels,omitempty"`
	// Busy names the deployment the agent is working on, if any.
	Busy string `json:"busy,omitempty"`
}

// DecodeInfo parses a heartbeat entry.
func DecodeInfo(b []byte) (Info, error) {
	var i Info
	if err := json.Unmarshal(b, &i); err != nil {
		return Info{}, fmt.Errorf("agent entry: %w", err)
	}
	return i, nil
}
