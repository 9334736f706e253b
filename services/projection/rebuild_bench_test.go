package projection_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/projection"
)

// BenchmarkFoldAll folds a log of 1000 three-stage runs (the loadtest's
// shape, 18 events a run), one FoldAll per iteration.
//
//	go test -run '^$' -bench FoldAll -benchtime 3x ./projection
func BenchmarkFoldAll(b *testing.B) {
	srv := natstest.Start(b)
	bs := natstest.Bus(b, srv.ClientURL())
	ctx := context.Background()
	js := bs.JetStream()
	codec := bs.Codec()
	const runs, pipeline = 1000, "bench"
	def := events.Definition{Name: pipeline}
	for _, s := range []string{"one", "two", "three"} {
		def.Stages = append(def.Stages, events.StageDef{Name: s, Actions: []events.ActionDef{{Name: "a", Type: "noop", Pool: "default", RunOrder: 1}}})
	}
	at := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	total := 0
	for i := range runs {
		id := events.RunIDForTrigger(fmt.Sprint("t", i), at.UnixMilli())
		ps := []events.Payload{
			events.RunRequested{Pipeline: pipeline, Run: id, Definition: def, Trigger: events.Trigger{ID: id, Kind: "api"}},
			events.RunStarted{Run: id},
		}
		for _, s := range def.Stages {
			ref := events.ActionRef{Run: id, Stage: s.Name, Action: "a", Attempt: 1}
			ps = append(ps,
				events.StageStarted{Run: id, Stage: s.Name, Attempt: 1},
				events.ActionDispatched{Task: events.Task{ID: events.TaskID(id, s.Name, "a", 1), Pipeline: pipeline, Run: id,
					Stage: s.Name, Action: "a", Attempt: 1, Kind: "noop", Pool: "default"}},
				events.ActionStarted{ActionRef: ref, Worker: "w-1"},
				events.ActionSucceeded{ActionRef: ref, Worker: "w-1"},
				events.StageSucceeded{Run: id, Stage: s.Name, Attempt: 1},
			)
		}
		ps = append(ps, events.RunSucceeded{Run: id})
		for j, p := range ps {
			e, err := events.New(fmt.Sprintf("run/%s/%d", id, j), "/bench", id, at, p)
			if err != nil {
				b.Fatal(err)
			}
			raw, err := codec.Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.PublishAsync(events.RunSubject(pipeline, id), raw); err != nil {
				b.Fatal(err)
			}
			total++
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish did not complete")
	}
	cpu0 := cpuTime()
	for b.Loop() {
		states, n, skipped, err := projection.FoldAll(ctx, bs)
		if err != nil || n != total || skipped != 0 || len(states) != runs {
			b.Fatalf("FoldAll: %d events, %d skipped, %d runs, %v", n, skipped, len(states), err)
		}
	}
	b.ReportMetric(float64(total*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(total*b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
}

// cpuTime is the process's CPU time so far, server included (it is
// embedded), as the loadtest measures it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
