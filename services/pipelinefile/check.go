package pipelinefile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/events"
)

// ReservedVariablePrefix starts the names of the variables Gantry sets for
// every action (GANTRY_PIPELINE, GANTRY_RUN_ID, GANTRY_COMMIT, ...); a
// pipeline may not define its own.
const ReservedVariablePrefix = "GANTRY_"

// producer is the action that outputs an artifact.
type producer struct {
	stage, action, runOrder int
	path                    fieldPath
}

func stagePath(i int) fieldPath { return fieldPath{}.key("stages").idx(i) }

func effectiveRunOrder(a events.ActionDef) int {
	if a.RunOrder < 1 {
		return DefaultRunOrder
	}
	return a.RunOrder
}

// semantics checks what the schema cannot express: unique stage names,
// unique action names per stage, one producer per artifact, inputs produced
// before they are read, and the configuration each built-in type needs.
// Values missing from def (the schema reported them) are skipped.
func (c *checker) semantics(def events.Definition, paths [][]actionPaths) {
	for name := range def.Variables {
		if strings.HasPrefix(name, ReservedVariablePrefix) {
			c.add(fieldPath{}.key("variables").key(name),
				fmt.Sprintf("variable names starting with %s are reserved for the variables Gantry sets (GANTRY_RUN_ID, GANTRY_COMMIT, ...)", ReservedVariablePrefix),
				ErrReservedVariable)
		}
	}
	stageAt := map[string]int{}
	produced := map[string]producer{}
	for i, s := range def.Stages {
		if s.Name != "" {
			if first, dup := stageAt[s.Name]; dup {
				c.add(stagePath(i).key("name"), fmt.Sprintf("duplicate stage name %q (first at line %d)",
					s.Name, c.line(stagePath(first).key("name"))), ErrDuplicateName)
			} else {
				stageAt[s.Name] = i
			}
		}
		actionAt := map[string]int{}
		for j, a := range s.Actions {
			ap := paths[i][j]
			if a.Name != "" {
				if first, dup := actionAt[a.Name]; dup {
					c.add(ap.path.key("name"), fmt.Sprintf("duplicate action name %q in stage %q (first at line %d)",
						a.Name, s.Name, c.line(paths[i][first].path.key("name"))), ErrDuplicateName)
				} else {
					actionAt[a.Name] = j
				}
			}
			for k, out := range a.Outputs {
				op := ap.outputs[k]
				if !events.ValidName(out) {
					continue // the schema reported it
				}
				prev, dup := produced[out]
				switch {
				case !dup:
					produced[out] = producer{stage: i, action: j, runOrder: effectiveRunOrder(a), path: op}
				case prev.stage == i && prev.action == j:
					// Listed twice by one action: the schema's uniqueItems said so.
				default:
					c.add(op, fmt.Sprintf("artifact %q is already produced by %s (line %d)",
						out, actionName(def, prev.stage, prev.action), c.line(prev.path)), ErrDuplicateArtifact)
				}
			}
			if a.Type == "source" {
				c.sourceConfiguration(a, ap.path)
			}
			for name := range a.Secrets {
				if strings.HasPrefix(name, ReservedVariablePrefix) {
					c.add(ap.path.key("secrets").key(name),
						fmt.Sprintf("secret variable names starting with %s are reserved for the variables Gantry sets", ReservedVariablePrefix),
						ErrReservedVariable)
				}
			}
		}
	}
	ancestors := c.graph(def, stageAt)
	c.references(def, paths, ancestors)
	for i, s := range def.Stages {
		for j, a := range s.Actions {
			ap := paths[i][j]
			for k, in := range a.Inputs {
				ip := ap.inputs[k]
				if !events.ValidName(in) {
					continue // the schema reported it
				}
				if msg := inputProblem(def, ancestors, produced, in, i, j, effectiveRunOrder(a)); msg != "" {
					c.add(ip, msg, ErrInputNotProduced)
				}
			}
		}
	}
}

// inputProblem explains why artifact in cannot be an input of action j of
// stage i, or returns "" when it can: it must come from an ancestor of
// stage i in the stage graph (ancestors[i]), or from an earlier runOrder
// group of stage i.
func inputProblem(def events.Definition, ancestors []map[int]bool, produced map[string]producer, in string, i, j, runOrder int) string {
	prev, ok := produced[in]
	switch {
	case !ok:
		var known []string
		for name := range produced {
			known = append(known, name)
		}
		slices.Sort(known) // suggest picks the first of equally close names
		if s := suggest(in, known); s != "" {
			return fmt.Sprintf("input %q is not produced by any action; did you mean %q?", in, s)
		}
		return fmt.Sprintf("input %q is not produced by any action", in)
	case prev.stage != i && ancestors[i][prev.stage], prev.stage == i && prev.runOrder < runOrder:
		return ""
	case prev.stage == i && prev.action == j:
		return fmt.Sprintf("input %q is an output of this same action", in)
	case prev.stage != i && ancestors[prev.stage][i]:
		return fmt.Sprintf("input %q is produced by %s, in a later stage", in, actionName(def, prev.stage, prev.action))
	case prev.stage != i:
		return fmt.Sprintf("input %q is produced by %s, in a stage that may run in parallel with this one (stage %q does not depend on it); add it to dependsOn",
			in, actionName(def, prev.stage, prev.action), def.Stages[i].Name)
	case prev.runOrder == runOrder:
		return fmt.Sprintf("input %q is produced by %s, which runs in parallel with this action (both runOrder %d); give this action a higher runOrder",
			in, actionName(def, prev.stage, prev.action), runOrder)
	default:
		return fmt.Sprintf("input %q is produced by %s, which runs after this action (runOrder %d > %d)",
			in, actionName(def, prev.stage, prev.action), prev.runOrder, runOrder)
	}
}

// sourceConfiguration checks that a source action names its repository.
func (c *checker) sourceConfiguration(a events.ActionDef, p fieldPath) {
	cfg := p.key("configuration")
	repo := cfg.key("repository")
	if _, isMap := lookup(c.doc, cfg).(map[string]any); !isMap {
		if lookup(c.doc, cfg) == nil {
			c.add(p, `a source action needs configuration.repository (a path or file:// URL)`, ErrMissingConfiguration)
		}
		return // a configuration of the wrong type was reported by the schema
	}
	switch v := lookup(c.doc, repo).(type) {
	case nil:
		c.add(cfg, `missing "repository": a source action needs the repository to check out (a path or file:// URL)`, ErrMissingConfiguration)
	case string:
		if strings.TrimSpace(v) == "" {
			c.add(repo, "must not be empty", ErrMissingConfiguration)
		}
	}
}

// invariants re-checks every name of a definition about to be returned with
// events.CheckName, so the schema's name pattern and the event layer cannot
// drift apart unnoticed.
func (c *checker) invariants(def events.Definition, paths [][]actionPaths) {
	check := func(p fieldPath, what, name string) {
		if err := events.CheckName(what, name); err != nil {
			c.add(p, err.Error(), ErrSchema, events.ErrInvalidName)
		}
	}
	check(fieldPath{}.key("name"), "pipeline name", def.Name)
	for i, s := range def.Stages {
		check(stagePath(i).key("name"), "stage name", s.Name)
		for j, a := range s.Actions {
			ap := paths[i][j]
			check(ap.path.key("name"), "action name", a.Name)
			check(ap.path.key("type"), "action type", a.Type)
			check(ap.path.key("pool"), "pool", a.Pool)
			for k, in := range a.Inputs {
				check(ap.inputs[k], "artifact name", in)
			}
			for k, out := range a.Outputs {
				check(ap.outputs[k], "artifact name", out)
			}
		}
	}
}

func actionName(def events.Definition, stage, action int) string {
	s := def.Stages[stage]
	a := s.Actions[action]
	if !events.ValidName(s.Name) || !events.ValidName(a.Name) {
		return stagePath(stage).key("actions").idx(action).String()
	}
	return s.Name + "." + a.Name
}

func (c *checker) line(p fieldPath) int { return c.loc.position(p).Line }
