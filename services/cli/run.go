package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/lanes"
	"github.com/gantry-ci/gantry/services/source"
	"github.com/gantry-ci/gantry/services/stack"
)

func runCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "Start, watch, list and show runs"}
	cmd.AddCommand(runStartCmd(g), runWatchCmd(g), runListCmd(g), runShowCmd(g), runStopCmd(g), runRetryCmd(g))
	cmd.AddCommand(runRollbackCmd(g))
	return cmd
}

func runStartCmd(g *globals) *cobra.Command {
	var vars []string
	var commit, ref, id string
	var watch bool
	c := &cobra.Command{
		Use:   "start PIPELINE",
		Short: "Start a run of a pipeline",
		Long: `Publish a trigger for the pipeline and print the run it starts. The same
--id always names the same run, so a retried start never runs twice.`,
		Example: `  gantry run start hello
  gantry run start hello --var GREETING=hi --commit 3f2a9c1 --watch`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := source.Trigger{ID: id, Pipeline: args[0], Kind: "manual", Commit: commit, Ref: ref, Actor: "cli"}
			if t.ID == "" {
				t.ID = uuid.Must(uuid.NewV7()).String()
			}
			var err error
			if t.Variables, err = parseVars(vars); err != nil {
				return err
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			if conn.Embedded != nil {
				fmt.Fprintln(g.stderr, "note: no gantry dev or NATS server is running; the run is queued in", g.dataDir, "until services start")
			}
			kv, err := conn.Bus.JetStream().KeyValue(cmd.Context(), events.BucketPipelines)
			if err != nil {
				return err
			}
			if _, _, err := (source.Pipelines{KV: kv}).Get(cmd.Context(), t.Pipeline); err != nil {
				return err
			}
			runID, err := source.Publish(cmd.Context(), conn.Bus.JetStream(), conn.Validator, t)
			if err != nil {
				return err
			}
			if g.json() && !watch {
				return g.printJSON(map[string]string{"run": runID, "pipeline": t.Pipeline, "trigger": t.ID})
			}
			fmt.Fprintf(g.stdout, "run %s of %s requested (watch it: gantry run watch %s)\n", runID, t.Pipeline, runID)
			if !watch {
				return nil
			}
			return watchRun(cmd.Context(), g, conn, t.Pipeline, runID)
		},
	}
	c.Flags().StringArrayVar(&vars, "var", nil, "run variable NAME=value (repeatable)")
	c.Flags().StringVar(&commit, "commit", "", "commit to build (default: head of the source branch)")
	c.Flags().StringVar(&ref, "ref", "", "branch or tag to build")
	c.Flags().StringVar(&id, "id", "", "trigger ID; the same ID always starts the same one run (default: a new UUID)")
	c.Flags().BoolVarP(&watch, "watch", "w", false, "watch the run until it ends")
	return c
}

func runWatchCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "watch RUN",
		Short: "Watch a run live until it ends; exit 0 only if it succeeded",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			p, err := findRun(cmd.Context(), conn, args[0])
			if err != nil {
				return err
			}
			return watchRun(cmd.Context(), g, conn, p, args[0])
		},
	}
}

// findRun waits briefly for a run that was just requested to appear.
func findRun(ctx context.Context, conn *stack.Conn, id string) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := conn.Bus.FindRun(ctx, id)
		if err == nil || time.Now().After(deadline) {
			return p, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// watchRun folds the run's events as they arrive and redraws; with -o json
// it prints each event's envelope as a JSON line instead.
func watchRun(ctx context.Context, g *globals, conn *stack.Conn, pipeline, id string) error {
	var st run.State
	tty := isTerminal(g.stdout) && !g.json()
	lastLines := 0
	// Why the run waits comes from the pipeline's lane log, read again at
	// most every 2 s (a busy pipeline's lane is long), or when the run moved.
	var hold string
	var holdAt time.Time
	var holdSeq uint64
	redraw := func() {
		if lastLines > 0 {
			fmt.Fprintf(g.stdout, "\x1b[%dA\x1b[J", lastLines)
		}
		if st.LastSeq != holdSeq || time.Since(holdAt) > 2*time.Second {
			hold, holdAt, holdSeq = holdLine(ctx, conn, st), time.Now(), st.LastSeq
		}
		var sb strings.Builder
		renderRun(&sb, st, time.Now())
		sb.WriteString(hold)
		renderDeploys(&sb, deployProgress(ctx, conn, st))
		lastLines = strings.Count(sb.String(), "\n")
		io.WriteString(g.stdout, sb.String())
	}
	// Run events arrive on one goroutine; a ticker redraws in between, so
	// a deploy action's hosts (whose events are on the deployment's own
	// subject) and the durations move on a terminal.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evc := make(chan events.Event, 64)
	errc := make(chan error, 1)
	go func() {
		errc <- conn.Bus.WatchRun(wctx, pipeline, id, func(e events.Event) bool {
			select {
			case evc <- e:
				return true
			case <-wctx.Done():
				return false
			}
		})
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for !st.Done() {
		select {
		case e := <-evc:
			st = run.Evolve(st, e)
			switch {
			case g.json():
				b, _ := json.Marshal(e.Envelope)
				fmt.Fprintln(g.stdout, string(b))
			case tty:
				redraw()
			default:
				fmt.Fprintln(g.stdout, describe(e))
			}
		case <-tick.C:
			if tty && st.Run != "" {
				redraw()
			}
		case err := <-errc:
			if err != nil {
				return err
			}
			return errors.New("the run's event stream ended before the run did")
		}
	}
	if !g.json() && !tty {
		renderRun(g.stdout, st, time.Now())
		renderDeploys(g.stdout, deployProgress(ctx, conn, st))
	}
	if st.Phase != run.Succeeded {
		return ExitError{Code: 1}
	}
	return nil
}

// deployProgress finds the deployments the run's deploy actions created, by
// the group each action names and the trigger each deployment records.
func deployProgress(ctx context.Context, conn *stack.Conn, st run.State) []deploydecider.State {
	var out []deploydecider.State
	for si, sd := range st.Definition.Stages {
		for _, ad := range sd.Actions {
			group := ad.Configuration["group"]
			if ad.Type != "deploy" || group == "" || si >= len(st.Stages) || st.Stages[si].Phase == run.NotStarted {
				continue
			}
			all, err := deploy.List(ctx, conn.Bus, group)
			if err != nil {
				continue
			}
			for _, d := range all {
				if t := d.Created.Trigger; t != nil && t.Run == st.Run && t.Stage == sd.Name && t.Action == ad.Name {
					out = append(out, d)
				}
			}
		}
	}
	return out
}

// renderDeploys draws each deployment with a line per host and its last
// lifecycle step.
func renderDeploys(w io.Writer, ds []deploydecider.State) {
	for _, d := range ds {
		fmt.Fprintf(w, "  deployment %s to %s (%s): %s\n", d.ID(), d.Group(), d.Created.Config.Name, d.Phase)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, h := range d.Hosts {
			step := ""
			if n := len(h.Steps); n > 0 {
				step = fmt.Sprintf("%s %s", h.Steps[n-1].Event, h.Steps[n-1].Status)
			}
			extra := step
			if h.Reason != "" {
				extra = firstLine(h.Reason)
			}
			fmt.Fprintf(tw, "      %s\t%s\t%s\n", h.Name, h.Status, extra)
		}
		tw.Flush()
	}
}

// describe is one line per event for logs and non-terminal watchers.
func describe(e events.Event) string {
	ts := e.Time.Local().Format("15:04:05.000")
	switch p := e.Payload.(type) {
	case events.RunRequested:
		return fmt.Sprintf("%s run %s of %s requested (%s trigger)", ts, p.Run, p.Pipeline, p.Trigger.Kind)
	case events.RunStarted:
		return ts + " run started"
	case events.RunSucceeded:
		return ts + " run succeeded"
	case events.RunFailed:
		return fmt.Sprintf("%s run failed: %s", ts, p.Reason)
	case events.RunStopping:
		return fmt.Sprintf("%s run stop requested by %s (abandon: %t): %s", ts, orDash(p.Actor), p.Abandon, p.Reason)
	case events.RunStopped:
		return fmt.Sprintf("%s run stopped: %s", ts, p.Reason)
	case events.RunSuperseded:
		return fmt.Sprintf("%s run superseded: %s", ts, p.Reason)
	case events.ActionAbandoned:
		return fmt.Sprintf("%s action %s/%s abandoned", ts, p.Stage, p.Action)
	case events.StageStarted:
		return fmt.Sprintf("%s stage %s started", ts, p.Stage)
	case events.StageSucceeded:
		return fmt.Sprintf("%s stage %s succeeded", ts, p.Stage)
	case events.StageFailed:
		return fmt.Sprintf("%s stage %s failed: %s", ts, p.Stage, p.Reason)
	case events.StageRetrying:
		return fmt.Sprintf("%s stage %s retrying (attempt %d, %s) by %s", ts, p.Stage, p.Attempt, p.Mode, p.Actor)
	case events.ActionDispatched:
		return fmt.Sprintf("%s action %s/%s dispatched to %s/%s (attempt %d)", ts, p.Task.Stage, p.Task.Action, p.Task.Kind, p.Task.Pool, p.Task.Attempt)
	case events.ActionStarted:
		return fmt.Sprintf("%s action %s/%s started on %s", ts, p.Stage, p.Action, p.Worker)
	case events.ActionSucceeded:
		return fmt.Sprintf("%s action %s/%s succeeded", ts, p.Stage, p.Action)
	case events.ActionFailed:
		return fmt.Sprintf("%s action %s/%s failed: %s", ts, p.Stage, p.Action, p.Reason)
	case events.ArtifactStored:
		return fmt.Sprintf("%s artifact %s stored (%d bytes, sha256 %.12s)", ts, p.Artifact.Name, p.Artifact.Size, p.Artifact.SHA256)
	case events.TestReported:
		return fmt.Sprintf("%s tests of %s/%s: %d passed, %d failed, %d skipped", ts, p.Stage, p.Action, p.Passed, p.Failed, p.Skipped)
	case events.LogArchived:
		return fmt.Sprintf("%s log of %s/%s archived (%d lines)", ts, p.Stage, p.Action, p.Lines)
	case events.ActionHeartbeat:
		return fmt.Sprintf("%s action %s/%s still running on %s", ts, p.Stage, p.Action, p.Worker)
	case events.ActionWaiting:
		return fmt.Sprintf("%s approval %s/%s waits until %s%s", ts, p.Stage, p.Action, p.Expires, suffix(": ", firstLine(p.Instructions)))
	case events.ActionApproved:
		return fmt.Sprintf("%s approval %s/%s approved by %s%s", ts, p.Stage, p.Action, p.Actor, suffix(": ", firstLine(p.Comment)))
	case events.ActionRejected:
		return fmt.Sprintf("%s approval %s/%s rejected by %s%s", ts, p.Stage, p.Action, p.Actor, suffix(": ", firstLine(p.Comment)))
	case events.ConditionEvaluated:
		verdict := "failed"
		if p.Passed {
			verdict = "passed"
		}
		return fmt.Sprintf("%s stage %s %s rule %s (%s) %s: %s", ts, p.Stage, p.When, p.Rule, p.Type, verdict, firstLine(p.Reason))
	case events.StageSkipped:
		return fmt.Sprintf("%s stage %s skipped: %s", ts, p.Stage, p.Reason)
	}
	return ts + " " + e.Type
}

func dur(from, to, now time.Time) string {
	if from.IsZero() {
		return ""
	}
	if to.IsZero() {
		to = now
	}
	return to.Sub(from).Round(time.Millisecond).String()
}

func mark(p run.Phase) string {
	switch p {
	case run.Succeeded:
		return "✔"
	case run.Failed:
		return "✘"
	case run.Stopped, run.Abandoned, run.Superseded:
		return "■"
	case run.Skipped:
		return "↷"
	case run.Stopping:
		return "…"
	case run.Running, run.Dispatched:
		return "▶"
	case run.Requested:
		return "…"
	}
	return "·"
}

// renderRun draws a run as stages and their actions.
func renderRun(w io.Writer, st run.State, now time.Time) {
	phase := st.Phase
	fmt.Fprintf(w, "run %s  pipeline %s  %s %s  %s\n", st.Run, st.Pipeline, mark(phase), orDash(string(phase)), dur(st.StartedAt, st.EndedAt, now))
	if st.Trigger.Commit != "" {
		fmt.Fprintf(w, "  commit %s\n", st.Trigger.Commit)
	}
	if rb := st.Rollback; rb != nil {
		fmt.Fprintf(w, "  kind %s: stage %s with the revision, artifacts and variables of run %s\n", st.Kind, rb.Stage, rb.Run)
	}
	if st.SupersededBy != "" {
		fmt.Fprintf(w, "  superseded by run %s\n", st.SupersededBy)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range st.Stages {
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\t\n", mark(s.Phase), s.Name, orDash(string(s.Phase)), dur(s.StartedAt, s.EndedAt, now))
		for _, a := range s.Actions {
			extra := ""
			if a.Report != nil {
				extra = fmt.Sprintf("tests %d/%d passed", a.Report.Passed, a.Report.Total)
			}
			if a.Reason != "" {
				extra = firstLine(a.Reason)
			}
			fmt.Fprintf(tw, "      %s %s (%s)\t%s\t%s\t%s\n", mark(a.Phase), a.Name, a.Type, orDash(string(a.Phase)), dur(a.StartedAt, a.EndedAt, now), extra)
		}
		if len(s.Checks) > 0 {
			tw.Flush()
			renderChecks(w, s)
		}
	}
	tw.Flush()
	if st.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", st.Reason)
	}
	renderWaiting(w, st)
}

// suffix is sep and s, or nothing when s is empty.
func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	if len(l) > 100 {
		l = l[:100] + "…"
	}
	return l
}

func orDash(s string) string {
	if s == "" {
		return "Pending"
	}
	return s
}

func runListCmd(g *globals) *cobra.Command {
	var pipeline string
	var limit int
	c := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			states, err := listRuns(cmd.Context(), conn, pipeline)
			if err != nil {
				return err
			}
			if limit > 0 && len(states) > limit {
				states = states[:limit]
			}
			if g.json() {
				type row struct {
					Run       string    `json:"run"`
					Pipeline  string    `json:"pipeline"`
					Phase     run.Phase `json:"phase"`
					Trigger   string    `json:"trigger"`
					Requested time.Time `json:"requestedAt"`
					Ended     time.Time `json:"endedAt,omitzero"`
				}
				rows := []row{}
				for _, s := range states {
					rows = append(rows, row{s.Run, s.Pipeline, s.Phase, s.Trigger.Kind, s.RequestedAt, s.EndedAt})
				}
				return g.printJSON(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATUS\tSTARTED\tDURATION\tCURRENT")
			now := time.Now()
			lanesOf := map[string]*lanes.State{} // read once per pipeline, when a run waits
			for _, s := range states {
				cur := current(s)
				if cur == "" && !s.Phase.Done() && s.Run != "" {
					l, ok := lanesOf[s.Pipeline]
					if !ok {
						if f, err := readLane(cmd.Context(), conn, s.Pipeline); err == nil {
							l = &f
						}
						lanesOf[s.Pipeline] = l
					}
					if h, ok := l.HoldOf(s.Run); ok {
						cur = "waits for " + h.Stage
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Run, s.Pipeline, orDash(string(s.Phase)),
					s.RequestedAt.Local().Format(time.DateTime), dur(s.StartedAt, s.EndedAt, now), cur)
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&pipeline, "pipeline", "", "only runs of this pipeline")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many runs (0: all)")
	return c
}

func current(s run.State) string {
	for _, st := range s.Stages {
		if st.Phase == run.Running || st.Phase == run.Failed {
			return st.Name
		}
	}
	return ""
}

// listRuns reads the runs projection, newest first.
func listRuns(ctx context.Context, conn *stack.Conn, pipeline string) ([]run.State, error) {
	kv, err := conn.Bus.JetStream().KeyValue(ctx, events.BucketRuns)
	if err != nil {
		return nil, err
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, err
	}
	var out []run.State
	if keys == nil {
		return out, nil
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var s run.State
		if json.Unmarshal(e.Value(), &s) != nil || (pipeline != "" && s.Pipeline != pipeline) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b run.State) int { return strings.Compare(b.Run, a.Run) })
	return out, nil
}

func runShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run folded from its event log",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			st, err := foldRun(cmd.Context(), conn, args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(st)
			}
			renderRun(g.stdout, st, time.Now())
			io.WriteString(g.stdout, holdLine(cmd.Context(), conn, st))
			renderDeploys(g.stdout, deployProgress(cmd.Context(), conn, st))
			if len(st.Artifacts) > 0 {
				fmt.Fprintln(g.stdout, "  artifacts:")
				for _, name := range slices.Sorted(maps.Keys(st.Artifacts)) {
					a := st.Artifacts[name]
					fmt.Fprintf(g.stdout, "    %s  %d bytes  sha256:%s\n", name, a.Size, a.SHA256)
				}
			}
			return nil
		},
	}
}

func foldRun(ctx context.Context, conn *stack.Conn, id string) (run.State, error) {
	p, err := conn.Bus.FindRun(ctx, id)
	if err != nil {
		return run.State{}, err
	}
	evs, err := conn.Bus.ReadRun(ctx, p, id, 0)
	if err != nil {
		return run.State{}, err
	}
	return run.Fold(run.State{}, evs...), nil
}

// parseVars turns repeated --var NAME=value flags into a map, nil when
// there are none.
func parseVars(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: write it as NAME=value", kv)
		}
		out[k] = v
	}
	return out, nil
}
