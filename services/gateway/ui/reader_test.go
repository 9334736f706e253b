package ui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/gateway/ui"
	"github.com/gantry-ci/gantry/services/source"
)

// TestHistoryOfAThousandRuns pages through 1,000 runs of a pipeline read
// from a real event stream: every page is newest first, no run is shown
// twice or skipped, and the pipeline list names the newest as latest.
func TestHistoryOfAThousandRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	def := events.Definition{Name: "big", Stages: []events.StageDef{
		{Name: "build", Actions: []events.ActionDef{{Name: "compile", Type: "build", Pool: "default", RunOrder: 1}}},
	}}
	kv, err := b.JetStream().KeyValue(ctx, events.BucketPipelines)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []events.Definition{def, {Name: "other", Stages: def.Stages}} {
		if _, err := (source.Pipelines{KV: kv}).Put(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1000
	base := time.Now().Add(-time.Hour)
	var ids []string // oldest first
	for i := range n {
		id := events.RunIDForTrigger(fmt.Sprint("t", i), base.Add(time.Duration(i)*time.Second).UnixMilli())
		e, err := events.New(events.RunID(id, "requested"), "/test", id, base, events.RunRequested{
			Pipeline: "big", Run: id, Definition: def, Trigger: events.Trigger{ID: fmt.Sprint("t", i), Kind: "api"}})
		if err != nil {
			t.Fatal(err)
		}
		zero := uint64(0)
		if _, _, err := b.Append(ctx, "big", e, &zero); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	r := ui.BusReader{Bus: b}
	ps, err := r.Pipelines(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "big" || ps[0].Runs != n || ps[0].Latest == nil || ps[0].Latest.Run != ids[n-1] {
		t.Fatalf("pipelines %+v: want big with %d runs, latest %s, then other", ps, n, ids[n-1])
	}
	if ps[1].Latest != nil || ps[1].Runs != 0 {
		t.Errorf("pipeline other: %+v, want no runs", ps[1])
	}

	// Walk the history pages in the browser's way: follow "Older" links.
	web := httptest.NewServer(ui.Handler(ui.Config{Reader: r}))
	defer web.Close()
	runLink := regexp.MustCompile(`href="/ui/runs/([0-9a-f-]+)"`)
	older := regexp.MustCompile(`rel="next" href="([^"]+)"`)
	next := "/ui/pipelines/big?limit=100"
	var got []string
	for pages := 0; next != ""; pages++ {
		if pages > n/100 {
			t.Fatalf("more than %d pages", n/100)
		}
		res, err := web.Client().Get(web.URL + next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", next, res.StatusCode, body)
		}
		for _, m := range runLink.FindAllSubmatch(body, -1) {
			got = append(got, string(m[1]))
		}
		next = ""
		if m := older.FindSubmatch(body); m != nil {
			next = string(regexp.MustCompile(`&amp;`).ReplaceAll(m[1], []byte("&")))
		}
	}
	if len(got) != n {
		t.Fatalf("the pages showed %d runs, want %d", len(got), n)
	}
	for i, id := range got {
		if id != ids[n-1-i] {
			t.Fatalf("run %d of the history is %s, want %s (newest first)", i, id, ids[n-1-i])
		}
	}
}

// TestDeploymentsFromTheProjection reads deployments as the projector
// writes them, newest first, filtered by group, and 404s an unknown one.
func TestDeploymentsFromTheProjection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	kv, err := b.JetStream().KeyValue(ctx, events.BucketDeployments)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC()
	for i, g := range []string{"web", "api", "web"} {
		st := deploydecider.State{
			Created: events.DeploymentCreated{Deployment: fmt.Sprint("d", i), Group: g, Application: "shop"},
			Phase:   deploydecider.Succeeded, Started: t0.Add(time.Duration(i) * time.Minute),
			Hosts: []*deploydecider.Host{{Name: g + "-1", Status: "Succeeded", Steps: []deploydecider.Step{{Event: "ValidateService", Status: "Succeeded"}}}},
		}
		v, _ := json.Marshal(st)
		if _, err := kv.Put(ctx, st.ID(), v); err != nil {
			t.Fatal(err)
		}
	}
	r := ui.BusReader{Bus: b}
	ds, err := r.Deployments(ctx, "web", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].ID() != "d2" || ds[1].ID() != "d0" {
		t.Errorf("web deployments %v: want d2 then d0", ds)
	}
	d, err := r.Deployment(ctx, "d1")
	if err != nil || d.Group() != "api" || len(d.Hosts) != 1 || d.Hosts[0].Steps[0].Event != "ValidateService" {
		t.Errorf("deployment d1: %+v, %v", d, err)
	}
	if _, err := r.Deployment(ctx, "nope"); !errors.Is(err, ui.ErrNotFound) {
		t.Errorf("unknown deployment: %v, want ErrNotFound", err)
	}
	if _, err := r.Run(ctx, "nope"); !errors.Is(err, ui.ErrNotFound) {
		t.Errorf("unknown run: %v, want ErrNotFound", err)
	}
}
