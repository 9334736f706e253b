package noop_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/loadtest/noop"
	"github.com/gantry-ci/gantry/services/decider"
)

// oneRun plays a no-op run through the fold and the decider, with the worker's
// events in between, and returns every event in log order: the events of a
// benchmark run without any I/O.
func oneRun(tb testing.TB, stages int) []events.Event {
	tb.Helper()
	def := noop.Definition(stages)
	id := events.RunIDForTrigger("bench", 1700000000000)
	now := time.Unix(1700000000, 0)
	req, err := events.New(events.RunID(id, "requested"), "/bench", id, now, events.RunRequested{
		Pipeline: def.Name, Run: id, Revision: 1, Definition: def, Trigger: events.Trigger{ID: "bench", Kind: "api"}})
	if err != nil {
		tb.Fatal(err)
	}
	var log []events.Event
	var st run.State
	add := func(e events.Event) {
		e.Seq = uint64(len(log) + 1)
		log = append(log, e)
		st = run.Evolve(st, e)
	}
	add(req)
	for range 100 {
		if st.Done() {
			return log
		}
		evs := decider.Decide(st, decider.Inputs{Now: now})
		if len(evs) > 0 {
			for _, e := range evs {
				add(e)
			}
			continue
		}
		for _, s := range st.Stages {
			for _, a := range s.Actions {
				if a.Phase != run.Dispatched {
					continue
				}
				ref := events.ActionRef{Run: id, Stage: s.Name, Action: a.Name, Attempt: a.Attempt}
				lease := events.LeaseToken(nil, events.TaskID(id, s.Name, a.Name, a.Attempt)) // the bench decides with no key
				for _, p := range []struct {
					id string
					p  events.Payload
				}{{events.ActionID(ref, "started"), events.ActionStarted{ActionRef: ref, Worker: "w"}},
					{events.ResultID(ref, "succeeded", lease), events.ActionSucceeded{ActionRef: ref, Worker: "w", Lease: lease}}} {
					e, err := events.New(p.id, "/bench", id, now, p.p)
					if err != nil {
						tb.Fatal(err)
					}
					add(e)
				}
			}
		}
	}
	tb.Fatalf("run did not end: %s", st.Phase)
	return nil
}

// BenchmarkCodec measures the validating codec per event type, against a
// plain encoding/json decode of the same bytes (the floor without schemas).
//
//	go test -run '^$' -bench Codec ./noop
func BenchmarkCodec(b *testing.B) {
	codec, err := events.NewCodec()
	if err != nil {
		b.Fatal(err)
	}
	byType := map[string]events.Event{}
	for _, e := range oneRun(b, 3) {
		byType[e.Type] = e
	}
	for _, t := range events.Types {
		e, ok := byType[t]
		if !ok {
			continue
		}
		raw, err := codec.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		name := t[len("dev.gantry."):]
		b.Run("Encode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := codec.Encode(e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if _, err := codec.Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("PlainJSON/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var env events.Envelope
				if err := json.Unmarshal(raw, &env); err != nil {
					b.Fatal(err)
				}
				p, _ := events.ZeroPayload(env.Type)
				ptr := newPtr(p)
				if err := json.Unmarshal(env.Data, ptr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newPtr(p events.Payload) any {
	switch p.(type) {
	case events.RunRequested:
		return &events.RunRequested{}
	case events.ActionDispatched:
		return &events.ActionDispatched{}
	default:
		var m map[string]any
		return &m
	}
}

// BenchmarkDecideFold is the pure part of one no-op run: every fold and
// decision of a 3-stage run, with no codec and no NATS.
func BenchmarkDecideFold(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = oneRun(b, 3)
	}
}

func TestOneRunIsWhatTheBenchmarkLogs(t *testing.T) {
	evs := oneRun(t, 3)
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.Type]++
	}
	if got := fmt.Sprint(len(evs), counts[events.TypeRunSucceeded], counts[events.TypeActionSucceeded]); got != "18 1 3" {
		t.Fatalf("events, run.succeeded, action.succeeded = %s, want 18 1 3", got)
	}
}
