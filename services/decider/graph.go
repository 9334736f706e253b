package decider

import (
	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Dependencies are the indexes of the stages stage i waits for
// (events.Definition.Dependencies).
func Dependencies(def events.Definition, i int) []int { return def.Dependencies(i) }

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
