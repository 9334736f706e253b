package deploydecider

import (
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/deployplan"
)

// FuzzDecide drives a deployment with hosts ending in an arbitrary order
// and way: every round Decide must settle, never dispatch a host twice,
// never exceed the batch size of hosts offline, and end the deployment
// once every host has ended.
func FuzzDecide(f *testing.F) {
	f.Add(uint8(5), uint8(0), []byte{0, 1, 0, 2})
	f.Add(uint8(9), uint8(1), []byte{1, 1, 1, 1, 0})
	f.Add(uint8(3), uint8(2), []byte{3, 3, 3})
	f.Fuzz(func(t *testing.T, n, cfgPick uint8, script []byte) {
		hosts := make([]string, int(n%12)+1)
		for i := range hosts {
			hosts[i] = "h" + string(rune('a'+i))
		}
		cfgs := []events.DeploymentConfig{oneAtATime, allAtOnce, {Type: "FLEET_PERCENT", Value: 50}, {Type: "HOST_COUNT", Value: 1}}
		cfg := cfgs[int(cfgPick)%len(cfgs)]
		var s State
		seq := uint64(1)
		s = Evolve(s, ev(t, seq, created(cfg, hosts...)))
		dispatchedSeen := map[string]bool{}
		plan, planErr := deployplan.New(Config(cfg), hosts)
		for round := 0; round < 200 && s.Phase == InProgress; round++ {
			for _, e := range Decide(s, Inputs{Now: t0}) {
				if d, ok := e.Payload.(events.DeployHostDispatched); ok {
					if dispatchedSeen[d.Host] {
						t.Fatalf("host %s dispatched twice", d.Host)
					}
					dispatchedSeen[d.Host] = true
				}
				seq++
				e.Seq = seq
				s = Evolve(s, e)
			}
			if planErr == nil {
				off := 0
				for _, h := range s.Hosts {
					if h.Status == deployplan.InProgress || h.Status == deployplan.Failed {
						off++
					}
				}
				if s.Phase == InProgress && off > plan.BatchSize {
					t.Fatalf("%d hosts offline, batch size %d", off, plan.BatchSize)
				}
			}
			// End one in-progress host as the script says.
			var b byte
			if len(script) > 0 {
				b, script = script[0], script[1:]
			}
			for _, h := range s.Hosts {
				if h.Status != deployplan.InProgress {
					continue
				}
				seq++
				if b%3 == 1 {
					s = Evolve(s, ev(t, seq, hostBad(h.Name)))
				} else {
					s = Evolve(s, ev(t, seq, hostOK(h.Name)))
				}
				break
			}
		}
		if s.Phase == InProgress {
			t.Fatalf("deployment did not end: %+v", s.Statuses())
		}
	})
}
