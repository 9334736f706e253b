package build

import (
	"fmt"
	"maps"
	"regexp"
	"strings"
)

// envKeyPrefix starts the configuration keys exported to the buildspec's
// commands as environment variables (decider.EnvPrefix): env.IMAGE_TAG:
// "#{Build.VERSION}" makes $IMAGE_TAG the variable's value, as data, which
// is how a pipeline variable reaches a command without ever being
// substituted into the command's text.
const envKeyPrefix = "env."

var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// taskVariables are the variables the buildspec's commands see: the
// task's (run variables, exported variables, GANTRY_*) and, over them, the
// action's env.NAME configuration keys. A GANTRY_ name or an invalid one
// is refused (the parser refuses both; a hand-made definition may not).
func taskVariables(vars, cfg map[string]string) (map[string]string, error) {
	out := maps.Clone(vars)
	if out == nil {
		out = map[string]string{}
	}
	for k, v := range cfg {
		name, ok := strings.CutPrefix(k, envKeyPrefix)
		if !ok {
			continue
		}
		if !envVarName.MatchString(name) || strings.HasPrefix(name, "GANTRY_") {
			return nil, fmt.Errorf("configuration %s: %q cannot be an environment variable (a name of letters, digits and _, not GANTRY_*)", k, name)
		}
		out[name] = v
	}
	return out, nil
}
