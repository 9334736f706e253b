package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/source"
)

// triggerCmd reads the trigger decisions of a pipeline: every webhook
// delivery and poll that a trigger accepted (with the run it started) or
// filtered out (with why).
func triggerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "trigger", Short: "Read why webhooks and polls did or did not start runs"}
	var last int
	list := &cobra.Command{
		Use:   "list PIPELINE",
		Short: "List a pipeline's trigger decisions: accepted (with the run) or filtered (with why)",
		Example: `  gantry trigger list hello
  gantry trigger list hello -n 5 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := events.CheckName("pipeline", args[0]); err != nil {
				return err
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			evs, err := source.ReadDecisions(cmd.Context(), conn.Bus, args[0], last)
			if err != nil {
				return err
			}
			if g.json() {
				for _, e := range evs {
					b, _ := json.Marshal(e.Envelope)
					fmt.Fprintln(g.stdout, string(b))
				}
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tDECISION\tSOURCE\tEVENT\tREF\tCOMMIT\tRUN\tREASON")
			for _, e := range evs {
				if line := decisionLine(e, false); line != "" {
					fmt.Fprintln(tw, line)
				}
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVarP(&last, "last", "n", 50, "how many of the newest decisions to print (0: all)")
	tail := &cobra.Command{
		Use:   "tail [PIPELINE]",
		Short: "Print the trigger decisions of one pipeline or all, and follow new ones",
		Example: `  gantry trigger tail
  gantry trigger tail hello -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pipeline := ""
			if len(args) == 1 {
				if err := events.CheckName("pipeline", args[0]); err != nil {
					return err
				}
				pipeline = args[0]
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			return source.WatchDecisions(cmd.Context(), conn.Bus, pipeline, func(e events.Event) bool {
				if g.json() {
					b, _ := json.Marshal(e.Envelope)
					fmt.Fprintln(g.stdout, string(b))
				} else if line := decisionLine(e, true); line != "" {
					fmt.Fprintln(g.stdout, line)
				}
				return true
			})
		},
	}
	cmd.AddCommand(list, tail)
	return cmd
}

// decisionLine renders a decision as a table row (tabs) or, with
// pipeline, a line of its own that names the pipeline.
func decisionLine(e events.Event, pipeline bool) string {
	var ch events.TriggerChange
	var name, decision, run, reason string
	switch p := e.Payload.(type) {
	case events.TriggerAccepted:
		ch, name, decision, run, reason = p.Change, p.Pipeline, "accepted", p.Run, p.Reason
	case events.TriggerFiltered:
		ch, name, decision, run, reason = p.Change, p.Pipeline, "filtered", "-", p.Reason
	default:
		return ""
	}
	ev := ch.Event
	if ch.Action != "" {
		ev += "/" + ch.Action
	}
	when := e.Time.Local().Format("2006-01-02 15:04:05")
	if pipeline {
		return fmt.Sprintf("%s %s %s %s %s %s %s %.12s run %s: %s", when, name, decision, ch.Source, ch.Forge, ev, ch.Ref, ch.Commit, run, reason)
	}
	return fmt.Sprintf("%s\t%s\t%s %s\t%s\t%s\t%.12s\t%s\t%s", when, decision, ch.Source, ch.Forge, ev, ch.Ref, ch.Commit, run, reason)
}
