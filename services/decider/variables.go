package decider

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Built-in namespaces of #{...} references: #{pipeline.runId},
// #{pipeline.name}, #{pipeline.executionId}, #{source.commitId},
// #{source.branch} and #{variables.NAME} (a pipeline variable).
const (
	NamespacePipeline  = "pipeline"
	NamespaceSource    = "source"
	NamespaceVariables = "variables"
)

// BuiltinNamespaces are the namespaces no action may declare.
var BuiltinNamespaces = []string{NamespacePipeline, NamespaceSource, NamespaceVariables}

// builtinKeys are the keys of the built-in namespaces other than variables.
var builtinKeys = map[string][]string{
	NamespacePipeline: {"runId", "name", "executionId"},
	NamespaceSource:   {"commitId", "branch"},
}

// EnvPrefix starts the configuration keys of build and test actions that
// the worker exports to the buildspec's commands as environment
// variables: env.IMAGE_TAG becomes IMAGE_TAG. They are how a #{...}
// reference reaches a command safely, as data.
const EnvPrefix = "env."

// Reference is one #{Namespace.Key} in a configuration value.
type Reference struct {
	Text      string // as written, #{...}
	Namespace string
	Key       string
}

var (
	refPattern = regexp.MustCompile(`#\{([^{}]*)\}`)
	refName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	refKey     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)
)

// References lists the #{...} references of a configuration value, or
// says which one is malformed (not Namespace.Key).
func References(value string) ([]Reference, error) {
	var out []Reference
	for _, m := range refPattern.FindAllStringSubmatch(value, -1) {
		ns, key, ok := strings.Cut(m[1], ".")
		if !ok || !refName.MatchString(ns) || !refKey.MatchString(key) {
			return nil, fmt.Errorf("malformed variable reference %s: want #{Namespace.KEY}", m[0])
		}
		out = append(out, Reference{Text: m[0], Namespace: ns, Key: key})
	}
	if strings.Contains(refPattern.ReplaceAllString(value, ""), "#{") {
		return nil, fmt.Errorf("unclosed variable reference in %q: want #{Namespace.KEY}", value)
	}
	return out, nil
}

// RunByShell reports whether configuration key of an action of kind is
// text a shell runs (a build or test action's buildspec, inline or a
// path): a reference there would be command injection, so it is refused
// and the variable is passed through an env.NAME key instead.
func RunByShell(kind, key string) bool {
	return (kind == "build" || kind == "test") && key == "buildspec"
}

// BuiltinKey reports whether ns.key is a known built-in reference (any key
// of variables is, the pipeline's variables being known only per run).
func BuiltinKey(ns, key string) (builtin, known bool) {
	if ns == NamespaceVariables {
		return true, true
	}
	keys, ok := builtinKeys[ns]
	return ok, ok && slices.Contains(keys, key)
}

// resolveConfiguration substitutes the #{...} references of an action's
// configuration from the run as it stands. It returns the resolved
// configuration, or the reason the action fails at once: a reference that
// is malformed, unresolved (an unknown namespace, a key the namespace's
// action did not export), or in a value a shell runs. Substitution is one
// pass: a resolved value containing #{...} is data, never expanded again.
func resolveConfiguration(s run.State, def events.ActionDef) (map[string]string, string) {
	if len(def.Configuration) == 0 {
		return nil, ""
	}
	out := make(map[string]string, len(def.Configuration))
	for _, k := range slices.Sorted(maps.Keys(def.Configuration)) {
		v := def.Configuration[k]
		refs, err := References(v)
		if err != nil {
			return nil, fmt.Sprintf("configuration %s: %v", k, err)
		}
		if len(refs) > 0 && RunByShell(def.Type, k) {
			return nil, fmt.Sprintf("configuration %s: %s is in text a shell runs; pass it through an env key instead (env.NAME: %q) and use $NAME in the commands",
				k, refs[0].Text, refs[0].Text)
		}
		var missing string
		out[k] = refPattern.ReplaceAllStringFunc(v, func(text string) string {
			ns, key, _ := strings.Cut(text[2:len(text)-1], ".")
			val, ok := lookupReference(s, ns, key)
			if !ok && missing == "" {
				missing = text
			}
			return val
		})
		if missing != "" {
			return nil, fmt.Sprintf("configuration %s: unresolved variable reference %s: %s", k, missing, whyUnresolved(s, missing))
		}
	}
	return out, ""
}

// lookupReference is the value of ns.key in the run as it stands.
func lookupReference(s run.State, ns, key string) (string, bool) {
	switch ns {
	case NamespacePipeline:
		switch key {
		case "runId", "executionId":
			return s.Run, true
		case "name":
			return s.Pipeline, true
		}
		return "", false
	case NamespaceSource:
		switch key {
		case "commitId":
			if s.Trigger.Commit != "" {
				return s.Trigger.Commit, true
			}
			return sourceVariable(s, "COMMIT_ID")
		case "branch":
			if b := strings.TrimPrefix(s.Trigger.Ref, "refs/heads/"); b != "" && !strings.HasPrefix(b, "refs/") {
				return b, true
			}
			return sourceVariable(s, "BRANCH_NAME")
		}
		return "", false
	case NamespaceVariables:
		if v, ok := s.Variables[key]; ok {
			return v, true
		}
		v, ok := s.Definition.Variables[key]
		return v, ok
	}
	for i, sd := range s.Definition.Stages {
		for j, ad := range sd.Actions {
			if ad.Namespace != ns {
				continue
			}
			a := s.Stages[i].Actions[j]
			if a.Phase != run.Succeeded {
				return "", false
			}
			v, ok := a.Variables[key]
			return v, ok
		}
	}
	return "", false
}

// sourceVariable is a variable exported by the run's first source action
// that succeeded (the checkout exports COMMIT_ID and BRANCH_NAME).
func sourceVariable(s run.State, key string) (string, bool) {
	for i, sd := range s.Definition.Stages {
		for j, ad := range sd.Actions {
			if a := s.Stages[i].Actions[j]; ad.Type == "source" && a.Phase == run.Succeeded {
				if v, ok := a.Variables[key]; ok {
					return v, true
				}
			}
		}
	}
	return "", false
}

func whyUnresolved(s run.State, text string) string {
	ns, key, _ := strings.Cut(text[2:len(text)-1], ".")
	if builtin, known := BuiltinKey(ns, key); builtin {
		if !known {
			return fmt.Sprintf("%s has no key %s (it has %s)", ns, key, strings.Join(builtinKeys[ns], ", "))
		}
		return fmt.Sprintf("%s.%s has no value in this run", ns, key)
	}
	for i, sd := range s.Definition.Stages {
		for j, ad := range sd.Actions {
			if ad.Namespace == ns {
				if s.Stages[i].Actions[j].Phase != run.Succeeded {
					return fmt.Sprintf("action %s.%s (namespace %s) has not succeeded", sd.Name, ad.Name, ns)
				}
				return fmt.Sprintf("action %s.%s (namespace %s) did not export %s", sd.Name, ad.Name, ns, key)
			}
		}
	}
	return fmt.Sprintf("no action declares namespace %s", ns)
}
