package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/stack"
)

func gatewayCmd(g *globals) *cobra.Command {
	var listen, tokens string
	var insecure bool
	var slack stack.RoleOptions
	c := &cobra.Command{
		Use:   "gateway --listen ADDR --tokens FILE",
		Short: "Run the HTTP API (and the web UI) against --nats",
		Long: `Serve Gantry's HTTP API: pipelines, runs, logs, artifacts and deployments as
JSON, live run events and log lines as Server-Sent Events, and the OpenAPI
document at /openapi.json. Every route but /healthz and /openapi.json needs a
bearer token from the token file (gantry token create). The file is reloaded
when it changes and on SIGHUP. Any number of copies may run.

The web UI is served at / (sign in with a token). With
--slack-signing-secret-file, Slack slash commands are served at
/chatops/slack, each caller mapped to roles by --slack-users
(docs/chatops.md); --base-url is where links in replies point.`,
		Example: `  gantry token create --role admin --name me --file tokens.jsonl
  NATS_URL=nats://127.0.0.1:4222 gantry gateway --listen :8080 --tokens tokens.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			toks, err := auth.Load(g.tokenFile(tokens))
			if err != nil {
				return err
			}
			if len(toks.Entries()) == 0 {
				fmt.Fprintf(g.stderr, "note: %s holds no tokens yet; every request is refused until `gantry token create` adds one\n", g.tokenFile(tokens))
			}
			conn, err := g.open(ctx, "gantry-gateway", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			log := g.logger(stack.RoleGateway)
			stopHUP := reloadOnHUP(ctx, toks, func(err error) {
				if err != nil {
					log.Error().Err(err).Msg("token file not reloaded on SIGHUP")
				} else {
					log.Info().Msg("token file reloaded")
				}
			})
			defer stopHUP()
			o := slack
			o.GatewayListen, o.Tokens, o.Insecure = listen, toks, insecure
			if o.BaseURL == "" {
				o.BaseURL = "http://" + listen
			}
			r, err := stack.NewRole(conn, stack.RoleGateway, log, o)
			if err != nil {
				return err
			}
			return stack.RunRoles(ctx, []stack.Role{r})
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	c.Flags().StringVar(&tokens, "tokens", "", "token file (env GANTRY_TOKENS; default DATA_DIR/gateway-tokens.jsonl)")
	c.Flags().BoolVar(&insecure, "insecure-cookies", false, "set browser cookies without Secure (plain HTTP, e.g. on localhost)")
	c.Flags().StringVar(&slack.SlackSecretFile, "slack-signing-secret-file", "", "file holding the Slack app's signing secret: serve slash commands at /chatops/slack")
	c.Flags().StringVar(&slack.SlackUsersFile, "slack-users", "", "file mapping Slack user IDs to roles (docs/chatops.md)")
	c.Flags().StringVar(&slack.BaseURL, "base-url", "", "public URL of this gateway, for links in chat replies (default http://LISTEN)")
	return c
}

// reloadOnHUP rereads the token file on each SIGHUP until the returned
// stop is called or ctx ends.
func reloadOnHUP(ctx context.Context, t *auth.Tokens, report func(error)) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				report(t.Reload())
			}
		}
	}()
	return func() { signal.Stop(ch); cancel(); <-done }
}
