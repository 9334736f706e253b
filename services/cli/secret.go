package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gantry-ci/gantry/services/secrets"
)

func secretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Store, list and remove the secrets builds can reference",
		Long: `Secrets are values builds need but nobody should read in a log or an event:
tokens, passwords, keys. They are stored by name in the gantry_secrets bucket
and referenced by name from a pipeline action or a buildspec:

  # pipeline.yaml, on an action            # buildspec.yml
  secrets:                                 env:
    NPM_TOKEN: npm-token                     secrets:
                                               NPM_TOKEN: npm-token

The build or test worker reads the value when the action runs and sets it as
the environment variable; events record only the name, and every occurrence
of the value in the action's log, live and archived, is replaced by ***.
A reference may also be file:/path, a file on the worker host inside its
--secrets-dir (default /run/secrets).

Values are read from standard input or a file, never from an argument, so
they stay out of shell history and process lists. They must be at least 4
bytes (shorter values could not be masked), at most 64 KiB, without NUL.`,
	}
	cmd.AddCommand(secretSetCmd(g), secretListCmd(g), secretRmCmd(g))
	return cmd
}

func secretSetCmd(g *globals) *cobra.Command {
	var fromFile string
	c := &cobra.Command{
		Use:   "set NAME [--from-file FILE]",
		Short: "Store a secret's value, read from standard input or a file",
		Long: `Store a secret under NAME (1-64 letters, digits, '-' or '_'), replacing any
previous value; the old value is not kept.

The value is read from standard input to its end, and one trailing newline
is dropped (echo and heredocs add one); typed at a terminal it is not echoed
and ends at the first newline. With --from-file the file's bytes are stored
exactly, a trailing newline included (the masker hides the value with and
without it).`,
		Example: `  printf '%s' "$TOKEN" | gantry secret set npm-token
  gantry secret set npm-token            # type it; nothing is echoed
  gantry secret set deploy-key --from-file ~/.ssh/deploy_ed25519`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := secrets.CheckName(name); err != nil {
				return err
			}
			value, err := readSecretValue(cmd, fromFile)
			if err != nil {
				return err
			}
			if err := secrets.CheckValue(value); err != nil {
				return fmt.Errorf("secret %s not stored: %w", name, err)
			}
			c, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := secrets.OpenStore(cmd.Context(), c.Bus.JetStream())
			if err != nil {
				return err
			}
			if err := s.Set(cmd.Context(), name, value); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"name": name, "bytes": len(value)})
			}
			fmt.Fprintf(g.stdout, "secret %s stored (%d bytes)\n", name, len(value))
			return nil
		},
	}
	c.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file, bytes as they are")
	return c
}

// readSecretValue reads a value from a file or standard input; a terminal
// is read without echo.
func readSecretValue(cmd *cobra.Command, fromFile string) ([]byte, error) {
	if fromFile != "" {
		f, err := os.Open(fromFile)
		if err != nil {
			return nil, fmt.Errorf("read the secret's value: %w", err)
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, secrets.MaxValueBytes+1))
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "value (not echoed): ")
		v, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return nil, fmt.Errorf("read the secret's value: %w", err)
		}
		return v, nil
	}
	v, err := io.ReadAll(io.LimitReader(in, secrets.MaxValueBytes+2))
	if err != nil {
		return nil, fmt.Errorf("read the secret's value from standard input: %w", err)
	}
	if bytes.HasSuffix(v, []byte("\r\n")) {
		v = v[:len(v)-2]
	} else {
		v = bytes.TrimSuffix(v, []byte("\n"))
	}
	if len(v) == 0 {
		return nil, errors.New("no value on standard input: pipe it in, or use --from-file")
	}
	return v, nil
}

func secretListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List stored secrets: names and update times, never values",
		Example: "  gantry secret list\n  gantry secret list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := secrets.OpenStore(cmd.Context(), c.Bus.JetStream())
			if err != nil {
				return err
			}
			list, err := s.List(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if list == nil {
					list = []secrets.Info{}
				}
				return g.printJSON(list)
			}
			if len(list) == 0 {
				fmt.Fprintln(g.stdout, "no secrets; store one with: gantry secret set NAME")
				return nil
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tUPDATED\tREVISION")
			for _, i := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", i.Name, i.Updated.Format("2006-01-02 15:04:05Z07:00"), i.Revision)
			}
			return tw.Flush()
		},
	}
}

func secretRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove a secret and its value; actions that reference it fail until it is set again",
		Example: "  gantry secret rm npm-token",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := secrets.OpenStore(cmd.Context(), c.Bus.JetStream())
			if err != nil {
				return err
			}
			if err := s.Delete(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"name": args[0], "removed": true})
			}
			fmt.Fprintf(g.stdout, "secret %s removed\n", args[0])
			return nil
		},
	}
}
