package decider_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/decider"
)

// FuzzRandomPipelinesEnd is the decider's property test: a random pipeline
// (a dependsOn graph of up to five stages, runOrder groups, onFailure
// RETRY) is driven by Decide while the fuzzer interleaves worker results,
// duplicate deliveries, stops with and without abandon, manual retries and
// silent workers. Whatever happens:
//   - every transition of the run and of each stage is a valid one;
//   - no stage is entered while it is running, nor before its dependencies
//     succeeded, and no task is dispatched twice;
//   - the run ends within a bounded number of steps.
//
// To add a kind of interference (approvals, conditions...), add a move to
// moves: it gets the simulation and one fuzzer byte.
func FuzzRandomPipelinesEnd(f *testing.F) {
	f.Add([]byte{3, 1, 2, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 0xff, 0x13, 0x80, 0x81, 7, 2, 9, 0x40, 0x41, 3})
	f.Add([]byte{4, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc})
	f.Fuzz(func(t *testing.T, data []byte) {
		sim := newPropSim(t, data)
		// The fuzzer's bytes can hold the run back (duplicates, silences,
		// stops) for as long as they last; once they are spent every move
		// is a worker's answer, and the run must end within 600 steps.
		for step := 0; step < 600+4*len(data) && !sim.s.Done(); step++ {
			if sim.decide() {
				continue
			}
			sim.interfere()
		}
		if !sim.s.Done() {
			t.Fatalf("run did not end: %s, stages %+v", sim.s.Phase, sim.s.Stages)
		}
		foldsAgree(t, sim.s, sim.log)
	})
}

type propSim struct {
	t          *testing.T
	data       []byte
	s          run.State
	in         decider.Inputs
	seq        uint64
	open       []events.Task
	answered   []events.Payload // results already delivered, for duplicates
	dispatched map[string]bool
	retries    int            // manual retries so far; bounded so the run ends
	log        []events.Event // every event applied, in order
}

// move is one kind of interference; it reports whether it did anything.
type move func(m *propSim, c byte) bool

var moves = []move{
	(*propSim).answer, (*propSim).answer, (*propSim).answer, (*propSim).answer, // most often a worker answers
	(*propSim).duplicate, (*propSim).stop, (*propSim).silence,
}

func (m *propSim) next() byte {
	if len(m.data) == 0 {
		return 0
	}
	c := m.data[0]
	m.data = m.data[1:]
	return c
}

// newSim builds a random pipeline from the first bytes and requests it.
func newPropSim(t *testing.T, data []byte) *propSim {
	m := &propSim{t: t, data: data, in: in0, dispatched: map[string]bool{}}
	n := int(m.next())%5 + 1
	d := events.Definition{Name: "p"}
	for i := range n {
		c := m.next()
		sd := events.StageDef{Name: fmt.Sprintf("S%d", i)}
		if i > 0 && c&1 != 0 { // an explicit dependsOn on a random set of earlier stages
			for j := range i {
				if c>>(1+j)&1 != 0 {
					sd.DependsOn = append(sd.DependsOn, fmt.Sprintf("S%d", j))
				}
			}
		}
		for k := range int(c>>5)%3 + 1 {
			sd.Actions = append(sd.Actions, events.ActionDef{Name: fmt.Sprintf("a%d", k), Type: "build", Pool: "default",
				RunOrder: 1 + k%2})
		}
		if c&0x10 != 0 {
			sd.OnFailure = &events.OnFailure{Result: events.OnFailureRetry, Retries: 1 + int(c>>6)}
		}
		d.Stages = append(d.Stages, sd)
	}
	m.apply(events.RunRequested{Pipeline: "p", Run: runID, Revision: 1, Definition: d, Trigger: events.Trigger{ID: "t", Kind: "manual"}})
	return m
}

// apply folds one event and checks the transitions it made.
func (m *propSim) apply(p events.Payload) {
	m.t.Helper()
	e := ev(m.t, p)
	m.seq++
	e.Seq = m.seq
	m.log = append(m.log, e)
	before := m.s
	m.s = run.Evolve(m.s, e)
	checkTransitions(m.t, before, m.s, p)
}

// decide applies Decide's events, checking them; false when it had none.
func (m *propSim) decide() bool {
	evs := decider.Decide(m.s, m.in)
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.ActionDispatched:
			if m.dispatched[p.Task.ID] {
				m.t.Fatalf("task %s dispatched twice", p.Task.ID)
			}
			m.dispatched[p.Task.ID] = true
			m.open = append(m.open, p.Task)
		case events.StageStarted:
			i := stageIndex(m.s, p.Stage)
			if m.s.Stages[i].Phase == run.Running {
				m.t.Fatalf("stage %s entered while running", p.Stage)
			}
			for _, j := range decider.Dependencies(m.s.Definition, i) {
				if m.s.Stages[j].Phase != run.Succeeded {
					m.t.Fatalf("stage %s entered before its dependency %s succeeded", p.Stage, m.s.Stages[j].Name)
				}
			}
		}
		m.apply(e.Payload)
	}
	return len(evs) > 0
}

// interfere makes one move the fuzzer picks; with nothing to do it lets
// time pass (deadlines, retry backoff) or, for an ended run, retries.
func (m *propSim) interfere() {
	c := m.next()
	if len(m.open) > 0 && moves[int(c)%len(moves)](m, c) {
		return
	}
	if m.retry(c) {
		return
	}
	next, ok := decider.NextDeadline(m.s, m.in)
	if !ok {
		if len(m.open) > 0 {
			m.answer(c)
			return
		}
		m.t.Fatalf("run %s waits with nothing open and no deadline: %+v", m.s.Phase, m.s.Stages)
	}
	if next.After(m.in.Now) {
		m.in.Now = next
	}
	m.in.Now = m.in.Now.Add(time.Second)
}

func (m *propSim) take(c byte) events.Task {
	i := int(c) % len(m.open)
	task := m.open[i]
	m.open = append(m.open[:i], m.open[i+1:]...)
	return task
}

// answer: a worker ends an open task with success or failure.
func (m *propSim) answer(c byte) bool {
	if len(m.open) == 0 {
		return false
	}
	task := m.take(c)
	r := events.ActionRef{Run: task.Run, Stage: task.Stage, Action: task.Action, Attempt: task.Attempt}
	l := events.LeaseToken(key, task.ID)
	var p events.Payload = events.ActionSucceeded{ActionRef: r, Lease: l}
	if c&0x80 != 0 {
		p = events.ActionFailed{ActionRef: r, Lease: l, Reason: "boom"}
	}
	m.apply(p)
	m.answered = append(m.answered, p)
	return true
}

// duplicate: a result already delivered arrives again; nothing changes.
func (m *propSim) duplicate(c byte) bool {
	if len(m.answered) == 0 {
		return false
	}
	before := m.s
	m.apply(m.answered[int(c)%len(m.answered)])
	for i := range before.Stages {
		for j, a := range before.Stages[i].Actions {
			if b := m.s.Stages[i].Actions[j]; a.Phase != b.Phase || a.Attempt != b.Attempt {
				m.t.Fatalf("a duplicate result moved %s/%s from %s#%d to %s#%d", before.Stages[i].Name, a.Name, a.Phase, a.Attempt, b.Phase, b.Attempt)
			}
		}
	}
	return true
}

// stop: someone stops the run, with or without abandon.
func (m *propSim) stop(c byte) bool {
	if m.s.Phase != run.Running || c&0x20 == 0 {
		return false
	}
	abandon := c&0x40 != 0
	m.apply(events.RunStopping{Run: runID, Reason: "fuzz", Abandon: abandon})
	if abandon {
		m.open = nil // abandoned tasks get no answer
	}
	return true
}

// silence: every worker goes silent; the deadlines pass.
func (m *propSim) silence(c byte) bool {
	if c&0x40 == 0 {
		return false
	}
	m.in.Now = m.in.Now.Add(decider.DefaultTimeout + decider.DefaultGrace)
	m.open = nil
	return true
}

// retry: someone retries a stage of an ended run, as gantry run retry
// would (at most twice, so the run ends).
func (m *propSim) retry(c byte) bool {
	if m.retries >= 2 || (m.s.Phase != run.Failed && m.s.Phase != run.Stopped) {
		return false
	}
	for i := range m.s.Stages {
		st := m.s.Stages[(i+int(c))%len(m.s.Stages)]
		if run.Retryable(m.s, st, false) {
			mode := events.RetryFailed
			if c&1 != 0 {
				mode = events.RetryAll
			}
			m.retries++
			m.open = nil // the old attempts' late results are duplicates now
			m.apply(events.StageRetrying{Run: runID, Stage: st.Name, Attempt: st.Attempt + 1, Mode: mode, Actor: "fuzz"})
			if m.s.Phase != run.Running {
				m.t.Fatalf("a retry of stage %s left the run %s", st.Name, m.s.Phase)
			}
			return true
		}
	}
	return false
}

func stageIndex(s run.State, name string) int {
	for i := range s.Stages {
		if s.Stages[i].Name == name {
			return i
		}
	}
	panic("no stage " + name)
}

// Valid phase transitions of a run and of a stage (a phase may also stay).
var (
	runMoves = map[run.Phase][]run.Phase{
		"":            {run.Requested},
		run.Requested: {run.Running, run.Stopping},
		run.Running:   {run.Stopping, run.Succeeded, run.Failed},
		run.Stopping:  {run.Stopped, run.Failed},
		run.Failed:    {run.Running}, // a retry by hand
		run.Stopped:   {run.Running},
		run.Succeeded: nil,
	}
	stageMoves = map[run.Phase][]run.Phase{
		run.NotStarted: {run.Running},
		run.Running:    {run.Succeeded, run.Failed, run.Running}, // Running again: a retry of a stopped stage
		run.Failed:     {run.Running},
		run.Succeeded:  nil,
	}
)

func checkTransitions(t *testing.T, before, after run.State, p events.Payload) {
	t.Helper()
	allowed := func(moves map[run.Phase][]run.Phase, from, to run.Phase) bool {
		if from == to {
			return true
		}
		for _, x := range moves[from] {
			if x == to {
				return true
			}
		}
		return false
	}
	if !allowed(runMoves, before.Phase, after.Phase) {
		t.Fatalf("%T moved the run from %q to %q", p, before.Phase, after.Phase)
	}
	for i := range before.Stages {
		b, a := before.Stages[i], after.Stages[i]
		if !allowed(stageMoves, b.Phase, a.Phase) {
			t.Fatalf("%T moved stage %s from %q to %q", p, b.Name, b.Phase, a.Phase)
		}
		if a.Attempt < b.Attempt {
			t.Fatalf("%T moved stage %s back from attempt %d to %d", p, b.Name, b.Attempt, a.Attempt)
		}
		if b.Phase == run.Succeeded && a.Attempt != b.Attempt {
			t.Fatalf("%T re-entered stage %s, which had succeeded", p, b.Name)
		}
	}
	if before.Phase.Done() && after.Phase != before.Phase && !isRetry(p) {
		t.Fatalf("%T moved an ended run", p)
	}
}

func isRetry(p events.Payload) bool {
	_, ok := p.(events.StageRetrying)
	return ok
}

// foldsAgree checks that Fold (one copy, then changes in place) and
// EvolveOwned give what Evolve gave event by event (want) over the log.
func foldsAgree(t *testing.T, want run.State, log []events.Event) {
	t.Helper()
	w, _ := json.Marshal(want)
	if got, _ := json.Marshal(run.Fold(run.State{}, log...)); string(got) != string(w) {
		t.Fatalf("Fold gives\n%s\nEvolve event by event gives\n%s", got, w)
	}
	var owned run.State
	for _, e := range log {
		owned = run.EvolveOwned(owned, e)
	}
	if got, _ := json.Marshal(owned); string(got) != string(w) {
		t.Fatalf("EvolveOwned gives\n%s\nEvolve event by event gives\n%s", got, w)
	}
}
