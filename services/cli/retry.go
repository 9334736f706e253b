package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/command"
)

// runRetryCmd is `gantry run retry RUN --stage S [--all]`: a request on
// gantry.cmd.retry, answered by a conductor.
func runRetryCmd(g *globals) *cobra.Command {
	var stage, reason string
	var all bool
	c := &cobra.Command{
		Use:   "retry RUN --stage STAGE [--all]",
		Short: "Run a failed or stopped stage again in the same run",
		Long: `Retry runs a stage of a Failed or Stopped run again, in the same run: the
run becomes Running again and the stage starts a new attempt. By default only
the stage's actions that did not succeed run again (each as a new attempt,
with a new task ID); the ones that succeeded keep their results, artifacts
and variables. With --all every action of the stage runs again.

When the stage succeeds, the run carries on with the stages after it, so a
run that failed on a flaky test can still end Succeeded without a new run.

A run that is still running, one that succeeded or was superseded, and a
stage that did not fail or stop cannot be retried. For retries without a
person, give the stage onFailure: {result: RETRY, retries: N} in the
pipeline file (docs/pipeline.md).`,
		Example: `  gantry run retry 0193c2a0-... --stage Test
  gantry run retry 0193c2a0-... --stage Deploy --all --reason "registry was down"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if stage == "" {
				return fmt.Errorf("retry %s: --stage is required (the stage that failed or was stopped)", args[0])
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			reply, err := (command.Client{Conn: conn.Bus.Conn()}).Do(cmd.Context(), command.Retry,
				command.Request{Run: args[0], Stage: stage, All: all, Reason: reason, Actor: actor()})
			if err != nil {
				return fmt.Errorf("retry %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s of %s: %s (stage %s retrying)\n", reply.Run, reply.Pipeline, reply.Phase, reply.Stage)
			return nil
		},
	}
	c.Flags().StringVar(&stage, "stage", "", "the stage to run again (required)")
	c.Flags().BoolVar(&all, "all", false, "run every action of the stage again, not only those that did not succeed")
	c.Flags().StringVar(&reason, "reason", "", "why, recorded in the run's log")
	return c
}
