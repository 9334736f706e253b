package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
)

func eventsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "Read the event log"}
	var runID string
	var last uint64
	var follow bool
	tail := &cobra.Command{
		Use:   "tail [--run RUN]",
		Short: "Print the last events and follow new ones (all runs, or one)",
		Example: `  gantry events tail
  gantry events tail --run 0197... -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			print := func(e events.Event) {
				if g.json() {
					b, _ := json.Marshal(e.Envelope)
					fmt.Fprintln(g.stdout, string(b))
				} else {
					fmt.Fprintf(g.stdout, "%8d %s %-18s %s\n", e.Seq, e.Subject, e.Type[len("dev.gantry."):], describe(e))
				}
			}
			if runID != "" && !follow {
				p, err := conn.Bus.FindRun(cmd.Context(), runID)
				if err != nil {
					return err
				}
				evs, err := conn.Bus.ReadRun(cmd.Context(), p, runID, 0)
				for _, e := range evs {
					print(e)
				}
				return err
			}
			filter := events.SubjectEventsAll
			if runID != "" {
				filter = "gantry.events.*." + runID
			}
			end, err := conn.Bus.LastSeq(cmd.Context())
			if err != nil {
				return err
			}
			from := uint64(1)
			if runID == "" && end > last {
				from = end - last + 1
			}
			if end == 0 && !follow {
				return nil
			}
			err = conn.Bus.WatchAll(cmd.Context(), filter, from, func(e events.Event) bool {
				print(e)
				return follow || e.Seq < end
			})
			if err != nil && cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	tail.Flags().StringVar(&runID, "run", "", "only this run's events (from its first)")
	tail.Flags().Uint64VarP(&last, "last", "n", 20, "how many past events to print first (all runs)")
	tail.Flags().BoolVarP(&follow, "follow", "f", true, "keep following new events")
	cmd.AddCommand(tail)
	return cmd
}
