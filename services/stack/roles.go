package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/build"
	"github.com/gantry-ci/gantry/services/chatops"
	"github.com/gantry-ci/gantry/services/conductor"
	"github.com/gantry-ci/gantry/services/deploy"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/gateway/ui"
	"github.com/gantry-ci/gantry/services/metrics"
	"github.com/gantry-ci/gantry/services/projection"
	"github.com/gantry-ci/gantry/services/retention"
	"github.com/gantry-ci/gantry/services/rollback"
	"github.com/gantry-ci/gantry/services/secrets"
	"github.com/gantry-ci/gantry/services/source"
	"github.com/gantry-ci/gantry/services/worker"
)

// Role is one service inside a process: Run blocks until ctx ends.
type Role struct {
	Name string
	Run  func(ctx context.Context) error
}

// RoleOptions tune the roles a process runs.
type RoleOptions struct {
	// ReposDir resolves relative repository paths of source actions.
	ReposDir string
	// WorkDir holds task workspaces.
	WorkDir string
	// Pool the workers serve.
	Pool string
	// Concurrency of each worker role.
	Concurrency int
	// Worker names this process's workers (default: host-pid-random).
	Worker string
	// AckWait is how long a task stays with a worker that went silent.
	AckWait time.Duration
	// HeartbeatTimeout fails an in-progress host whose agent went silent
	// this long (deploy service only; default 30s).
	HeartbeatTimeout time.Duration
	// Grace is how long past an action's timeout the conductor waits for
	// its result before failing it (conductor only; default 1m).
	Grace time.Duration
	// SecretsDirs are where file: secret references may point (build and
	// test workers); nil means secrets.DefaultDir.
	SecretsDirs []string
	// PassEnv names extra variables of the worker's environment that builds
	// see (build and test workers).
	PassEnv []string
	// RetainRuns, RetainFor and SweepEvery configure the retention role:
	// zero means retention.DefaultKeepRuns, DefaultKeepFor, DefaultEvery.
	RetainRuns int
	RetainFor  time.Duration
	SweepEvery time.Duration
	// GatewayListen, Tokens and Insecure configure the gateway role: the
	// address it serves HTTP on, its token file, and cookies without
	// Secure (plain HTTP on localhost).
	GatewayListen string
	Tokens        *auth.Tokens
	Insecure      bool
	// SlackSecretFile, SlackUsersFile and BaseURL turn on the gateway's
	// Slack slash commands (services/chatops): the signing secret's file,
	// the file mapping Slack users to roles, and the UI's public URL for
	// links. Without a secret file /chatops/slack is not served.
	SlackSecretFile string
	SlackUsersFile  string
	BaseURL         string
	// Metrics, if set, is where the roles record what /metrics exposes;
	// Consumers reports the backlog of the consumers the roles read.
	Metrics   *metrics.Set
	Consumers *metrics.ConsumerCollector
	// Listen is the address of the source role's webhook receiver; empty
	// runs none. WebhookSecrets is the file of its secrets
	// (source.LoadWebhookSecrets); OnListen is told where it listens.
	Listen         string
	WebhookSecrets string
	OnListen       func(addr string)
}

// watch adds a consumer to o.Consumers, if set.
func (o RoleOptions) watch(stream, consumer string) {
	if o.Consumers != nil {
		o.Consumers.Watch(stream, consumer)
	}
}

// Role names, as the CLI spells them.
const (
	RoleConductor = "conductor"
	RoleProjector = "projector"
	RoleTriggers  = "triggers"
	RoleSource    = "source"
	RoleBuild     = "build"
	RoleTest      = "test"
	// RoleDeployService is the deploy service (CodeDeploy): it folds
	// deployments, dispatches agents and fails hosts of dead agents. Not
	// "deploy", which is the CLI verb for deployments.
	RoleDeployService = "deploy-service"
	// RoleRollbackService rolls failed deployments back; not "rollback",
	// the CLI verb.
	RoleRollbackService = "rollback-service"
	// RoleDeployWorker runs pipeline actions of type deploy (task kind deploy).
	RoleDeployWorker = "deploy-worker"
	// RoleRetention removes the artifacts and archived logs of old runs.
	RoleRetention = "retention"
	// RoleGateway is the HTTP API. It is not in AllRoles: it needs an
	// address and a token file, so `gantry gateway` and `gantry dev` start
	// it with their own flags.
	RoleGateway = "gateway"
)

// AllRoles is what `gantry dev` runs.
var AllRoles = []string{RoleConductor, RoleProjector, RoleTriggers, RoleSource, RoleBuild, RoleTest,
	RoleDeployService, RoleRollbackService, RoleDeployWorker, RoleRetention}

// NewRole builds a role on a connection.
func NewRole(c *Conn, name string, log zerolog.Logger, o RoleOptions) (Role, error) {
	log = log.With().Str("service", name).Logger()
	switch name {
	case RoleConductor:
		cd, err := conductor.New(conductor.Options{Bus: c.Bus, Log: log, Grace: o.Grace, Metrics: o.Metrics})
		if err != nil {
			return Role{}, err
		}
		o.watch(events.StreamEvents, conductor.Durable)
		return Role{name, cd.Run}, nil
	case RoleProjector:
		p := &projection.Projector{Bus: c.Bus, Log: log}
		return Role{name, p.Run}, nil
	case RoleTriggers:
		t := &source.Triggers{Bus: c.Bus, Log: log, Validator: c.Validator}
		return Role{name, t.Run}, nil
	case RoleSource:
		return sourceRole(c, name, log, o)
	case RoleBuild, RoleTest:
		dirs := o.SecretsDirs
		if dirs == nil {
			dirs = []string{secrets.DefaultDir}
		}
		return workerRole(c, name, log, o, &build.Handler{Validator: c.Validator, Tests: name == RoleTest,
			Secrets: &secrets.Resolver{JetStream: c.Bus.JetStream(), Dirs: dirs}, PassEnv: o.PassEnv})
	case RoleDeployService:
		s, err := deploy.New(deploy.Options{Bus: c.Bus, Log: log, HeartbeatTimeout: o.HeartbeatTimeout})
		if err != nil {
			return Role{}, err
		}
		return Role{name, s.Run}, nil
	case RoleRollbackService:
		r := &rollback.Service{Bus: c.Bus, Log: log}
		return Role{name, r.Run}, nil
	case RoleRetention:
		p := retention.Policy{KeepRuns: o.RetainRuns, KeepFor: o.RetainFor}
		if p.KeepRuns == 0 {
			p.KeepRuns = retention.DefaultKeepRuns
		}
		if p.KeepFor == 0 {
			p.KeepFor = retention.DefaultKeepFor
		}
		s := &retention.Sweeper{Bus: c.Bus, Log: log, Policy: p, Every: o.SweepEvery}
		return Role{name, s.Run}, nil
	case RoleGateway:
		if o.Tokens == nil {
			return Role{}, fmt.Errorf("gateway role: no token file")
		}
		gopts, closeGW, err := GatewayOptions(c, log, o)
		if err != nil {
			return Role{}, err
		}
		srv, err := gateway.New(gopts)
		if err != nil {
			closeGW()
			return Role{}, err
		}
		return Role{name, func(ctx context.Context) error {
			defer closeGW()
			return srv.ListenAndRun(ctx, o.GatewayListen)
		}}, nil
	case RoleDeployWorker:
		r, err := workerRole(c, deploy.TaskKind, log, o, &deploy.Action{Bus: c.Bus})
		r.Name = name
		return r, err
	}
	return Role{}, fmt.Errorf("unknown role %q (roles: %v)", name, AllRoles)
}

// GatewayOptions is the one place the gateway is put together, for
// `gantry gateway` and `gantry dev` alike: the API on the connection, the
// web UI beside it, and the Slack slash commands when a signing secret is
// configured. close releases what chat-ops holds; call it when the
// gateway stops.
func GatewayOptions(c *Conn, log zerolog.Logger, o RoleOptions) (opts gateway.Options, close func(), err error) {
	opts = gateway.Options{Bus: c.Bus, Validator: c.Validator, Tokens: o.Tokens, Log: log, Insecure: o.Insecure}
	opts.UI = ui.Handler(ui.Config{Reader: ui.BusReader{Bus: c.Bus}, Authenticate: ui.TokenCheck(o.Tokens), Log: log})
	close = func() {}
	if o.SlackSecretFile != "" {
		cfg, err := chatops.LoadConfig(o.SlackSecretFile, o.SlackUsersFile, o.BaseURL)
		if err != nil {
			return opts, close, err
		}
		h, err := chatops.SlackHandler(cfg, chatops.BusDeps(c.Bus, c.Validator, log))
		if err != nil {
			return opts, close, err
		}
		opts.Chatops, close = h, h.Close
	}
	return opts, close, nil
}

func workerRole(c *Conn, kind string, log zerolog.Logger, o RoleOptions, h worker.Handler) (Role, error) {
	w, err := worker.New(worker.Options{
		Bus: c.Bus, Log: log, Kind: kind, Pool: o.Pool, Name: o.Worker, Handler: h,
		Concurrency: o.Concurrency, WorkDir: o.WorkDir, AckWait: o.AckWait, Metrics: o.Metrics,
	})
	if err != nil {
		return Role{}, err
	}
	pool := o.Pool
	if pool == "" {
		pool = "default"
	}
	o.watch(events.StreamTasks, worker.ConsumerName(kind, pool))
	return Role{kind, w.Run}, nil
}

// RunRoles runs roles until ctx ends or one of them returns; then it stops
// them all and returns the first error.
func RunRoles(ctx context.Context, roles []Role) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(roles))
	for _, r := range roles {
		go func() {
			err := r.Run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%s: %w", r.Name, err)
			} else {
				err = nil
			}
			errc <- err
			cancel()
		}()
	}
	var first error
	for range roles {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// MetricsRole serves /metrics and /healthz on addr for the roles of this
// process; the consumer collector (if any) is registered with set. The
// listener is bound here, so a taken address is an error at once; the
// health check is the connection to NATS.
func MetricsRole(c *Conn, addr string, log zerolog.Logger, set *metrics.Set, consumers *metrics.ConsumerCollector) (Role, error) {
	if consumers != nil {
		if err := set.Register(consumers); err != nil {
			return Role{}, fmt.Errorf("metrics: %w", err)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return Role{}, fmt.Errorf("metrics listener: %w", err)
	}
	h := metrics.Handler(set, metrics.NATSConnected(c.Bus.Conn()))
	return Role{"metrics", func(ctx context.Context) error {
		return metrics.Serve(ctx, l, log, h)
	}}, nil
}
