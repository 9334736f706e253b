package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/chatops"
	"github.com/gantry-ci/gantry/services/metrics"
	"github.com/gantry-ci/gantry/services/stack"
)

// RoleNotify is the notification service's role and command.
const RoleNotify = "notify"

func notifyCmd(g *globals) *cobra.Command {
	var rulesFile, baseURL string
	var maxAttempts int
	c := &cobra.Command{
		Use: RoleNotify,
		// gantry@notifier (deploy/systemd) runs `gantry notifier` as the
		// NATS user notifier: the template names command and user alike.
		Aliases: []string{access.Notifier},
		Short:   "Run the notification service: post run events to Slack webhooks and CloudEvents endpoints by rules",
		Long: `Consume every run event with a durable consumer and deliver those the rules
match to their targets: Slack-compatible incoming webhooks (a formatted message
linking the run page) and generic webhooks (the CloudEvent, structured mode).
Failed deliveries (5xx, 429, timeouts) are retried with backoff, surviving a
restart; every attempt's outcome is an event on gantry.notify.outcomes.>.
Connect as the NATS user notifier. See docs/chatops.md for the rules file.`,
		Example: `  GANTRY_SLACK_WEBHOOK=https://hooks.slack.com/services/... \
    NATS_URL=tls://nats:4222 NATS_USER=notifier gantry notify --rules notify.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rulesFile == "" {
				return fmt.Errorf("--rules (or GANTRY_NOTIFY_RULES): the notification rules file is required")
			}
			rules, err := loadNotifyRules(rulesFile, baseURL)
			if err != nil {
				return err
			}
			conn, err := g.open(cmd.Context(), "gantry-"+RoleNotify, true)
			if err != nil {
				return err
			}
			defer conn.Close()
			r := notifyRole(conn, rules, g.logger(RoleNotify), maxAttempts)
			return stack.RunRoles(cmd.Context(), []stack.Role{r})
		},
	}
	c.Flags().StringVar(&rulesFile, "rules", os.Getenv("GANTRY_NOTIFY_RULES"), "notification rules file (YAML; see docs/chatops.md) (env GANTRY_NOTIFY_RULES)")
	c.Flags().StringVar(&baseURL, "base-url", "", "web UI address for run links (overrides the rules file's baseURL)")
	c.Flags().IntVar(&maxAttempts, "max-attempts", chatops.DefaultMaxAttempts, "attempts of one delivery before it is recorded as failed for good")
	c.AddCommand(notifyOutcomesCmd(g))
	return c
}

func notifyOutcomesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "outcomes RUN",
		Short: "Show the notification deliveries of a run: each attempt, its target and status",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			p, err := conn.Bus.FindRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			evs, err := chatops.Outcomes(cmd.Context(), conn.Bus.JetStream(), conn.Bus.Codec(), p, args[0])
			if err != nil {
				return err
			}
			if g.json() {
				out := make([]events.Envelope, 0, len(evs))
				for _, e := range evs {
					out = append(out, e.Envelope)
				}
				return g.printJSON(out)
			}
			for _, e := range evs {
				switch o := e.Payload.(type) {
				case events.NotificationDelivered:
					fmt.Fprintf(g.stdout, "%s  %-12s %-30s attempt %d  delivered (%d)\n", e.Time.Format(time.RFC3339), o.Target, o.OfType, o.Attempt, o.StatusCode)
				case events.NotificationFailed:
					next := "failed"
					if o.Retry {
						next = "failed, will retry"
					}
					fmt.Fprintf(g.stdout, "%s  %-12s %-30s attempt %d  %s: %s\n", e.Time.Format(time.RFC3339), o.Target, o.OfType, o.Attempt, next, firstLine(o.Reason))
				}
			}
			return nil
		},
	}
}

// loadNotifyRules reads the rules; no file means no rules (the service
// runs and announces nothing).
func loadNotifyRules(file, baseURL string) (*chatops.Rules, error) {
	rules := &chatops.Rules{}
	if file != "" {
		var err error
		if rules, err = chatops.LoadRules(file); err != nil {
			return nil, err
		}
	}
	if baseURL != "" {
		if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
			return nil, fmt.Errorf("--base-url %q must be an http(s) URL", baseURL)
		}
		rules.BaseURL = baseURL
	}
	return rules, nil
}

func notifyRole(conn *stack.Conn, rules *chatops.Rules, log zerolog.Logger, maxAttempts int) stack.Role {
	n := &chatops.Notifier{Bus: conn.Bus, Rules: rules, Log: log.With().Str("service", RoleNotify).Logger(), MaxAttempts: maxAttempts}
	return stack.Role{Name: RoleNotify, Run: n.Run}
}

// devNotifier is the notifier `gantry dev` runs, as the notifier user,
// with the rules of --notify-rules (none by default).
// Its consumers' backlog goes to /metrics with the others', so a failing
// webhook shows as pending and redelivered deliveries.
func devNotifier(g *globals, connect func(user, name string, provision bool) (*stack.Conn, error),
	log zerolog.Logger, consumers *metrics.ConsumerCollector) (*stack.Conn, stack.Role, error) {
	rules, err := loadNotifyRules(g.notifyRules, "")
	if err != nil {
		return nil, stack.Role{}, err
	}
	c, err := connect(access.Notifier, "gantry-"+RoleNotify, false)
	if err != nil {
		return nil, stack.Role{}, err
	}
	if consumers != nil {
		consumers.Watch(events.StreamEvents, chatops.EventsDurable)
		consumers.Watch(events.StreamNotify, chatops.DeliveriesDurable)
	}
	return c, notifyRole(c, rules, log, chatops.DefaultMaxAttempts), nil
}
