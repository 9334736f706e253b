package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/deployplan"
	"github.com/gantry-ci/gantry/services/metrics"
	"github.com/gantry-ci/gantry/services/rollback"
	"github.com/gantry-ci/gantry/services/stack"
)

// deployCmds are the CD verbs: deploy, alarm, rollback, redeploy, agent.
func deployCmds(g *globals) []*cobra.Command {
	return []*cobra.Command{deployCmd(g), alarmCmd(g), rollbackCmd(g), redeployCmd(g), agentCmd(g)}
}

func deployCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "deploy", Short: "Deployment groups and deployments to agent hosts (CodeDeploy style)"}
	group := &cobra.Command{Use: "group", Short: "Apply and list deployment groups"}
	group.AddCommand(deployGroupApplyCmd(g), deployGroupListCmd(g))
	cmd.AddCommand(group, deployCreateCmd(g), deployListCmd(g), deployShowCmd(g), deployStopCmd(g))
	return cmd
}

func deployGroupApplyCmd(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Add or update a deployment group from a YAML document",
		Example: `  gantry deploy group apply -f web.group.yml

  # web.group.yml
  name: web
  application: webshop
  selector: {role: web}
  deploymentConfig: HalfAtATime
  healthCheck: {url: "http://127.0.0.1:{{.Labels.port}}/healthz", expectedStatus: 200}
  autoRollback: {enabled: true, events: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]}`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			grp, err := deploy.ParseGroup(file, data)
			if err != nil {
				return err
			}
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			rev, err := deploy.ApplyGroup(cmd.Context(), conn.Bus.JetStream(), grp)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deployment group %s applied (revision %d)\n", grp.Name, rev)
			return nil
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the group document (YAML)")
	_ = c.MarkFlagRequired("file")
	return c
}

func deployGroupListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List deployment groups with their live agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			conn, err := g.open(ctx, "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			js := conn.Bus.JetStream()
			kv, err := js.KeyValue(ctx, events.BucketDeployGroups)
			if err != nil {
				return err
			}
			type row struct {
				deploy.Group
				Agents []agent.Info `json:"agents"`
			}
			var rows []row
			lister, err := kv.ListKeys(ctx)
			if err != nil {
				return err
			}
			for k := range lister.Keys() {
				grp, err := deploy.GetGroup(ctx, js, k)
				if err != nil {
					continue
				}
				as, _ := deploy.Agents(ctx, js, grp, time.Minute, time.Now())
				rows = append(rows, row{grp, as})
			}
			if g.json() {
				return g.printJSON(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tAPPLICATION\tCONFIG\tAGENTS")
			for _, r := range rows {
				var hosts []string
				for _, a := range r.Agents {
					hosts = append(hosts, a.Host)
				}
				cfg, _ := r.Config()
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.Application, strings.TrimPrefix(cfg.Name, "CodeDeployDefault."), strings.Join(hosts, ","))
			}
			return tw.Flush()
		},
	}
}

// findArtifact resolves RUN/NAME to the artifact a run stored.
// findArtifact resolves RUN/NAME to the artifact a run stored and the
// run's variables, which travel with the revision to every hook.
func findArtifact(ctx context.Context, b *bus.Bus, spec string) (events.ArtifactRef, map[string]string, error) {
	runID, name, ok := strings.Cut(spec, "/")
	if !ok || runID == "" || name == "" {
		return events.ArtifactRef{}, nil, fmt.Errorf("--artifact %q: write it as RUN/NAME", spec)
	}
	pipeline, err := b.FindRun(ctx, runID)
	if err != nil {
		return events.ArtifactRef{}, nil, err
	}
	evs, err := b.ReadRun(ctx, pipeline, runID, 0)
	if err != nil {
		return events.ArtifactRef{}, nil, err
	}
	var found *events.ArtifactRef
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case events.ArtifactStored:
			if p.Artifact.Name == name {
				a := p.Artifact
				found = &a
			}
		case events.ActionSucceeded:
			for _, o := range p.Outputs {
				if o.Name == name {
					a := o
					found = &a
				}
			}
		}
	}
	if found == nil {
		return events.ArtifactRef{}, nil, fmt.Errorf("run %s stored no artifact %q (list them with `gantry run show %s`)", runID, name, runID)
	}
	return *found, decider.RunVariables(run.Fold(run.State{}, evs...)), nil
}

func deployCreateCmd(g *globals) *cobra.Command {
	var group, art string
	var vars []string
	var watch, ignoreStop bool
	c := &cobra.Command{
		Use:   "create --group G --artifact RUN/NAME",
		Short: "Deploy a run's artifact (a bundle with appspec.yml) to a deployment group",
		Long: `Deploy a run's artifact (a bundle with appspec.yml) to a deployment group.

Every hook gets the run's variables in its environment (pipeline variables,
variables exported by the run's actions, GANTRY_PIPELINE, GANTRY_RUN_ID,
GANTRY_COMMIT, ...), with --var NAME=VALUE added or overriding; a rollback
or redeploy of the revision carries them along.`,
		Example: `  gantry deploy create --group web --artifact 01a2.../app --watch
  gantry deploy create --group web --artifact 01a2.../app --var FEATURE_FLAGS=beta`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			extra, err := parseVars(vars)
			if err != nil {
				return err
			}
			conn, err := g.open(ctx, "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			ref, runVars, err := findArtifact(ctx, conn.Bus, art)
			if err != nil {
				return err
			}
			maps.Copy(runVars, extra)
			c, err := deploy.Create(ctx, conn.Bus, deploy.Request{Group: group, Revision: ref, Variables: runVars,
				IgnoreApplicationStopFailures: ignoreStop})
			if err != nil {
				return err
			}
			return g.created(ctx, conn, c, watch)
		},
	}
	c.Flags().StringVar(&group, "group", "", "the deployment group")
	c.Flags().StringVar(&art, "artifact", "", "the revision: RUN/NAME of an artifact a run stored")
	c.Flags().StringArrayVar(&vars, "var", nil, "NAME=VALUE for every hook's environment (repeatable)")
	c.Flags().BoolVar(&ignoreStop, "ignore-application-stop-failures", false, ignoreStopHelp)
	c.Flags().BoolVar(&watch, "watch", false, "wait for the deployment to end; exit 1 unless it succeeded")
	_ = c.MarkFlagRequired("group")
	_ = c.MarkFlagRequired("artifact")
	return c
}

const ignoreStopHelp = "go on when a host's previous revision fails its ApplicationStop hook (a broken stop script otherwise fails every deployment to that host)"

// created reports a new deployment and optionally waits for its end.
func (g *globals) created(ctx context.Context, conn *stack.Conn, c events.DeploymentCreated, watch bool) error {
	if !watch {
		if g.json() {
			return g.printJSON(c)
		}
		fmt.Fprintf(g.stdout, "deployment %s of %s to %s (%d hosts: %s) created (show it: gantry deploy show %s)\n",
			c.Deployment, c.Revision.Key, c.Group, len(c.Hosts), strings.Join(c.Hosts, ", "), c.Deployment)
		return nil
	}
	d, err := conn.Bus.Deploys(ctx)
	if err != nil {
		return err
	}
	var st deploydecider.State
	err = d.Watch(ctx, c.Group, c.Deployment, func(e events.Event) bool {
		st = deploydecider.Evolve(st, e)
		if !g.json() {
			switch p := e.Payload.(type) {
			case events.DeployHostDispatched:
				fmt.Fprintf(g.stdout, "%s  %s dispatched\n", e.Time.Local().Format("15:04:05"), p.Host)
			case events.DeployHostLifecycle:
				if p.Status != events.StepStarted {
					fmt.Fprintf(g.stdout, "%s  %s %s %s\n", e.Time.Local().Format("15:04:05"), p.Host, p.Event, p.Status)
				}
			case events.DeployHostSucceeded:
				fmt.Fprintf(g.stdout, "%s  %s succeeded\n", e.Time.Local().Format("15:04:05"), p.Host)
			case events.DeployHostFailed:
				fmt.Fprintf(g.stdout, "%s  %s failed: %s\n", e.Time.Local().Format("15:04:05"), p.Host, p.Reason)
			}
		}
		return !st.Phase.Ended()
	})
	if err != nil {
		return err
	}
	if g.json() {
		_ = g.printJSON(st)
	} else {
		fmt.Fprintf(g.stdout, "deployment %s %s %s\n", st.ID(), strings.ToLower(string(st.Phase)), st.Reason)
	}
	if st.Phase != deploydecider.Succeeded {
		return ExitError{Code: 1}
	}
	return nil
}

func deployListCmd(g *globals) *cobra.Command {
	var group string
	c := &cobra.Command{
		Use:   "list",
		Short: "List deployments, folded from the deployment log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			states, err := deploy.List(cmd.Context(), conn.Bus, group)
			if err != nil {
				return err
			}
			if g.json() {
				if states == nil {
					states = []deploydecider.State{}
				}
				return g.printJSON(states)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEPLOYMENT\tGROUP\tREVISION\tPHASE\tHOSTS\tSTARTED\tROLLBACK OF")
			for _, s := range states {
				ok := 0
				for _, h := range s.Hosts {
					if h.Status == "Succeeded" {
						ok++
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", s.ID(), s.Group(), s.Created.Revision.Key, s.Phase,
					ok, len(s.Hosts), s.Started.Local().Format(time.DateTime), s.Created.RollbackOf)
			}
			return tw.Flush()
		},
	}
	c.Flags().StringVar(&group, "group", "", "only this deployment group")
	return c
}

func deployShowCmd(g *globals) *cobra.Command {
	var host string
	c := &cobra.Command{
		Use:   "show DEPLOYMENT [--host HOST]",
		Short: "Show a deployment with a row per host, or one host's lifecycle events and output",
		Example: `  gantry deploy show 01a2...
  gantry deploy show 01a2... --host web-2      # each lifecycle event, its exit code, duration and output
  gantry deploy show 01a2... -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			st, err := deploy.Load(cmd.Context(), conn.Bus, args[0])
			if err != nil {
				return err
			}
			if host != "" {
				h := st.Host(host)
				if h == nil {
					names := make([]string, 0, len(st.Hosts))
					for _, h := range st.Hosts {
						names = append(names, h.Name)
					}
					return fmt.Errorf("deployment %s has no host %q; its hosts: %s", st.ID(), host, strings.Join(names, ", "))
				}
				if g.json() {
					return g.printJSON(h)
				}
				return g.printHostSteps(st, h)
			}
			if g.json() {
				return g.printJSON(st)
			}
			c := st.Created
			fmt.Fprintf(g.stdout, "deployment %s: %s %s\n", st.ID(), st.Phase, st.Reason)
			fmt.Fprintf(g.stdout, "group %s, application %s, config %s (%s %d)\n", c.Group, c.Application, c.Config.Name, c.Config.Type, c.Config.Value)
			fmt.Fprintf(g.stdout, "revision %s (sha256 %s, %d bytes)\n", c.Revision.Key, c.Revision.SHA256, c.Revision.Size)
			if c.RollbackOf != "" {
				fmt.Fprintf(g.stdout, "rollback of %s\n", c.RollbackOf)
			}
			if ri := st.RollbackInfo; ri != nil && ri.Deployment != "" {
				fmt.Fprintf(g.stdout, "rolled back by %s: %s\n", ri.Deployment, ri.Message)
			} else if ri != nil {
				fmt.Fprintf(g.stdout, "not rolled back: %s\n", ri.Message)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nHOST\tSTATUS\tLAST EVENT\tREASON")
			failed := ""
			for _, h := range st.Hosts {
				last := ""
				if n := len(h.Steps); n > 0 {
					last = h.Steps[n-1].Event + " " + h.Steps[n-1].Status
				}
				if h.Status == deployplan.Failed && failed == "" {
					failed = h.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Name, h.Status, last, h.Reason)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed != "" {
				fmt.Fprintf(g.stdout, "\nsee what failed: gantry deploy show %s --host %s\n", st.ID(), failed)
			}
			return nil
		},
	}
	c.Flags().StringVar(&host, "host", "", "show this host's lifecycle events with their exit codes, durations and output")
	return c
}

// printHostSteps prints one host's lifecycle events, each with the tail of
// its output as the agent recorded it.
func (g *globals) printHostSteps(st deploydecider.State, h *deploydecider.Host) error {
	fmt.Fprintf(g.stdout, "deployment %s, host %s: %s %s\n", st.ID(), h.Name, h.Status, h.Reason)
	if len(h.Steps) == 0 {
		fmt.Fprintln(g.stdout, "no lifecycle events: the host was not started")
		return nil
	}
	for _, s := range h.Steps {
		if s.Status == events.StepStarted {
			continue // its end follows with the duration and output
		}
		line := fmt.Sprintf("\n%-16s %-9s", s.Event, s.Status)
		if s.Status != events.StepSkipped {
			line += fmt.Sprintf(" exit %d  %s", s.ExitCode, time.Duration(s.Duration*float64(time.Second)).Round(time.Millisecond))
		}
		fmt.Fprintln(g.stdout, strings.TrimRight(line, " "))
		for _, l := range strings.Split(strings.TrimRight(s.LogTail, "\n"), "\n") {
			if l != "" {
				fmt.Fprintf(g.stdout, "  | %s\n", l)
			}
		}
	}
	return nil
}

func deployStopCmd(g *globals) *cobra.Command {
	var rb bool
	var reason string
	c := &cobra.Command{
		Use:   "stop DEPLOYMENT",
		Short: "Stop a deployment; with --rollback, roll back to the last known good revision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			if reason == "" {
				reason = "stopped with gantry deploy stop"
			}
			if err := deploy.Stop(cmd.Context(), conn.Bus, args[0], reason, rb); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deployment %s stopped\n", args[0])
			return nil
		},
	}
	c.Flags().BoolVar(&rb, "rollback", false, "roll back to the group's last known good revision")
	c.Flags().StringVar(&reason, "reason", "", "why (recorded in the event)")
	return c
}

func alarmCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "alarm", Short: "Raise alarms on deployment groups"}
	var reason, name string
	raise := &cobra.Command{
		Use:   "raise GROUP --reason TEXT",
		Short: "Raise an alarm: the group's deployment in progress stops (and rolls back if the group says so)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := deploy.RaiseAlarm(cmd.Context(), conn.Bus, deploy.Alarm{Group: args[0], Name: name, Reason: reason}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "alarm %s raised on %s\n", name, args[0])
			return nil
		},
	}
	raise.Flags().StringVar(&reason, "reason", "", "why")
	raise.Flags().StringVar(&name, "name", "manual", "the alarm's name (a group's alarms list chooses which stop it)")
	_ = raise.MarkFlagRequired("reason")
	cmd.AddCommand(raise)
	return cmd
}

func rollbackCmd(g *globals) *cobra.Command {
	var group, to string
	var watch, ignoreStop bool
	c := &cobra.Command{
		Use:   "rollback --group G [--to DEPLOYMENT]",
		Short: "Deploy the group's last known good revision (or that of --to) again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			c, err := rollback.Rollback(cmd.Context(), conn.Bus, rollback.Request{Group: group, To: to, IgnoreApplicationStopFailures: ignoreStop})
			if err != nil {
				return err
			}
			return g.created(cmd.Context(), conn, c, watch)
		},
	}
	c.Flags().StringVar(&group, "group", "", "the deployment group")
	c.Flags().StringVar(&to, "to", "", "roll back to this deployment's revision instead of the last known good one")
	c.Flags().BoolVar(&watch, "watch", false, "wait for the deployment to end")
	c.Flags().BoolVar(&ignoreStop, "ignore-application-stop-failures", false, ignoreStopHelp)
	_ = c.MarkFlagRequired("group")
	return c
}

func redeployCmd(g *globals) *cobra.Command {
	var watch, ignoreStop bool
	c := &cobra.Command{
		Use:   "redeploy DEPLOYMENT",
		Short: "Deploy a deployment's revision again, as a new deployment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer conn.Close()
			c, err := rollback.Redeploy(cmd.Context(), conn.Bus, args[0], ignoreStop)
			if err != nil {
				return err
			}
			return g.created(cmd.Context(), conn, c, watch)
		},
	}
	c.Flags().BoolVar(&watch, "watch", false, "wait for the deployment to end")
	c.Flags().BoolVar(&ignoreStop, "ignore-application-stop-failures", false, ignoreStopHelp)
	return c
}

func agentCmd(g *globals) *cobra.Command {
	var o agent.Options
	var labels []string
	var metricsAddr string
	c := &cobra.Command{
		Use:   "agent --group G --name HOST --root DIR [--label k=v]...",
		Short: "Run the deployment agent of one host",
		Long: `Run on each target host: heartbeat into the agents bucket, take this host's
deploy commands, fetch and verify revisions into DIR/revisions/<deployment>,
run the appspec lifecycle hooks and the group's health check, and report
every step as an event. The last 5 revisions are kept.`,
		Example: `  gantry agent --group web --name web-1 --root /var/lib/gantry-agent --label port=8080 --label role=web`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Labels = map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return fmt.Errorf("--label %q: write it as key=value", l)
				}
				o.Labels[k] = v
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			conn, err := g.open(ctx, "gantry-agent-"+o.Name, true)
			if err != nil {
				return err
			}
			defer conn.Close()
			o.Bus = conn.Bus
			o.Log = g.logger("agent")
			roles := []stack.Role{}
			if metricsAddr != "" {
				o.Metrics = metrics.New()
				mr, err := stack.MetricsRole(conn, metricsAddr, o.Log, o.Metrics, nil)
				if err != nil {
					return err
				}
				roles = append(roles, mr)
			}
			a, err := agent.New(o)
			if err != nil {
				return err
			}
			err = stack.RunRoles(ctx, append(roles, stack.Role{Name: "agent", Run: a.Run}))
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Group, "group", "", "the deployment group this host belongs to")
	f.StringVar(&o.Name, "name", "", "this host's name")
	f.StringVar(&o.Root, "root", "", "the agent's directory (revisions, install records)")
	f.StringArrayVar(&labels, "label", nil, "a label k=v the group's selector and health check URL can use (repeatable)")
	f.StringVar(&o.InstallRoot, "install-root", "", "prefix every appspec destination with this directory")
	f.DurationVar(&o.Heartbeat, "heartbeat", 5*time.Second, "heartbeat period")
	f.StringVar(&metricsAddr, "metrics", os.Getenv("GANTRY_METRICS_ADDR"), "serve /metrics and /healthz here, e.g. :9100 (env GANTRY_METRICS_ADDR; empty: none)")
	_ = c.MarkFlagRequired("group")
	_ = c.MarkFlagRequired("name")
	_ = c.MarkFlagRequired("root")
	return c
}
