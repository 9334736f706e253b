package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
)

// approveCmds are `gantry approve` and `gantry reject`: requests on
// gantry.cmd.approve and gantry.cmd.reject, answered by a conductor.
func approveCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{answerCmd(g, command.Approve), answerCmd(g, command.Reject)}
}

func answerCmd(g *globals, verb string) *cobra.Command {
	var stage, action, comment string
	outcome := "The action succeeds and the run goes on."
	if verb == command.Reject {
		outcome = "The action fails, and with it its stage and the run; the comment becomes the reason."
	}
	c := &cobra.Command{
		Use:   verb + " RUN",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a manual approval that waits in a run",
		Long: fmt.Sprintf(`%s a manual approval (an action of type approval) that waits in RUN.
%s

Who answered (USER@HOST) and the comment are recorded in the run's log as
dev.gantry.action.%s. When only one approval waits, RUN is enough; when
several wait, name one with --stage and --action (the error lists them).
'gantry run show RUN' shows what waits, its instructions and until when.

An approval that is not waiting (already answered, timed out, not reached,
or in a run that ended) is refused. An approval that names its approvers
refuses everyone else (the actor is USER@HOST as the CLI reports it: who may
call gantry.cmd.%s at all is the NATS permission that guards it). Nobody
answering fails the approval at its timeout.`, strings.ToUpper(verb[:1])+verb[1:], outcome, pastTense(verb), verb),
		Example: fmt.Sprintf(`  gantry %[1]s 01933f2c-5d1e-7c3b-9a41-6f2e8d7c1b20 --comment "staging looks good"
  gantry %[1]s 01933f2c-5d1e-7c3b-9a41-6f2e8d7c1b20 --stage Production --action sign-off`, verb),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			reply, err := (command.Client{Conn: conn.Bus.Conn()}).Do(cmd.Context(), verb,
				command.Request{Run: args[0], Stage: stage, Action: action, Comment: comment, Actor: actor()})
			if err != nil {
				return fmt.Errorf("%s %s: %w", verb, args[0], err)
			}
			if g.json() {
				return g.printJSON(reply)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: run %s of %s, stage %s: run %s\n", pastTense(verb), reply.Run, reply.Pipeline, reply.Stage, reply.Phase)
			return nil
		},
	}
	c.Flags().StringVar(&stage, "stage", "", "the stage of the approval (needed when several wait)")
	c.Flags().StringVar(&action, "action", "", "the approval action (needed when several wait)")
	c.Flags().StringVar(&comment, "comment", "", "why, recorded with your answer")
	return c
}

func pastTense(verb string) string {
	if verb == command.Reject {
		return "rejected"
	}
	return "approved"
}

// renderWaiting shows the approvals that wait in a run and how to answer,
// and who answered those that were.
func renderWaiting(w io.Writer, st run.State) {
	for _, s := range st.Stages {
		for _, a := range s.Actions {
			if ap := a.Approval; ap != nil && ap.Decision != "" {
				fmt.Fprintf(w, "  approval %s/%s %s by %s%s\n", s.Name, a.Name, ap.Decision, ap.Actor, suffix(": ", firstLine(ap.Comment)))
				continue
			}
			if !a.Waiting() {
				continue
			}
			ap := a.Approval
			fmt.Fprintf(w, "  approval %s/%s waits until %s\n", s.Name, a.Name, ap.Expires)
			if ap.Instructions != "" {
				fmt.Fprintf(w, "    instructions: %s\n", ap.Instructions)
			}
			if ap.URL != "" {
				fmt.Fprintf(w, "    review: %s\n", ap.URL)
			}
			if len(ap.Approvers) > 0 {
				fmt.Fprintf(w, "    approvers: %s\n", strings.Join(ap.Approvers, ", "))
			}
			fmt.Fprintf(w, "    answer: gantry approve %s --stage %s --action %s --comment …  (or gantry reject …)\n", st.Run, s.Name, a.Name)
		}
	}
}

// renderChecks shows the condition rules evaluated for a stage's attempt.
func renderChecks(w io.Writer, s run.Stage) {
	for _, ch := range s.Checks {
		switch {
		case ch.Evaluated && ch.Passed:
			fmt.Fprintf(w, "      ✔ %s rule %s: %s\n", ch.When, ch.Rule, firstLine(ch.Reason))
		case ch.Evaluated:
			fmt.Fprintf(w, "      ✘ %s rule %s: %s\n", ch.When, ch.Rule, firstLine(ch.Reason))
		default:
			fmt.Fprintf(w, "      ▶ %s rule %s: command %s\n", ch.When, ch.Rule, orDash(string(ch.Task)))
		}
	}
}
