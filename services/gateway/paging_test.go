package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// TestRunsPaging seeds the runs projection with 1,200 runs directly and
// pages through them: newest first, every run once, filters applied
// before the limit, and a cursor that ends.
func TestRunsPaging(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	kv, err := e.conn.Bus.JetStream().KeyValue(ctx, events.BucketRuns)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1200
	phases := []run.Phase{run.Succeeded, run.Failed, run.Running}
	var ids []string
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := uuid.Must(uuid.NewV7()).String()
		ids = append(ids, id)
		st := run.State{Run: id, Pipeline: []string{"alpha", "beta"}[i%2], Phase: phases[i%3],
			Trigger: events.Trigger{Kind: "manual"}, RequestedAt: t0.Add(time.Duration(i) * time.Second)}
		b, _ := json.Marshal(st)
		if _, err := kv.Put(ctx, id, b); err != nil {
			t.Fatal(err)
		}
	}
	slices.Reverse(ids) // newest first
	all := func(query string, limit int) []gateway.RunSummary {
		var out []gateway.RunSummary
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > n {
				t.Fatal("paging does not end")
			}
			r := e.do("GET", fmt.Sprintf("/api/v1/runs?limit=%d&cursor=%s%s", limit, cursor, query), auth.Viewer, nil)
			e.want(r, 200, "list runs")
			var p gateway.RunPage
			r.json(t, &p)
			if len(p.Runs) > limit {
				t.Fatalf("page of %d runs, limit %d", len(p.Runs), limit)
			}
			out = append(out, p.Runs...)
			if p.Next == "" {
				return out
			}
			cursor = p.Next
		}
	}
	// The index fills from a watch: wait until it holds every run.
	e.eventually("the index to hold every run", func() bool {
		var p gateway.RunPage
		e.do("GET", "/api/v1/runs?limit=500", auth.Viewer, nil).json(t, &p)
		return len(p.Runs) == 500 && p.Runs[0].Run == ids[0]
	})
	got := all("", 100)
	gotIDs := make([]string, len(got))
	for i, s := range got {
		gotIDs[i] = s.Run
	}
	if !slices.Equal(gotIDs, ids) {
		t.Fatalf("paged %d runs, want all %d newest first", len(gotIDs), n)
	}
	beta := all("&pipeline=beta", 7)
	if len(beta) != n/2 {
		t.Errorf("pipeline=beta: %d runs, want %d", len(beta), n/2)
	}
	for _, s := range beta {
		if s.Pipeline != "beta" {
			t.Fatalf("pipeline=beta listed %+v", s)
		}
	}
	failedBeta := all("&pipeline=beta&phase=Failed", 50)
	if len(failedBeta) != n/6 {
		t.Errorf("beta Failed: %d runs, want %d", len(failedBeta), n/6)
	}
	if r := e.do("GET", "/api/v1/runs?pipeline=gamma", auth.Viewer, nil); !strings.Contains(string(r.body), `"runs": []`) {
		t.Errorf("unknown pipeline: %s, want an empty list", r.body)
	}
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "phase=Sleeping", "pipeline=a%20b", "cursor=..%2Fx"} {
		r := e.do("GET", "/api/v1/runs?"+q, auth.Viewer, nil)
		if r.status != 400 {
			t.Errorf("%s: %d, want 400", q, r.status)
		}
	}
	// The pipeline list shows each pipeline's latest run from the same index.
	r := e.do("GET", "/api/v1/pipelines", auth.Viewer, nil)
	e.want(r, 200, "list pipelines")
	// A deleted projection entry leaves the list.
	if err := kv.Delete(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	e.eventually("the deleted run to leave the list", func() bool {
		var p gateway.RunPage
		e.do("GET", "/api/v1/runs?limit=1", auth.Viewer, nil).json(t, &p)
		return len(p.Runs) == 1 && p.Runs[0].Run == ids[1]
	})
}
