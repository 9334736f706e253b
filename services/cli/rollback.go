package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/command"
)

// runRollbackCmd is `gantry run rollback PIPELINE --stage S [--to RUN]`: a
// request on gantry.cmd.stage-rollback, answered by a conductor.
func runRollbackCmd(g *globals) *cobra.Command {
	var stage, to string
	c := &cobra.Command{
		Use:   "rollback PIPELINE --stage STAGE [--to RUN]",
		Short: "Roll a stage back: re-run it with an earlier run's revision, artifacts and variables",
		Long: `Starts a new run of kind ROLLBACK that runs only STAGE, with the source
revision, artifacts (the same objects, keys and digests) and variables of an
earlier run in which STAGE succeeded: by default the latest such run that was
not itself a rollback, or the run given with --to.

A stage's onFailure: {result: ROLLBACK} in the pipeline file does the same
automatically when the stage fails. Not available in PARALLEL mode.

  gantry run rollback webshop --stage Production
  gantry run rollback webshop --stage Production --to 01a2154b-ea92-7634-ac3c-6b12b7b33cb5
  gantry run watch RUN    # follow the rollback run it printed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if stage == "" {
				return fmt.Errorf("rollback %s: --stage is required: which stage to roll back", args[0])
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			reply, err := (command.Client{Conn: conn.Bus.Conn()}).Do(cmd.Context(), command.StageRollback,
				command.Request{Pipeline: args[0], Stage: stage, To: to, Actor: actor()})
			if err != nil {
				return fmt.Errorf("rollback %s stage %s: %w", args[0], stage, err)
			}
			if g.json() {
				return g.printJSON(reply)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rollback run %s of %s stage %s: %s\n", reply.Run, reply.Pipeline, stage, reply.Phase)
			return nil
		},
	}
	c.Flags().StringVar(&stage, "stage", "", "the stage to roll back (required)")
	c.Flags().StringVar(&to, "to", "", "the run to roll back to (default: the latest run in which the stage succeeded)")
	return c
}
