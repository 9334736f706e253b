package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/stack"
)

// Summary is one run of `gantry demo`.
type Summary struct {
	Run       string               `json:"run"`
	Pipeline  string               `json:"pipeline"`
	Status    run.Phase            `json:"status"`
	Reason    string               `json:"reason,omitempty"`
	Duration  string               `json:"duration"`
	Stages    []StageSummary       `json:"stages"`
	Artifacts []events.ArtifactRef `json:"artifacts"`
	Tests     *events.TestReported `json:"tests,omitempty"`
	Version   string               `json:"version,omitempty"`
}

// StageSummary is one stage of a demo run.
type StageSummary struct {
	Name     string    `json:"name"`
	Status   run.Phase `json:"status"`
	Duration string    `json:"duration"`
}

// DeploymentSummary is one deployment the demo caused.
type DeploymentSummary struct {
	ID         string              `json:"id"`
	Phase      deploydecider.Phase `json:"phase"`
	Reason     string              `json:"reason,omitempty"`
	RollbackOf string              `json:"rollbackOf,omitempty"`
	Run        string              `json:"run,omitempty"`
	Revision   string              `json:"revisionSha256"`
}

// HostServing is what a host answers over HTTP at the end of the demo.
type HostServing struct {
	Host   string `json:"host"`
	URL    string `json:"url"`
	Serves string `json:"serves"`
}

// DemoReport is what `gantry demo` prints: the good run, the broken one,
// the deployments and what every host serves at the end.
type DemoReport struct {
	Passed             bool                `json:"passed"`
	Good               Summary             `json:"good"`
	Broken             *Summary            `json:"broken,omitempty"`
	FailedDeployment   string              `json:"failedDeployment,omitempty"`
	RollbackDeployment string              `json:"rollbackDeployment,omitempty"`
	Deployments        []DeploymentSummary `json:"deployments"`
	Hosts              []HostServing       `json:"hosts"`
	Problems           []string            `json:"problems,omitempty"`
	DataDir            string              `json:"dataDir"`
}

func demoCmd(g *globals) *cobra.Command {
	var examples string
	var keep, noRollback bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run the example pipeline end to end, then a broken revision and its automatic rollback",
		Long: `Start everything in this process on an embedded NATS server with three local
agents in the example's deployment group, and run the example pipeline to the
end: check out, build, test, deploy one host at a time with HTTP health
checks. Then commit a revision whose ValidateService fails, run the pipeline
again, and show the failed deployment, the automatic rollback, and the
version each host serves at the end (the first one again, checked over
HTTP). Exits 0 only if all of that happened.

Without --data-dir a temporary directory is used and removed afterwards;
with it, the data directory is left for e.g.
  gantry state rebuild --verify --data-dir DIR`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !cmd.Flags().Changed("data-dir") && os.Getenv("GANTRY_DATA_DIR") == "" {
				dir, err := os.MkdirTemp("", "gantry-demo-")
				if err != nil {
					return err
				}
				g.dataDir = dir
				if !keep {
					defer os.RemoveAll(dir)
				}
			}
			l, err := startLocal(ctx, g, -1, examples, 2)
			if err != nil {
				return err
			}
			// Stopping runs the local agents' ApplicationStop hooks, so
			// the demo leaves no hello server behind.
			defer l.stop()
			if len(l.examples) == 0 {
				return errors.New("no example pipelines found")
			}
			rep := DemoReport{DataDir: g.dataDir, Deployments: []DeploymentSummary{}}
			err = demo(ctx, g, l, &rep, !noRollback)
			if err != nil {
				rep.Problems = append(rep.Problems, err.Error())
			}
			rep.Passed = len(rep.Problems) == 0
			if g.json() {
				if err := g.printJSON(rep); err != nil {
					return err
				}
			} else {
				printDemo(g, rep)
			}
			if !rep.Passed {
				return ExitError{Code: 1}
			}
			return nil
		},
	}
	c.Flags().StringVar(&examples, "examples", "", "examples directory (default: examples/ here or above)")
	c.Flags().BoolVar(&keep, "keep", false, "keep the temporary data directory")
	c.Flags().BoolVar(&noRollback, "no-rollback", false, "stop after the first run (skip the broken revision)")
	return c
}

// demo runs the good revision, then the broken one, recording problems in
// rep; an error is a problem that stops the demo.
func demo(ctx context.Context, g *globals, l *local, rep *DemoReport, rollback bool) error {
	name := l.examples[0].Pipeline.Name
	st, err := demoRun(ctx, g, l, name)
	if err != nil {
		return err
	}
	rep.Good = summarize(st)
	if st.Phase != run.Succeeded {
		return fmt.Errorf("run %s of %s %s: %s", st.Run, name, st.Phase, st.Reason)
	}
	group, hosts := l.group()
	if group == "" {
		return nil // no deployment group in the examples: build and test only
	}
	good := rep.Good.Version
	if err := checkServing(ctx, hosts, good, rep); err != nil {
		return err
	}
	if !rollback {
		return nil
	}
	// A revision whose ValidateService fails: commit a BROKEN marker.
	repo := filepath.Join(l.reposDir, l.examples[0].Name)
	if err := os.WriteFile(filepath.Join(repo, "deploy", "BROKEN"), []byte("ValidateService fails while this file is in the bundle\n"), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{{"add", "--all"}, {"commit", "--quiet", "-m", "Break ValidateService (gantry demo)"}} {
		if err := stack.Git(ctx, repo, args...); err != nil {
			return err
		}
	}
	if !g.json() {
		fmt.Fprintln(g.stderr, "demo: committed a revision whose ValidateService fails; running the pipeline again")
	}
	bad, err := demoRun(ctx, g, l, name)
	if err != nil {
		return err
	}
	b := summarize(bad)
	rep.Broken = &b
	if bad.Phase != run.Failed || bad.Stage("Deploy") == nil || bad.Stage("Deploy").Phase != run.Failed {
		return fmt.Errorf("the broken revision's run %s ended %s, want Failed in its Deploy stage", bad.Run, bad.Phase)
	}
	failed, rb, all, err := waitRollback(ctx, l, group, bad.Run)
	rep.Deployments = all
	if err != nil {
		return err
	}
	rep.FailedDeployment, rep.RollbackDeployment = failed, rb
	if err := checkServing(ctx, hosts, good, rep); err != nil {
		return err
	}
	// The failed deployment's and the rollback's last events came after the
	// broken run's own wait: the data directory left behind must have them
	// projected too, or `state rebuild --verify` finds the projection behind
	// the log (seen in CI: a deployment's projection 3 events short).
	return waitProjected(ctx, l.conn)
}

// demoRun triggers a run and follows it to its end, then waits for the
// projection to catch up.
func demoRun(ctx context.Context, g *globals, l *local, name string) (run.State, error) {
	runID, err := l.trigger(ctx, name)
	if err != nil {
		return run.State{}, err
	}
	if !g.json() {
		fmt.Fprintf(g.stderr, "demo: run %s of %s\n", runID, name)
	}
	p, err := findRun(ctx, l.conn, runID)
	if err != nil {
		return run.State{}, err
	}
	var st run.State
	err = l.conn.Bus.WatchRun(ctx, p, runID, func(e events.Event) bool {
		st = run.Evolve(st, e)
		if !g.json() {
			fmt.Fprintln(g.stderr, describe(e))
		}
		return !st.Done()
	})
	if err != nil {
		return st, err
	}
	return st, waitProjected(ctx, l.conn)
}

// waitRollback finds the deployment the run's deploy action made and the
// rollback the rollback service started for it, and waits for both to end.
func waitRollback(ctx context.Context, l *local, group, runID string) (failed, rollback string, all []DeploymentSummary, err error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		states, err := deploy.List(ctx, l.conn.Bus, group)
		if err != nil {
			return "", "", nil, err
		}
		all = all[:0]
		var f, r *deploydecider.State
		for i := range states {
			s := &states[i]
			d := DeploymentSummary{ID: s.ID(), Phase: s.Phase, Reason: s.Reason, RollbackOf: s.Created.RollbackOf, Revision: s.Created.Revision.SHA256}
			if s.Created.Trigger != nil {
				d.Run = s.Created.Trigger.Run
				if d.Run == runID {
					f = s
				}
			}
			all = append(all, d)
		}
		if f != nil {
			for i := range states {
				if states[i].Created.RollbackOf == f.ID() {
					r = &states[i]
				}
			}
		}
		if f != nil && r != nil && r.Phase != deploydecider.InProgress {
			if f.Phase != deploydecider.Failed {
				return f.ID(), r.ID(), all, fmt.Errorf("deployment %s is %s, want Failed", f.ID(), f.Phase)
			}
			if r.Phase != deploydecider.Succeeded {
				return f.ID(), r.ID(), all, fmt.Errorf("rollback %s is %s: %s", r.ID(), r.Phase, r.Reason)
			}
			return f.ID(), r.ID(), all, nil
		}
		if time.Now().After(deadline) {
			return "", "", all, fmt.Errorf("no finished rollback of run %s's deployment within 3 minutes", runID)
		}
		select {
		case <-ctx.Done():
			return "", "", all, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkServing asks every host for its version over HTTP.
func checkServing(ctx context.Context, hosts []stack.LocalAgent, want string, rep *DemoReport) error {
	rep.Hosts = rep.Hosts[:0]
	client := &http.Client{Timeout: 2 * time.Second}
	var wrong []string
	for _, h := range hosts {
		hs := HostServing{Host: h.Name, URL: h.URL("/version")}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, hs.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			hs.Serves = "unreachable: " + err.Error()
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			hs.Serves = strings.TrimSpace(string(b))
		}
		if hs.Serves != want {
			wrong = append(wrong, fmt.Sprintf("%s serves %q", h.Name, hs.Serves))
		}
		rep.Hosts = append(rep.Hosts, hs)
	}
	if len(wrong) > 0 {
		return fmt.Errorf("hosts do not serve %s: %s", want, strings.Join(wrong, "; "))
	}
	return nil
}

func summarize(st run.State) Summary {
	s := Summary{Run: st.Run, Pipeline: st.Pipeline, Status: st.Phase, Reason: st.Reason,
		Duration: dur(st.StartedAt, st.EndedAt, time.Now())}
	for _, stg := range st.Stages {
		s.Stages = append(s.Stages, StageSummary{stg.Name, stg.Phase, dur(stg.StartedAt, stg.EndedAt, time.Now())})
		for _, a := range stg.Actions {
			if a.Report != nil {
				s.Tests = a.Report
			}
			if v := a.Variables["APP_VERSION"]; v != "" {
				s.Version = v
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st.Artifacts)) {
		s.Artifacts = append(s.Artifacts, st.Artifacts[name])
	}
	return s
}

func printSummary(g *globals, title string, s Summary) {
	fmt.Fprintf(g.stdout, "\n%s: run %s of %s: %s in %s\n", title, s.Run, s.Pipeline, s.Status, s.Duration)
	if s.Reason != "" {
		fmt.Fprintf(g.stdout, "  reason: %s\n", s.Reason)
	}
	for _, st := range s.Stages {
		fmt.Fprintf(g.stdout, "  %s %-10s %-10s %s\n", mark(st.Status), st.Name, st.Status, st.Duration)
	}
	for _, a := range s.Artifacts {
		fmt.Fprintf(g.stdout, "  artifact %-8s %8d bytes  sha256:%s\n", a.Name, a.Size, a.SHA256)
	}
	if s.Tests != nil {
		fmt.Fprintf(g.stdout, "  tests: %d total, %d passed, %d failed, %d skipped\n", s.Tests.Total, s.Tests.Passed, s.Tests.Failed, s.Tests.Skipped)
	}
	if s.Version != "" {
		fmt.Fprintf(g.stdout, "  version built: %s\n", s.Version)
	}
}

func printDemo(g *globals, rep DemoReport) {
	printSummary(g, "good revision", rep.Good)
	if rep.Broken != nil {
		printSummary(g, "broken revision", *rep.Broken)
	}
	if len(rep.Deployments) > 0 {
		fmt.Fprintln(g.stdout, "\ndeployments:")
		for _, d := range rep.Deployments {
			note := ""
			switch {
			case d.ID == rep.FailedDeployment:
				note = "  <- failed: " + firstLine(d.Reason)
			case d.ID == rep.RollbackDeployment:
				note = "  <- automatic rollback of " + d.RollbackOf
			}
			fmt.Fprintf(g.stdout, "  %s  %-10s sha256:%.12s%s\n", d.ID, d.Phase, d.Revision, note)
		}
	}
	if len(rep.Hosts) > 0 {
		fmt.Fprintln(g.stdout, "\nwhat each host serves now (GET /version):")
		for _, h := range rep.Hosts {
			fmt.Fprintf(g.stdout, "  %-12s %-28s %s\n", h.Host, h.URL, h.Serves)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(g.stdout, "\nPROBLEM: %s\n", p)
	}
	if rep.Passed {
		fmt.Fprintln(g.stdout, "\ndemo passed")
	}
}

// group is the first example deployment group and its local hosts.
func (l *local) group() (string, []stack.LocalAgent) {
	names := slices.Sorted(maps.Keys(l.hosts))
	if len(names) == 0 {
		return "", nil
	}
	return names[0], l.hosts[names[0]]
}
