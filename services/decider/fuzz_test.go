package decider_test

import (
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// FuzzDecideDrivesRunsToAnEnd plays a run where workers answer each
// dispatched task with success or failure as the fuzzer chooses, in an order
// it chooses, interleaving stale repeats, forged results (without the
// lease), stops with and without abandon, and silent workers (time jumps past the deadline). Whatever
// happens, the decider must never dispatch the same attempt twice, a
// forged result must change nothing, and the run must end within a bounded
// number of steps.
func FuzzDecideDrivesRunsToAnEnd(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 2, 3, 255, 7})
	f.Add([]byte{9, 9, 9, 9, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, choices []byte) {
		s := fold(t, nil)
		dispatched := map[string]bool{}
		var open []events.Task
		next := func() byte {
			if len(choices) == 0 {
				return 0
			}
			c := choices[0]
			choices = choices[1:]
			return c
		}
		seq := uint64(100)
		in := in0
		apply := func(e events.Event) {
			seq++
			e.Seq = seq
			s = run.Evolve(s, e)
		}
		for step := 0; step < 200 && !s.Done(); step++ {
			evs := decider.Decide(s, in)
			for _, e := range evs {
				if d, ok := e.Payload.(events.ActionDispatched); ok {
					if dispatched[d.Task.ID] {
						t.Fatalf("task %s dispatched twice", d.Task.ID)
					}
					dispatched[d.Task.ID] = true
					open = append(open, d.Task)
				}
				apply(e)
			}
			if len(evs) > 0 || len(open) == 0 {
				if len(evs) == 0 {
					t.Fatalf("run waits with no task open: %+v", s)
				}
				continue
			}
			c := next()
			if c&0x30 == 0x30 { // every worker went silent: the deadlines pass
				in.Now = in.Now.Add(decider.DefaultTimeout + decider.DefaultGrace)
				open = nil
				continue
			}
			if c&0x3F == 0x1F && s.Phase == run.Running { // someone stops the run
				apply(ev(t, events.RunStopping{Run: s.Run, Reason: "fuzz", Abandon: c&0x40 != 0}))
				if c&0x40 != 0 {
					open = nil // abandoned tasks get no answer
				}
				continue
			}
			i := int(c) % len(open)
			task := open[i]
			open = append(open[:i], open[i+1:]...)
			r := events.ActionRef{Run: task.Run, Stage: task.Stage, Action: task.Action, Attempt: task.Attempt}
			l := events.LeaseToken(key, task.ID)
			if c&0x30 == 0x20 { // a forger answers first, without the lease
				before := s
				forged := events.ActionSucceeded{ActionRef: r, Outputs: outputs(task), Lease: events.LeaseHash(l)}
				apply(ev(t, forged))
				if a, b := before.Action(task.Stage, task.Action), s.Action(task.Stage, task.Action); a.Phase != b.Phase {
					t.Fatalf("a forged result moved %s from %s to %s", task.ID, a.Phase, b.Phase)
				}
			}
			var p events.Payload = events.ActionSucceeded{ActionRef: r, Outputs: outputs(task), Lease: l}
			if c&0x80 != 0 {
				p = events.ActionFailed{ActionRef: r, Reason: "boom", Lease: l}
			}
			apply(ev(t, p))
			if c&0x40 != 0 { // a stale repeat of the same result must change nothing
				before := s
				apply(ev(t, p))
				if before.Stages[0].Phase != s.Stages[0].Phase {
					t.Fatal("a repeated result changed the run")
				}
			}
		}
		if !s.Done() {
			t.Fatalf("run did not end: %+v", s)
		}
	})
}

func outputs(t events.Task) []events.ArtifactRef {
	var out []events.ArtifactRef
	for _, o := range t.Outputs {
		out = append(out, events.ArtifactRef{Name: o, Key: "k/" + o, SHA256: "00", Size: 1})
	}
	return out
}
