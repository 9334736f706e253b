package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/metrics"
	"github.com/gantry-ci/gantry/services/retention"
	"github.com/gantry-ci/gantry/services/secrets"
	"github.com/gantry-ci/gantry/services/stack"
)

// roleCmds are the service roles, one per command, each against --nats.
func roleCmds(g *globals) []*cobra.Command {
	short := map[string]string{
		stack.RoleConductor: "Run the pipeline service (the conductor): fold runs, decide, dispatch",
		stack.RoleProjector: "Run the projector: keep the runs bucket folded from the log",
		stack.RoleTriggers:  "Run the trigger intake of the source service: triggers become runs",
		stack.RoleSource:    "Run a source worker: check repositories out into source artifacts",
		stack.RoleBuild:     "Run a build worker: run buildspecs of build actions",
		stack.RoleTest:      "Run a test worker: run test buildspecs and report JUnit results",
	}
	short[stack.RoleDeployService] = "Run the deploy service: fold deployments, dispatch agents, fail hosts of dead agents, stop on alarms"
	short[stack.RoleRollbackService] = "Run the rollback service: roll failed deployments back to the last known good revision"
	short[stack.RoleRetention] = "Run the retention sweeper: remove artifacts and archived logs of old runs, never a deployed revision"
	short[stack.RoleDeployWorker] = "Run a deploy worker: pipeline actions of type deploy create a deployment and wait for it"
	var out []*cobra.Command
	for _, name := range stack.AllRoles {
		var o stack.RoleOptions
		var metricsAddr string
		c := &cobra.Command{
			Use:   name,
			Short: short[name],
			Long: short[name] + `.

Any number of copies may run against the same NATS server; they share the
work through durable consumers. Stop with SIGINT or SIGTERM.`,
			Example: fmt.Sprintf("  NATS_URL=nats://127.0.0.1:4222 gantry %s", name),
			RunE: func(cmd *cobra.Command, _ []string) error {
				conn, err := g.open(cmd.Context(), "gantry-"+name, true)
				if err != nil {
					return err
				}
				defer conn.Close()
				var roles []stack.Role
				if metricsAddr != "" {
					o.Metrics, o.Consumers = metrics.New(), metrics.NewConsumerCollector(conn.Bus.JetStream())
					mr, err := stack.MetricsRole(conn, metricsAddr, g.logger(name), o.Metrics, o.Consumers)
					if err != nil {
						return err
					}
					roles = append(roles, mr)
				}
				r, err := stack.NewRole(conn, name, g.logger(name), o)
				if err != nil {
					return err
				}
				return stack.RunRoles(cmd.Context(), append(roles, r))
			},
		}
		c.Flags().StringVar(&metricsAddr, "metrics", os.Getenv("GANTRY_METRICS_ADDR"), "serve /metrics and /healthz here, e.g. :9090 (env GANTRY_METRICS_ADDR; empty: none)")
		c.Flags().StringVar(&o.Pool, "pool", "default", "worker pool to serve (workers only)")
		c.Flags().IntVar(&o.Concurrency, "concurrency", 1, "tasks run at once (workers only)")
		c.Flags().StringVar(&o.WorkDir, "work-dir", "", "directory for task workspaces (workers only; default a temp dir)")
		c.Flags().StringVar(&o.ReposDir, "repos-dir", ".", "base of relative repository paths (source only)")
		c.Flags().StringVar(&o.Worker, "name", "", "worker name in events (default host-pid-random)")
		if name == stack.RoleConductor {
			c.Flags().DurationVar(&o.Grace, "grace", time.Minute, "how long past an action's timeout (default 1h) to wait for its result before failing it")
		}
		if name == stack.RoleDeployService {
			c.Flags().DurationVar(&o.HeartbeatTimeout, "heartbeat-timeout", 30*time.Second, "fail an in-progress host whose agent has not heartbeated for this long")
		}
		if name == stack.RoleBuild || name == stack.RoleTest {
			c.Flags().StringSliceVar(&o.SecretsDirs, "secrets-dir", []string{secrets.DefaultDir},
				"directory that file: secret references may point into (repeatable)")
			c.Flags().StringSliceVar(&o.PassEnv, "pass-env", nil,
				"variable of this worker's environment that builds may see besides PATH, HOME, locale and proxies (repeatable); nothing else is passed")
		}
		if name == stack.RoleRetention {
			c.Flags().IntVar(&o.RetainRuns, "retain-runs", retention.DefaultKeepRuns, "newest runs of each pipeline whose artifacts and logs are kept")
			c.Flags().DurationVar(&o.RetainFor, "retain-for", retention.DefaultKeepFor, "keep a run's artifacts and logs this long after it ended")
			c.Flags().DurationVar(&o.SweepEvery, "sweep-every", retention.DefaultEvery, "time between sweeps")
		}
		c.Flags().DurationVar(&o.AckWait, "ack-wait", 30*time.Second, "how long a task stays with a worker that stopped heartbeating (workers only)")
		out = append(out, c)
	}
	return out
}
