package cli

import (
	"fmt"
	"os"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/command"
)

// runStopCmd is `gantry run stop RUN [--abandon] [--reason ...]`: a
// request on gantry.cmd.stop, answered by a conductor.
func runStopCmd(g *globals) *cobra.Command {
	var abandon bool
	var reason string
	c := &cobra.Command{
		Use:   "stop RUN",
		Short: "Stop a run: no new actions; those in progress finish, or with --abandon are abandoned and killed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			reply, err := (command.Client{Conn: conn.Bus.Conn()}).Do(cmd.Context(), command.Stop,
				command.Request{Run: args[0], Abandon: abandon, Reason: reason, Actor: actor()})
			if err != nil {
				return fmt.Errorf("stop %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s of %s: %s\n", reply.Run, reply.Pipeline, reply.Phase)
			return nil
		},
	}
	c.Flags().BoolVar(&abandon, "abandon", false, "abandon the actions in progress at once and kill their processes")
	c.Flags().StringVar(&reason, "reason", "", "why the run is stopped (default: stopped by USER@HOST)")
	return c
}

// actor names the caller for the log: user@host.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
