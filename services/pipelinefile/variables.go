package pipelinefile

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/decider"
)

// ErrBadReference: a #{...} reference is malformed, names a namespace no
// earlier action declares, or sits in text a shell runs; or a namespace or
// env key is not allowed.
var ErrBadReference = errors.New("invalid variable reference")

var envKeyName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// references checks namespaces (unique, not built in), env.NAME keys
// (build and test actions, valid names, not GANTRY_*) and every #{...} in
// a configuration value: well-formed, not in a buildspec, and naming a
// built-in or the namespace of an action that runs before this one (in an
// ancestor stage, or an earlier runOrder group of the same stage).
func (c *checker) references(def events.Definition, paths [][]actionPaths, ancestors []map[int]bool) {
	type declared struct{ stage, action, runOrder int }
	namespaces := map[string]declared{}
	for i, s := range def.Stages {
		for j, a := range s.Actions {
			if a.Namespace == "" || !events.ValidName(a.Namespace) {
				continue
			}
			p := paths[i][j].path.key("namespace")
			if slices.Contains(decider.BuiltinNamespaces, a.Namespace) {
				c.add(p, fmt.Sprintf("namespace %q is built in (%s); choose another name", a.Namespace,
					strings.Join(decider.BuiltinNamespaces, ", ")), ErrBadReference)
				continue
			}
			if prev, dup := namespaces[a.Namespace]; dup {
				c.add(p, fmt.Sprintf("namespace %q is already declared by %s (line %d)", a.Namespace,
					actionName(def, prev.stage, prev.action), c.line(paths[prev.stage][prev.action].path.key("namespace"))), ErrBadReference)
				continue
			}
			namespaces[a.Namespace] = declared{i, j, effectiveRunOrder(a)}
		}
	}
	for i, s := range def.Stages {
		for j, a := range s.Actions {
			for _, k := range slices.Sorted(maps.Keys(a.Configuration)) {
				p := paths[i][j].path.key("configuration").key(k)
				if name, isEnv := strings.CutPrefix(k, decider.EnvPrefix); isEnv {
					switch {
					case a.Type != "build" && a.Type != "test":
						c.add(p, fmt.Sprintf("env keys are for build and test actions (this one is %s)", a.Type), ErrBadReference)
					case !envKeyName.MatchString(name):
						c.add(p, fmt.Sprintf("%q is not an environment variable name (letters, digits and _, not starting with a digit)", name), ErrBadReference)
					case strings.HasPrefix(name, ReservedVariablePrefix):
						c.add(p, fmt.Sprintf("environment variable names starting with %s are reserved for the variables Gantry sets", ReservedVariablePrefix), ErrReservedVariable)
					}
				}
				refs, err := decider.References(a.Configuration[k])
				if err != nil {
					c.add(p, err.Error(), ErrBadReference)
					continue
				}
				if len(refs) > 0 && decider.RunByShell(a.Type, k) {
					c.add(p, fmt.Sprintf("%s in %s: a variable is never substituted into text a shell runs (command injection); pass it through an env key instead (configuration env.NAME: %q) and use $NAME in the commands",
						refs[0].Text, k, refs[0].Text), ErrBadReference)
					continue
				}
				for _, r := range refs {
					if msg := c.referenceProblem(def, r, i, effectiveRunOrder(a), ancestors, func(ns string) (int, int, int, bool) {
						d, ok := namespaces[ns]
						return d.stage, d.action, d.runOrder, ok
					}); msg != "" {
						c.add(p, msg, ErrBadReference)
					}
				}
			}
		}
	}
}

// referenceProblem explains why r cannot be read by an action of stage i
// in group runOrder, or returns "".
func (c *checker) referenceProblem(def events.Definition, r decider.Reference, i, runOrder int, ancestors []map[int]bool,
	find func(string) (stage, action, runOrder int, ok bool)) string {
	if builtin, known := decider.BuiltinKey(r.Namespace, r.Key); builtin {
		switch {
		case !known:
			return fmt.Sprintf("%s: the built-in namespace %s has no key %s", r.Text, r.Namespace, r.Key)
		case r.Namespace == decider.NamespaceVariables && !hasKey(def.Variables, r.Key):
			return fmt.Sprintf("%s: the pipeline declares no variable %s (add it under variables, with a default)", r.Text, r.Key)
		}
		return ""
	}
	st, act, order, ok := find(r.Namespace)
	switch {
	case !ok:
		return fmt.Sprintf("%s: no action declares namespace %s", r.Text, r.Namespace)
	case st == i && order < runOrder, st != i && ancestors[i][st]:
		return ""
	case st == i:
		return fmt.Sprintf("%s: namespace %s is declared by %s, which does not run before this action (give this action a higher runOrder)",
			r.Text, r.Namespace, actionName(def, st, act))
	default:
		return fmt.Sprintf("%s: namespace %s is declared by %s, in a stage this one does not depend on", r.Text, r.Namespace, actionName(def, st, act))
	}
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
