package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/lanes"
	"github.com/gantry-ci/gantry/services/source"
	"github.com/gantry-ci/gantry/services/stack"
)

// stageCmd is `gantry stage disable|enable|list`: the transitions into a
// pipeline's stages, and which runs are in or waiting for each stage.
func stageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stage",
		Short: "Disable, enable and list the transitions into a pipeline's stages",
		Long: `A transition is the way into a stage. While it is disabled no run enters the
stage: runs that reach it wait before it. In SUPERSEDED mode (the default) the
waiting runs collapse to the newest one, the older ones end Superseded; in
QUEUED mode they queue; in PARALLEL mode they all wait. When the transition is
enabled again, the waiting run (QUEUED: the first of them; PARALLEL: all of
them) enters.

  gantry stage disable webshop Production --reason "release freeze until Monday"
  gantry stage list webshop
  gantry stage enable webshop Production

Who disabled a transition and why is recorded in the pipeline's lane log
(gantry.events.<pipeline>._lane) and shown by 'gantry stage list'.`,
	}
	cmd.AddCommand(stageTransitionCmd(g, true), stageTransitionCmd(g, false), stageListCmd(g))
	return cmd
}

func stageTransitionCmd(g *globals, disable bool) *cobra.Command {
	var reason string
	use, short, verb := "enable PIPELINE STAGE", "Enable the transition into a stage: the run waiting before it enters", command.StageEnable
	if disable {
		use, short, verb = "disable PIPELINE STAGE --reason TEXT", "Disable the transition into a stage: runs wait before it", command.StageDisable
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if disable && strings.TrimSpace(reason) == "" {
				return fmt.Errorf("stage disable: --reason is required: say why runs wait (it is shown to everyone in gantry stage list)")
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			_, err = (command.Client{Conn: conn.Bus.Conn()}).Do(cmd.Context(), verb,
				command.Request{Pipeline: args[0], Stage: args[1], Reason: reason, Actor: actor()})
			if err != nil {
				return fmt.Errorf("stage %s %s: %w", args[0], args[1], err)
			}
			state := "enabled"
			if disable {
				state = "disabled"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "transition into %s of %s %s\n", args[1], args[0], state)
			return nil
		},
	}
	if disable {
		c.Flags().StringVar(&reason, "reason", "", "why runs must wait before the stage (required; recorded with your user@host)")
	}
	return c
}

// stageListCmd is `gantry stage list`: lanes.StagesOf, as a table or JSON.
func stageListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list PIPELINE",
		Short: "List a pipeline's stages: transition (enabled or disabled, by whom, why), the run in each and the runs waiting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.open(ctx, "gantry-cli", false)
			if err != nil {
				return err
			}
			defer c.Close()
			kv, err := c.Bus.JetStream().KeyValue(ctx, events.BucketPipelines)
			if err != nil {
				return err
			}
			def, _, err := source.Pipelines{KV: kv}.Get(ctx, args[0])
			if err != nil {
				return err
			}
			l, err := readLane(ctx, c, args[0])
			if err != nil {
				return err
			}
			out := lanes.StagesOf(def, l)
			if g.json() {
				return g.printJSON(out)
			}
			fmt.Fprintf(g.stdout, "pipeline %s, execution mode %s\n", out.Pipeline, out.ExecutionMode)
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STAGE\tTRANSITION\tIN\tWAITING")
			for _, r := range out.Stages {
				tr := r.Transition
				if tr == "disabled" {
					tr = fmt.Sprintf("disabled by %s since %s: %s", dash(r.DisabledBy), r.Since, r.Reason)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Stage, tr, dash(strings.Join(r.In, " ")), dash(strings.Join(r.Waiting, " ")))
			}
			return tw.Flush()
		},
	}
}

// holdLine says which stage a run waits to enter and why (a disabled
// transition, a run in the stage, runs queued ahead), or "" when it does
// not wait or the lane cannot be read: the run's own log only shows that
// the stage has not started.
func holdLine(ctx context.Context, conn *stack.Conn, st run.State) string {
	if !lanes.MayWait(st) {
		return ""
	}
	l, err := readLane(ctx, conn, st.Pipeline)
	if err != nil {
		return ""
	}
	if h, ok := l.HoldOf(st.Run); ok {
		return "  " + h.String() + "\n"
	}
	return ""
}

// readLane folds a pipeline's lane log: its stage locks, waiting runs and
// disabled transitions.
func readLane(ctx context.Context, conn *stack.Conn, pipeline string) (lanes.State, error) {
	evs, err := conn.Bus.ReadRun(ctx, pipeline, events.LaneToken, 0)
	if err != nil {
		return lanes.State{}, fmt.Errorf("read the lane of %s: %w", pipeline, err)
	}
	return lanes.Fold(lanes.State{}, evs...), nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
