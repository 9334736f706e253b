package ui

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// graph is a run drawn as stages in columns, each stage's actions in runOrder
// groups, with the edges between stages.
type graph struct {
	Columns [][]stageView
	Edges   []edge
}

type edge struct{ From, To string }

type stageView struct {
	Name      string
	Phase     run.Phase
	Reason    string
	Attempt   int
	StartedAt time.Time
	EndedAt   time.Time
	DependsOn []string
	Groups    []actionGroup
	// Checks are the stage's condition rules of its latest attempt.
	Checks []run.Check
}

type actionGroup struct {
	RunOrder int
	Actions  []run.Action
}

// dependsOn reads each stage's dependsOn from the definition's JSON, so the
// drawing follows the stage graph when the definition has one and does not
// depend on which Go field carries it.
func dependsOn(st run.State, encode func(events.StageDef) any) map[string][]string {
	out := map[string][]string{}
	for _, sd := range st.Definition.Stages {
		b, err := json.Marshal(encode(sd))
		if err != nil {
			continue
		}
		var v struct {
			DependsOn []string `json:"dependsOn"`
		}
		if json.Unmarshal(b, &v) == nil && len(v.DependsOn) > 0 {
			out[sd.Name] = v.DependsOn
		}
	}
	return out
}

// layout places the stages. With no dependsOn anywhere the stages run in
// file order, one column each, an edge from each to the next. With
// dependsOn, a stage's column is one past the furthest stage it depends on
// (roots in the first), and edges follow dependsOn.
func layout(st run.State) graph {
	return layoutWith(st, func(sd events.StageDef) any { return sd })
}

// layoutWith is layout with the stage encoding as a parameter, so tests can
// give stages a dependsOn before the definition type has one.
func layoutWith(st run.State, encode func(events.StageDef) any) graph {
	deps := dependsOn(st, encode)
	names := make([]string, 0, len(st.Definition.Stages))
	for _, sd := range st.Definition.Stages {
		names = append(names, sd.Name)
	}
	// The folded stages carry phases; a definition-less state (a run whose
	// request was not folded yet) still shows what it has.
	if len(names) == 0 {
		for _, s := range st.Stages {
			names = append(names, s.Name)
		}
	}
	col := map[string]int{}
	var g graph
	if len(deps) == 0 {
		for i, n := range names {
			col[n] = i
			if i > 0 {
				g.Edges = append(g.Edges, edge{From: names[i-1], To: n})
			}
		}
	} else {
		known := map[string]bool{}
		for _, n := range names {
			known[n] = true
		}
		var depth func(n string, seen map[string]bool) int
		depth = func(n string, seen map[string]bool) int {
			if c, ok := col[n]; ok {
				return c
			}
			if seen[n] {
				return 0 // a cycle: the pipeline check refuses it; draw, don't loop
			}
			seen[n] = true
			c := 0
			for _, d := range deps[n] {
				if known[d] {
					c = max(c, depth(d, seen)+1)
				}
			}
			col[n] = c
			return c
		}
		for _, n := range names {
			depth(n, map[string]bool{})
			for _, d := range deps[n] {
				if known[d] {
					g.Edges = append(g.Edges, edge{From: d, To: n})
				}
			}
		}
	}
	for _, n := range names {
		c := col[n]
		for len(g.Columns) <= c {
			g.Columns = append(g.Columns, nil)
		}
		g.Columns[c] = append(g.Columns[c], stageOf(st, n, deps[n]))
	}
	return g
}

// stageOf is a stage's view: its folded phase and actions, or its
// definition's actions not started yet.
func stageOf(st run.State, name string, deps []string) stageView {
	v := stageView{Name: name, DependsOn: deps}
	var actions []run.Action
	if s := st.Stage(name); s != nil {
		v.Phase, v.Reason, v.Attempt, v.StartedAt, v.EndedAt = s.Phase, s.Reason, s.Attempt, s.StartedAt, s.EndedAt
		actions = s.Actions
		for _, c := range s.Checks {
			if c.Attempt == s.Attempt {
				v.Checks = append(v.Checks, c)
			}
		}
	}
	if len(actions) == 0 {
		for _, sd := range st.Definition.Stages {
			if sd.Name == name {
				for _, a := range sd.Actions {
					actions = append(actions, run.Action{Name: a.Name, Type: a.Type, RunOrder: a.RunOrder})
				}
			}
		}
	}
	byOrder := map[int][]run.Action{}
	for _, a := range actions {
		byOrder[a.RunOrder] = append(byOrder[a.RunOrder], a)
	}
	orders := make([]int, 0, len(byOrder))
	for o := range byOrder {
		orders = append(orders, o)
	}
	slices.Sort(orders)
	for _, o := range orders {
		v.Groups = append(v.Groups, actionGroup{RunOrder: o, Actions: byOrder[o]})
	}
	return v
}
