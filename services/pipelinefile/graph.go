package pipelinefile

import (
	"fmt"
	"strings"

	"github.com/gantry-ci/gantry/events"
)

// graph checks every stage's dependsOn (known stages, not itself, no
// cycle) and returns, for each stage, the set of stages that surely
// succeeded before it starts (its ancestors). A dependency that is wrong
// is left out of the graph so the artifact checks can still run.
func (c *checker) graph(def events.Definition, stageAt map[string]int) []map[int]bool {
	parents := make([][]int, len(def.Stages))
	for i, s := range def.Stages {
		if s.DependsOn == nil {
			if i > 0 {
				parents[i] = []int{i - 1}
			}
			continue
		}
		items, _ := lookup(c.doc, stagePath(i).key("dependsOn")).([]any)
		for k, x := range items {
			dep, ok := x.(string)
			if !ok || !events.ValidName(dep) {
				continue // the schema reported it
			}
			p := stagePath(i).key("dependsOn").idx(k)
			j, known := stageAt[dep]
			switch {
			case dep == s.Name:
				c.add(p, fmt.Sprintf("stage %q cannot depend on itself", s.Name), ErrBadDependency)
			case !known:
				var names []string
				for _, st := range def.Stages {
					names = append(names, st.Name)
				}
				msg := fmt.Sprintf("stage %q is not a stage of this pipeline", dep)
				if g := suggest(dep, names); g != "" {
					msg += fmt.Sprintf("; did you mean %q?", g)
				}
				c.add(p, msg, ErrBadDependency)
			default:
				parents[i] = append(parents[i], j)
			}
		}
	}
	// A depth-first search reports each cycle once, at the dependency that
	// closes it, and drops that edge so the ancestors below are finite.
	const (
		unseen = iota
		open
		done
	)
	state := make([]int, len(def.Stages))
	var visit func(i int, path []int)
	visit = func(i int, path []int) {
		state[i] = open
		path = append(path, i)
		kept := parents[i][:0:0]
		for _, j := range parents[i] {
			switch state[j] {
			case open:
				// path[indexOf(path, j):] runs from j down to i.
				cycle := []string{def.Stages[i].Name}
				for _, k := range path[indexOf(path, j):] {
					cycle = append(cycle, def.Stages[k].Name)
				}
				c.add(c.dependencyPath(def, i, def.Stages[j].Name), fmt.Sprintf("stage dependencies form a cycle: %s",
					strings.Join(cycle, " depends on ")), ErrBadDependency)
				continue
			case unseen:
				visit(j, path)
			}
			kept = append(kept, j)
		}
		parents[i] = kept
		state[i] = done
	}
	for i := range def.Stages {
		if state[i] == unseen {
			visit(i, nil)
		}
	}
	ancestors := make([]map[int]bool, len(def.Stages))
	var of func(i int) map[int]bool
	of = func(i int) map[int]bool {
		if ancestors[i] != nil {
			return ancestors[i]
		}
		a := map[int]bool{}
		ancestors[i] = a // parents are acyclic now; this only guards re-entry
		for _, j := range parents[i] {
			a[j] = true
			for k := range of(j) {
				a[k] = true
			}
		}
		return a
	}
	for i := range def.Stages {
		of(i)
	}
	return ancestors
}

// dependencyPath is where stage i's dependsOn names dep.
func (c *checker) dependencyPath(def events.Definition, i int, dep string) fieldPath {
	items, _ := lookup(c.doc, stagePath(i).key("dependsOn")).([]any)
	for k, x := range items {
		if x == dep {
			return stagePath(i).key("dependsOn").idx(k)
		}
	}
	return stagePath(i).key("name") // the implicit dependency on the stage before
}

func indexOf(list []int, x int) int {
	for i, y := range list {
		if y == x {
			return i
		}
	}
	return 0
}
