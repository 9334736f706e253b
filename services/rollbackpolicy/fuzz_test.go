package rollbackpolicy

import (
	"fmt"
	"slices"
	"testing"

	"github.com/gantry-ci/gantry/services/deploydecider"
)

// history turns fuzz bytes into a group's deployments: four bytes each
// (phase, creation order, end order, flags).
func history(data []byte) []deploydecider.State {
	phases := []deploydecider.Phase{"", deploydecider.InProgress, deploydecider.Succeeded, deploydecider.Failed, deploydecider.Stopped}
	var out []deploydecider.State
	for i := 0; i+4 <= len(data) && len(out) < 16; i += 4 {
		s := dep(fmt.Sprint("d", len(out)), phases[int(data[i])%len(phases)], uint64(data[i+1]), uint64(data[i+2]))
		s.Rollback = data[i+3]&1 != 0
		if data[i+3]&2 != 0 {
			s.Created.RollbackOf = fmt.Sprint("d", int(data[i+3]>>2)%4)
		}
		if data[i+3]&64 != 0 {
			s.RollbackInfo = &deploydecider.RollbackInfo{Message: "answered"}
		}
		out = append(out, s)
	}
	return out
}

// FuzzDecide checks the policy's promises on any history: it never rolls
// back when a deployment was created after the failed one (other than the
// failed one's own rollback), it deploys only a success created before the
// failed one, the latest such success, and the order of the history does
// not matter.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{2, 1, 2, 0, 3, 3, 4, 0}, uint8(1), true)
	f.Add([]byte{2, 1, 2, 0, 3, 3, 4, 0, 2, 5, 6, 0}, uint8(1), true)
	f.Add([]byte{2, 1, 2, 0, 3, 3, 9, 0, 1, 5, 0, 0}, uint8(1), true)
	f.Add([]byte{2, 1, 2, 0, 4, 3, 4, 1}, uint8(1), false)
	f.Fuzz(func(t *testing.T, data []byte, which uint8, onFailure bool) {
		h := history(data)
		if len(h) == 0 {
			return
		}
		of := h[int(which)%len(h)]
		in := Input{History: h, Deployment: of.ID(), OnFailure: onFailure, RollbackID: "d3"}
		d := Decide(in)
		switch d.Action {
		case Ignore, Answer:
			if d.Target != nil {
				t.Fatalf("%q with a target %s", d.Action, d.Target.ID())
			}
		case Deploy:
			if d.Target == nil || d.Message == "" {
				t.Fatalf("deploy without a target or message: %+v", d)
			}
			if of.Phase != deploydecider.Failed && of.Phase != deploydecider.Stopped {
				t.Fatalf("rolled back a deployment that is %q", of.Phase)
			}
			if d.Target.Phase != deploydecider.Succeeded || d.Target.CreatedSeq >= of.CreatedSeq {
				t.Fatalf("target %s is %s created at %d; the failed one at %d", d.Target.ID(), d.Target.Phase, d.Target.CreatedSeq, of.CreatedSeq)
			}
			for _, s := range h {
				if s.Phase == "" || s.ID() == of.ID() {
					continue
				}
				if s.CreatedSeq > of.CreatedSeq {
					t.Fatalf("rolled back %s (created at %d) over the newer %s (created at %d)", of.ID(), of.CreatedSeq, s.ID(), s.CreatedSeq)
				}
				if s.Phase == deploydecider.Succeeded && s.CreatedSeq < of.CreatedSeq && s.EndSeq > d.Target.EndSeq {
					t.Fatalf("target %s ended at %d, but %s succeeded later, at %d", d.Target.ID(), d.Target.EndSeq, s.ID(), s.EndSeq)
				}
			}
		default:
			t.Fatalf("unknown action %q", d.Action)
		}
		// Order independence, where the sequences leave no ties.
		if distinct(h) {
			r := slices.Clone(h)
			slices.Reverse(r)
			in.History = r
			d2 := Decide(in)
			if d2.Action != d.Action || d2.Message != d.Message {
				t.Fatalf("reversed history: %q %q, want %q %q", d2.Action, d2.Message, d.Action, d.Message)
			}
		}
	})
}

func distinct(h []deploydecider.State) bool {
	created, ended := map[uint64]bool{}, map[uint64]bool{}
	for _, s := range h {
		if created[s.CreatedSeq] || (s.EndSeq != 0 && ended[s.EndSeq]) {
			return false
		}
		created[s.CreatedSeq], ended[s.EndSeq] = true, true
	}
	return true
}
