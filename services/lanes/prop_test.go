package lanes

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

// simRun is a run as the property test moves it: what its own decider
// and workers would do, in a random interleaving with the lane's decisions.
type simRun struct {
	id      string
	order   uint64
	started bool
	waiting int // stage index it waits to enter, or -1
	in      int // stage index it is in, or -1
	done    bool
	outcome string
}

func (r *simRun) view(stages []string, mode string) View {
	v := View{Run: r.id, Order: r.order, Mode: mode, Done: r.done}
	if r.in >= 0 {
		v.In = []string{stages[r.in]}
	}
	if r.waiting >= 0 && !r.done {
		v.Waiting = []string{stages[r.waiting]}
	}
	return v
}

// TestLaneProperties drives random interleavings of runs starting,
// entering, finishing stages and transitions being disabled and enabled,
// with the lane deciding at random moments, and checks: in SUPERSEDED and
// QUEUED mode never two runs in one stage; every run ends once the
// transitions are open (none waits forever); QUEUED supersedes nothing and
// keeps the order of each stage's entries; PARALLEL supersedes nothing; the
// newest run always succeeds; an ended lane holds nothing.
func TestLaneProperties(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 50
	}
	for seed := range seeds {
		for _, mode := range []string{events.ModeSuperseded, events.ModeQueued, events.ModeParallel} {
			if err := simulate(uint64(seed), mode); err != nil {
				t.Fatalf("seed %d mode %s: %v", seed, mode, err)
			}
		}
	}
}

func simulate(seed uint64, mode string) error {
	rng := rand.New(rand.NewPCG(seed, 7))
	stages := []string{"A", "B", "C"}[:1+rng.IntN(3)]
	var runs []*simRun
	for i := range 2 + rng.IntN(5) {
		runs = append(runs, &simRun{id: fmt.Sprintf("r%d", i), order: uint64(i + 1), waiting: -1, in: -1})
	}
	var lane State
	entries := map[string][]uint64{}
	decide := func() {
		views := map[string]View{}
		for _, r := range runs {
			if r.started {
				views[r.id] = r.view(stages, mode)
			}
		}
		for i, e := range Decide(lane, "p", views, now) {
			e.Seq = lane.LastSeq + uint64(i) + 1
			lane = Evolve(lane, e)
			if p, ok := e.Payload.(events.LaneEntered); ok {
				for _, r := range runs {
					if r.id == p.Run {
						entries[p.Stage] = append(entries[p.Stage], r.order)
					}
				}
			}
		}
	}
	transition := func(stage string, disable bool) {
		e, _ := events.New("t", Source, events.LaneToken, now, events.LaneTransition{Pipeline: "p", Stage: stage, Disabled: disable, Reason: "r"})
		lane = Evolve(lane, e)
	}
	// step moves one run as its own conductor would; it reports whether
	// anything changed.
	step := func(r *simRun) bool {
		switch {
		case r.done:
			return false
		case !r.started:
			r.started, r.waiting = true, 0
		case lane.SupersededBy(r.id) != "" && r.waiting >= 0:
			r.done, r.outcome, r.waiting = true, "superseded", -1
		case r.waiting >= 0 && (lane.Holds(stages[r.waiting], r.id) ||
			(mode == events.ModeParallel && !lane.IsDisabled(stages[r.waiting]))):
			if mode == events.ModeParallel && !lane.Holds(stages[r.waiting], r.id) {
				entries[stages[r.waiting]] = append(entries[stages[r.waiting]], r.order)
			}
			r.in, r.waiting = r.waiting, -1
		case r.in >= 0:
			if r.in+1 < len(stages) {
				r.waiting = r.in + 1
			} else {
				r.done, r.outcome = true, "succeeded"
			}
			r.in = -1
		default:
			return false
		}
		return true
	}
	check := func() error {
		if mode == events.ModeParallel {
			return nil
		}
		for _, st := range stages {
			var inside []string
			for _, r := range runs {
				if r.in >= 0 && stages[r.in] == st {
					inside = append(inside, r.id)
				}
			}
			if len(inside) > 1 || len(lane.In[st]) > 1 {
				return fmt.Errorf("stage %s: runs %v in it, lane holds %v", st, inside, lane.In[st])
			}
		}
		return nil
	}
	for range 200 {
		switch rng.IntN(10) {
		case 0, 1, 2:
			decide()
		case 3:
			if rng.IntN(3) == 0 {
				transition(stages[rng.IntN(len(stages))], rng.IntN(2) == 0)
			}
		default:
			// Runs start in order (run.requested is appended in order),
			// but reach the lane in any order.
			r := runs[rng.IntN(len(runs))]
			if !r.started && slices.ContainsFunc(runs, func(o *simRun) bool { return o.order < r.order && !o.started }) {
				continue
			}
			step(r)
		}
		if err := check(); err != nil {
			return err
		}
	}
	// Open every transition and let everything settle.
	for _, st := range stages {
		transition(st, false)
	}
	for range 1000 {
		moved := false
		decide()
		for _, r := range runs {
			if step(r) {
				moved = true
			}
			if err := check(); err != nil {
				return err
			}
		}
		if !moved {
			decide()
			break
		}
	}
	for _, r := range runs {
		if !r.done {
			return fmt.Errorf("run %s never ended (waiting %d, in %d); lane %+v", r.id, r.waiting, r.in, lane)
		}
		if r.outcome == "superseded" && mode != events.ModeSuperseded {
			return fmt.Errorf("run %s superseded in %s mode", r.id, mode)
		}
	}
	if newest := runs[len(runs)-1]; newest.outcome != "succeeded" {
		return fmt.Errorf("the newest run %s ended %s", newest.id, newest.outcome)
	}
	if len(lane.Runs()) != 0 {
		return fmt.Errorf("the lane still holds %v after every run ended", lane.Runs())
	}
	if mode == events.ModeQueued {
		for _, st := range stages[1:] {
			if !slices.Equal(entries[st], entries[stages[0]]) {
				return fmt.Errorf("stage %s entered in order %v, stage %s in %v", st, entries[st], stages[0], entries[stages[0]])
			}
		}
	}
	return nil
}

// FuzzLane runs the property simulation on fuzzed seeds.
func FuzzLane(f *testing.F) {
	f.Add(uint64(1), uint8(0))
	f.Add(uint64(42), uint8(1))
	f.Add(uint64(7), uint8(2))
	f.Fuzz(func(t *testing.T, seed uint64, m uint8) {
		mode := []string{events.ModeSuperseded, events.ModeQueued, events.ModeParallel}[m%3]
		if err := simulate(seed, mode); err != nil {
			t.Fatalf("seed %d mode %s: %v", seed, mode, err)
		}
	})
}
