package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natsd"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/metrics"
	"github.com/gantry-ci/gantry/services/projection"
	"github.com/gantry-ci/gantry/services/secrets"
	"github.com/gantry-ci/gantry/services/source"
	"github.com/gantry-ci/gantry/services/stack"
)

// local is everything `gantry dev` and `gantry demo` run in one process.
type local struct {
	// conn is the dev process's own connection, as the admin user.
	conn *stack.Conn
	// roleConns are the services' and agents' connections, each as its
	// own user (services/access).
	roleConns []*stack.Conn
	srv       *natsd.Server
	examples  []stack.Example
	// hosts are the in-process agents of each example deployment group.
	hosts    map[string][]stack.LocalAgent
	reposDir string
	done     chan error
	cancel   context.CancelFunc
	// metrics is what every role of the process records; consumers
	// reports the backlog of the conductor's and workers' consumers.
	metrics   *metrics.Set
	consumers *metrics.ConsumerCollector
}

// localHosts is how many agents `gantry dev` runs for each example group.
const localHosts = 3

func (l *local) stop() {
	l.cancel()
	<-l.done
	l.close()
}

func (l *local) close() {
	for _, c := range l.roleConns {
		c.Close()
	}
	if l.conn != nil {
		l.conn.Close()
	}
	l.srv.Shutdown()
}

// startLocal starts the embedded server with TLS and one user per role
// (fresh certificates and passwords under the data directory each time),
// provisions and seeds it as admin, and runs every service and the
// example groups' agents, each on a connection of its own user.
func startLocal(ctx context.Context, g *globals, port int, examplesDir string, concurrency int, tune ...func(*stack.RoleOptions)) (*local, error) {
	dataDir, err := filepath.Abs(g.dataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	dir, err := stack.FindExamples(examplesDir)
	if err != nil {
		return nil, err
	}
	groups, err := stack.LoadGroups(dir)
	if err != nil {
		return nil, err
	}
	var spec access.Spec
	for _, gr := range groups {
		for _, h := range stack.LocalAgentNames(gr.Name, localHosts) {
			spec.Agents = append(spec.Agents, access.Agent{Group: gr.Name, Host: h})
		}
	}
	if err := stack.WriteDevAuth(dataDir, spec); err != nil {
		return nil, err
	}
	if err := stack.AdoptDefaultAccount(dataDir); err != nil {
		return nil, err
	}
	nopts := natsd.Options{DataDir: stack.JetStreamDir(dataDir), Port: port, ConfigFile: stack.DevServerConfig(dataDir),
		Logs: os.Getenv("GANTRY_NATS_LOGS") != ""}
	srv, err := natsd.Start(nopts)
	if err != nil && port > 0 {
		fmt.Fprintf(g.stderr, "port %d is taken; using a free one\n", port)
		nopts.Port = -1
		srv, err = natsd.Start(nopts)
	}
	if err != nil {
		return nil, err
	}
	l := &local{srv: srv, done: make(chan error, 1), metrics: metrics.New()}
	fail := func(err error) (*local, error) {
		l.close()
		return nil, err
	}
	connect := func(user, name string, provision bool) (*stack.Conn, error) {
		auth, _, err := stack.DevAuth(dataDir, user)
		if err != nil {
			return nil, err
		}
		return stack.Open(ctx, stack.Target{Local: srv, Auth: auth}, name, provision)
	}
	if l.conn, err = connect(access.Admin, "gantry-dev", true); err != nil {
		return fail(err)
	}
	conn := l.conn
	l.consumers = metrics.NewConsumerCollector(conn.Bus.JetStream())
	if l.examples, err = stack.LoadExamples(dir); err != nil {
		return fail(err)
	}
	reposDir := filepath.Join(dataDir, "repos")
	for _, ex := range l.examples {
		if _, _, err := stack.SeedRepo(ctx, ex, reposDir); err != nil {
			return fail(err)
		}
	}
	if err := stack.ApplyExamples(ctx, conn, l.examples); err != nil {
		return fail(err)
	}
	if err := stack.ApplyGroups(ctx, conn, groups); err != nil {
		return fail(err)
	}
	l.reposDir = reposDir
	log := g.logger("dev")
	var roles []stack.Role
	l.hosts = map[string][]stack.LocalAgent{}
	for _, gr := range groups {
		hosts, agentRoles, err := stack.LocalAgents(func(host string) (*stack.Conn, error) {
			c, err := connect(access.AgentUser(gr.Name, host), "gantry-agent-"+host, false)
			if err == nil {
				l.roleConns = append(l.roleConns, c)
			}
			return c, err
		}, log, dataDir, gr.Name, localHosts)
		if err != nil {
			return fail(err)
		}
		l.hosts[gr.Name] = hosts
		roles = append(roles, agentRoles...)
	}
	for _, name := range stack.AllRoles {
		// Role names are the users' names (services/access).
		c, err := connect(name, "gantry-"+name, false)
		if err != nil {
			return fail(err)
		}
		l.roleConns = append(l.roleConns, c)
		ro := stack.RoleOptions{
			ReposDir: reposDir, WorkDir: filepath.Join(dataDir, "work"), Concurrency: concurrency,
			SecretsDirs: []string{secrets.DefaultDir, filepath.Join(dataDir, "secrets")},
			Metrics:     l.metrics, Consumers: l.consumers}
		for _, f := range tune {
			f(&ro)
		}
		r, err := stack.NewRole(c, name, log, ro)
		if err != nil {
			return fail(err)
		}
		roles = append(roles, r)
	}
	nc, notifier, err := devNotifier(g, connect, log, l.consumers)
	if err != nil {
		return fail(err)
	}
	l.roleConns = append(l.roleConns, nc)
	roles = append(roles, notifier)
	rctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	go func() { l.done <- stack.RunRoles(rctx, roles) }()
	return l, nil
}

func (l *local) trigger(ctx context.Context, pipeline string) (string, error) {
	return source.Publish(ctx, l.conn.Bus.JetStream(), l.conn.Validator, source.Trigger{
		ID: fmt.Sprintf("%s-%d", pipeline, time.Now().UnixNano()), Pipeline: pipeline, Kind: "manual", Actor: "gantry dev"})
}

func devCmd(g *globals) *cobra.Command {
	var port, concurrency int
	var examples string
	var noStart bool
	var apiListen string
	var metricsAddr string
	var listen, webhookSecrets string
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run everything locally: embedded NATS, every service, the example pipeline",
		Long: `Start an embedded nats-server with JetStream in --data-dir, one of every
service (conductor, projector, triggers, source, build and test workers),
apply the pipelines under examples/ (making a local git repository of each
example on first start), start the example pipeline once and show its
progress, then keep serving until interrupted (Ctrl-C). The HTTP API (and
UI) listens on --listen with a fresh admin token, printed at start.

Other terminals reach it through the data directory, e.g.
  gantry run list
  gantry run start hello --watch
or through NATS at the URL it prints (NATS_URL=...).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if listen != "" {
				// Like the NATS port: a taken webhook port gives way to a free one.
				if ln, err := net.Listen("tcp", listen); err != nil {
					fmt.Fprintf(g.stderr, "webhook address %s is taken; using a free port\n", listen)
					listen = "127.0.0.1:0"
				} else {
					ln.Close()
				}
			}
			l, err := startLocal(ctx, g, port, examples, concurrency, func(o *stack.RoleOptions) {
				if o.Listen, o.WebhookSecrets = listen, webhookSecrets; listen != "" {
					o.OnListen = func(addr string) {
						fmt.Fprintf(g.stdout, "gantry dev: webhooks at http://%s/webhooks/{github,gitlab,gitea}\n", addr)
						if webhookSecrets == "" {
							fmt.Fprintln(g.stdout, "  (no --webhook-secrets: every delivery is refused with 401)")
						}
					}
				}
			})
			if err != nil {
				return err
			}
			defer l.stop()
			urlFile := stack.URLFile(g.dataDir)
			if err := os.WriteFile(urlFile, []byte(l.srv.ClientURL()+"\n"), 0o644); err != nil {
				return err
			}
			defer os.Remove(urlFile)
			fmt.Fprintf(g.stdout, "gantry dev: NATS at %s, data in %s\n", l.srv.ClientURL(), g.dataDir)
			if apiListen != "" {
				stopGateway, err := startDevGateway(ctx, g, l, apiListen)
				if err != nil {
					return err
				}
				defer stopGateway()
			}
			if metricsAddr != "" {
				stopMetrics, err := l.serveMetrics(ctx, metricsAddr, g.logger("metrics"))
				if err != nil {
					// Another gantry dev may hold the port; metrics are not worth failing for.
					fmt.Fprintf(g.stderr, "no /metrics: %v (choose another --metrics address)\n", err)
				} else {
					defer stopMetrics()
					fmt.Fprintf(g.stdout, "  /metrics and /healthz at http://%s\n", metricsAddr)
				}
			}
			for _, ex := range l.examples {
				fmt.Fprintf(g.stdout, "  pipeline %s applied from %s\n", ex.Pipeline.Name, ex.Dir)
			}
			if !noStart && len(l.examples) > 0 {
				name := l.examples[0].Pipeline.Name
				runID, err := l.trigger(ctx, name)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "started run %s of %s\n", runID, name)
				p, err := findRun(ctx, l.conn, runID)
				if err != nil {
					return err
				}
				if err := watchRun(ctx, g, l.conn, p, runID); err != nil && ctx.Err() == nil {
					var ee ExitError
					if !errors.As(err, &ee) {
						return err
					}
				}
			}
			fmt.Fprintln(g.stdout, "serving; press Ctrl-C to stop. Try: gantry run start hello --watch")
			select {
			case <-ctx.Done():
				return nil
			case err := <-l.done:
				l.done <- err
				return err
			}
		},
	}
	c.AddCommand(devCertsCmd(g))
	c.Flags().IntVar(&port, "port", 4222, "NATS client port on 127.0.0.1 (a free one if taken)")
	c.Flags().StringVar(&examples, "examples", "", "examples directory (default: examples/ here or above)")
	c.Flags().BoolVar(&noStart, "no-start", false, "do not start the example pipeline")
	c.Flags().IntVar(&concurrency, "concurrency", 2, "tasks each worker role runs at once")
	c.Flags().StringVar(&apiListen, "listen", "127.0.0.1:8080", "HTTP API and UI address (a free port if taken; empty: no gateway)")
	c.Flags().StringVar(&metricsAddr, "metrics", "127.0.0.1:9090", "serve /metrics and /healthz of every service here (empty: none)")
	c.Flags().StringVar(&listen, "webhooks-listen", "127.0.0.1:8081", "address of the source service's webhook receiver (empty: none)")
	c.Flags().StringVar(&webhookSecrets, "webhook-secrets", "", "YAML file of webhook secrets per forge and repository (docs/pipeline.md, Triggers)")
	c.Flags().StringVar(&g.notifyRules, "notify-rules", "", "notification rules file for the notifier (docs/chatops.md)")
	return c
}

// serveMetrics serves the roles' /metrics and /healthz on addr until the
// returned stop is called or ctx ends.
func (l *local) serveMetrics(ctx context.Context, addr string, log zerolog.Logger) (stop func(), err error) {
	r, err := stack.MetricsRole(l.conn, addr, log, l.metrics, l.consumers)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			log.Warn().Err(err).Msg("metrics server stopped")
		}
	}()
	return func() { cancel(); <-done }, nil
}

// waitProjected waits until both projectors have acked everything the logs
// hold now (they ack only after writing), so the data directory left behind
// is consistent for `state rebuild --verify`.
func waitProjected(ctx context.Context, conn *stack.Conn) error {
	deadline := time.Now().Add(15 * time.Second)
	if err := waitConsumer(ctx, conn, events.StreamEvents, projection.Durable, deadline); err != nil {
		return err
	}
	return waitConsumer(ctx, conn, events.StreamDeploys, projection.DeployDurable, deadline)
}

// waitConsumer waits until a durable consumer has acked everything its
// stream holds now.
func waitConsumer(ctx context.Context, conn *stack.Conn, stream, durable string, deadline time.Time) error {
	js := conn.Bus.JetStream()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		c, err := js.Consumer(ctx, stream, durable)
		if err == nil {
			ci, err := c.Info(ctx)
			if err == nil && ci.AckFloor.Stream >= info.State.LastSeq {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("consumer %s of %s did not catch up", durable, stream)
}
