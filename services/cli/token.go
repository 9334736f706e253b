package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// defaultTokenFile is the gateway's token file inside the data directory.
func defaultTokenFile(dataDir string) string { return filepath.Join(dataDir, "gateway-tokens.jsonl") }

func (g *globals) tokenFile(flag string) string {
	if flag != "" {
		return flag
	}
	return envOr("GANTRY_TOKENS", defaultTokenFile(g.dataDir))
}

func tokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the HTTP API's bearer tokens",
		Long: `The gateway's tokens live in a file of hashes (one JSON object per line:
name, roles, sha256); a token itself is printed once, when it is created, and
never stored. Roles: viewer reads; operator also starts, stops and retries runs
and rolls back; approver also approves and rejects; admin may do everything,
applying pipelines and deployment groups included. A running gateway picks
changes up within seconds (or at once on SIGHUP).`,
	}
	var file string
	cmd.PersistentFlags().StringVar(&file, "file", "", "token file (env GANTRY_TOKENS; default DATA_DIR/gateway-tokens.jsonl)")
	var roles []string
	var name string
	create := &cobra.Command{
		Use:   "create --role ROLE --name NAME",
		Short: "Create a token, print it once and store its hash",
		Example: `  gantry token create --role operator --name ci-bot
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/v1/runs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rs []auth.Role
			for _, r := range roles {
				for _, part := range strings.Split(r, ",") {
					role, err := auth.ParseRole(part)
					if err != nil {
						return fmt.Errorf("--role: %w", err)
					}
					rs = append(rs, role)
				}
			}
			if len(rs) == 0 {
				return fmt.Errorf("--role: give at least one of viewer, operator, approver, admin")
			}
			tok, e, err := auth.Create(g.tokenFile(file), name, rs)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"name": e.Name, "roles": e.Roles, "token": tok})
			}
			fmt.Fprintf(g.stderr, "token %s (%s) created in %s; it is shown only now:\n", e.Name, joinRoles(e.Roles), g.tokenFile(file))
			fmt.Fprintln(g.stdout, tok)
			return nil
		},
	}
	create.Flags().StringSliceVar(&roles, "role", nil, "role: viewer, operator, approver or admin (repeatable)")
	create.Flags().StringVar(&name, "name", "", "name of the token; commands made with it are recorded as api:NAME")
	_ = create.MarkFlagRequired("name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens by name and role (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := auth.ReadFile(g.tokenFile(file))
			if err != nil {
				return err
			}
			if g.json() {
				type row struct {
					Name    string      `json:"name"`
					Roles   []auth.Role `json:"roles"`
					Created time.Time   `json:"created"`
				}
				rows := []row{}
				for _, e := range all {
					rows = append(rows, row{e.Name, e.Roles, e.Created})
				}
				return g.printJSON(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLES\tCREATED")
			for _, e := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Name, joinRoles(e.Roles), e.Created.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Remove a token; a running gateway refuses it within seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := auth.Revoke(g.tokenFile(file), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func joinRoles(rs []auth.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
