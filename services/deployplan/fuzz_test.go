package deployplan

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// fuzzPlan picks a configuration and a host count from the fuzzer's bytes;
// ok is false when New refuses them (HOST_COUNT >= n).
func fuzzPlan(t *testing.T, hostCount, kind, value uint8) (Plan, bool) {
	t.Helper()
	n := 1 + int(hostCount%40)
	var cfg Config
	switch kind % 5 {
	case 0:
		cfg = AllAtOnce
	case 1:
		cfg = HalfAtATime
	case 2:
		cfg = OneAtATime
	case 3:
		cfg = Config{Type: HostCount, Value: int(value) % (n + 1)}
	case 4:
		cfg = Config{Type: FleetPercent, Value: int(value) % 101}
	}
	p, err := New(cfg, hosts(n))
	if err != nil {
		if cfg.Type == HostCount && cfg.Value >= n {
			return Plan{}, false
		}
		t.Fatalf("New(%v, %d hosts): %v", cfg, n, err)
	}
	if p.BatchSize < 1 || p.MinHealthy < 0 || p.MinHealthy > n || len(p.Hosts()) != n {
		t.Fatalf("bad plan for %v on %d hosts: %+v", cfg, n, p)
	}
	return p, true
}

var allStatuses = []HostStatus{Pending, InProgress, Succeeded, Failed, Skipped, "", "Unknown"}

// checkDecision checks what must hold for any statuses: Next starts only
// pending hosts, each once, never more than BatchSize offline, skips only
// pending hosts, and does not both start and end.
func checkDecision(t *testing.T, p Plan, status map[string]HostStatus, d Decision) {
	t.Helper()
	seen := map[string]bool{}
	for _, h := range append(slices.Clone(d.Start), d.Skip...) {
		if seen[h] {
			t.Fatalf("%s named twice: %+v", h, d)
		}
		seen[h] = true
		if normal(status[h]) != Pending || !slices.Contains(p.Hosts(), h) {
			t.Fatalf("%s is %q or not in the plan, yet started or skipped: %+v", h, status[h], d)
		}
	}
	if d.Done != nil && len(d.Start) > 0 {
		t.Fatalf("starts hosts and ends: %+v", d)
	}
	if d.Done == nil && len(d.Skip) > 0 {
		t.Fatalf("skips hosts without ending: %+v", d)
	}
	if len(d.Start) > 0 {
		offline := len(d.Start)
		for _, h := range p.Hosts() {
			if s := normal(status[h]); s == InProgress || s == Failed {
				offline++
			}
		}
		if offline > p.BatchSize {
			t.Fatalf("%d hosts would be offline, batch size %d: %+v", offline, p.BatchSize, d)
		}
	}
}

// run plays a deployment to its end: each step finishes one host in
// progress, chosen at random, as failed when fails says so. It checks
// checkDecision at every step, that the deployment never stalls or
// restarts a host, and returns the outcome and the final statuses.
func run(t *testing.T, p Plan, rng *rand.Rand, fails func(h string) bool) (Done, map[string]HostStatus) {
	t.Helper()
	status := map[string]HostStatus{}
	all := p.Hosts()
	everStarted := map[string]bool{}
	for step := 0; step <= 2*len(all)+1; step++ {
		d := Next(p, status)
		checkDecision(t, p, status, d)
		if d.Done != nil {
			for _, h := range d.Skip {
				status[h] = Skipped
			}
			return *d.Done, status
		}
		for _, h := range d.Start {
			if everStarted[h] {
				t.Fatalf("%s started twice", h)
			}
			everStarted[h] = true
			status[h] = InProgress
		}
		var running []string
		for _, h := range all {
			if status[h] == InProgress {
				running = append(running, h)
			}
		}
		if len(running) == 0 {
			t.Fatalf("stalled: nothing in progress, nothing started, not done: %v", status)
		}
		h := running[rng.IntN(len(running))]
		status[h] = Succeeded
		if fails(h) {
			status[h] = Failed
		}
	}
	t.Fatalf("no end after %d steps: %v", 2*len(all)+2, status)
	return Done{}, nil
}

// FuzzNext: for any statuses, Next never starts a host that is not pending,
// never starts one twice and never takes more than BatchSize hosts offline;
// played to the end with random outcomes and order, a deployment never
// stalls, ends as the rules say, and one where every host succeeds always
// ends Succeeded.
func FuzzNext(f *testing.F) {
	f.Add(uint8(8), uint8(1), uint8(0), uint64(1), []byte{0, 1, 0, 0})
	f.Add(uint8(8), uint8(3), uint8(6), uint64(2), []byte{0xff})
	f.Add(uint8(9), uint8(4), uint8(40), uint64(3), []byte{1, 0, 1})
	f.Add(uint8(2), uint8(2), uint8(0), uint64(4), []byte{})
	f.Add(uint8(0), uint8(0), uint8(0), uint64(5), []byte{1})
	f.Add(uint8(9), uint8(4), uint8(85), uint64(6), []byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, hostCount, kind, value uint8, seed uint64, outcomes []byte) {
		p, ok := fuzzPlan(t, hostCount, kind, value)
		if !ok {
			return
		}
		all := p.Hosts()
		n := len(all)
		rng := rand.New(rand.NewPCG(seed, uint64(len(outcomes))))

		// Any statuses.
		status := map[string]HostStatus{}
		for _, h := range all {
			status[h] = allStatuses[rng.IntN(len(allStatuses))]
		}
		d := Next(p, status)
		checkDecision(t, p, status, d)
		if !sameDecision(Next(p, status), d) {
			t.Fatal("Next is not deterministic")
		}

		// Every host succeeds.
		done, final := run(t, p, rng, func(string) bool { return false })
		if !done.Succeeded {
			t.Fatalf("every host succeeded, yet the deployment failed: %s", done.Reason)
		}
		for _, h := range all {
			if final[h] != Succeeded {
				t.Fatalf("%s ended %q in a successful run", h, final[h])
			}
		}

		// Random outcomes.
		failed := map[string]bool{}
		for i, h := range all {
			failed[h] = i < len(outcomes)*8 && outcomes[i/8]&(1<<(i%8)) != 0
		}
		done, final = run(t, p, rng, func(h string) bool { return failed[h] })
		var succ, fail, skip, pend int
		for _, h := range all {
			switch final[h] {
			case Succeeded:
				succ++
			case Failed:
				fail++
			case Skipped:
				skip++
			case "", Pending:
				pend++
			default:
				t.Fatalf("%s still %q after the end", h, final[h])
			}
		}
		if pend > 0 {
			t.Fatalf("%d hosts left pending, not skipped", pend)
		}
		if done.Succeeded {
			if skip > 0 || succ < p.MinSucceeded() {
				t.Fatalf("succeeded with %d succeeded, %d skipped, min %d: %s", succ, skip, p.MinSucceeded(), done.Reason)
			}
		} else if n-fail >= p.MinSucceeded() && (skip == 0 || fail < p.BatchSize) {
			// A failure needs success out of reach, or hosts left to deploy
			// with failed hosts filling the batch size.
			t.Fatalf("failed with %d succeeded, %d failed, %d skipped of %d, min %d, batch %d: %s",
				succ, fail, skip, n, p.MinSucceeded(), p.BatchSize, done.Reason)
		}
		// A deployment with no failure never fails.
		if fail == 0 && !done.Succeeded {
			t.Fatalf("no host failed, yet the deployment failed: %s", done.Reason)
		}
	})
}

func sameDecision(a, b Decision) bool {
	if !slices.Equal(a.Start, b.Start) || !slices.Equal(a.Skip, b.Skip) || (a.Done == nil) != (b.Done == nil) {
		return false
	}
	return a.Done == nil || *a.Done == *b.Done
}
