package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/projection"
)

func stateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "state", Short: "Manage projections folded from the event log"}
	var verify bool
	rebuild := &cobra.Command{
		Use:   "rebuild [--verify]",
		Short: "Rebuild the runs and deployments projections from the logs",
		Long: `Fold every run from the event log and every deployment (with each host's
state) from the deployment log, in memory, then swap the result into the
runs and deployments projections: changed entries are overwritten and
entries the logs no longer hold are deleted. Nothing is emptied first, and
a rebuild that fails or is interrupted puts back what it wrote, so the old
projections stay as they were. With --verify, first compare every rebuilt
state with the live one and exit non-zero if any differs. Works offline on
a data directory (--data-dir).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			rep, err := projection.Rebuild(cmd.Context(), conn.Bus, verify)
			if err != nil {
				return err
			}
			if g.json() {
				if err := g.printJSON(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(g.stdout, "rebuilt %d runs and %d deployments from %d events in %s (%.0f events/s)", rep.Runs, rep.Deployments, rep.Events, rep.Duration.Round(1e6), rep.EventsPerSec)
				if rep.Skipped > 0 {
					fmt.Fprintf(g.stdout, "; %d undecodable events skipped (see the GANTRY_DLQ stream)", rep.Skipped)
				}
				fmt.Fprintln(g.stdout)
				for _, m := range rep.Mismatches {
					if m.Deployment != "" {
						fmt.Fprintf(g.stdout, "MISMATCH deployment %s: %s\n", m.Deployment, m.Reason)
						continue
					}
					fmt.Fprintf(g.stdout, "MISMATCH run %s: %s\n", m.Run, m.Reason)
				}
				if verify && rep.Verified {
					fmt.Fprintln(g.stdout, "verified: every run's and deployment's live state equals its state rebuilt from the log")
				}
			}
			if verify && !rep.Verified {
				return ExitError{Code: 1}
			}
			return nil
		},
	}
	rebuild.Flags().BoolVar(&verify, "verify", false, "exit non-zero unless every live run state equals the rebuilt one")
	cmd.AddCommand(rebuild)
	return cmd
}
