package decider

import (
	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Dependencies are the indexes of the stages stage i waits for: those its
// dependsOn names, or the stage before it in the file when it names none.
// A name that is not a stage (the parser refuses it; an old or hand-made
// definition may hold one) is left out.
func Dependencies(def events.Definition, i int) []int {
	sd := def.Stages[i]
	if len(sd.DependsOn) == 0 {
		if i == 0 {
			return nil
		}
		return []int{i - 1}
	}
	var out []int
	for _, name := range sd.DependsOn {
		for j, st := range def.Stages {
			if st.Name == name && j != i {
				out = append(out, j)
				break
			}
		}
	}
	return out
}

// dependenciesMet is enter's first check: every stage stage i depends on
// has succeeded. It holds the stage back (false) otherwise, so stages whose
// dependencies succeed together start together (fan-out) and a stage with
// several waits for the last of them (fan-in).
func dependenciesMet(s run.State, i int) bool {
	for _, j := range Dependencies(s.Definition, i) {
		if p := s.Stages[j].Phase; p != run.Succeeded && p != run.Skipped {
			return false
		}
	}
	return true
}
