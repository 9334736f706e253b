// Package deploy is the deployment benchmark, `loadtest deploy`: in one
// process it starts an embedded nats-server on a temporary directory, one
// deploy service and N agents (each on its own NATS connection, root
// directory and free port), stores one bundle with trivial hooks, and
// deploys it to every host at once (AllAtOnce, the HTTP health check on)
// Runs times in a row, one deployment after the other.
//
// The bundle's hooks: ApplicationStop kills the server the last revision
// started (a no-op on the first run), BeforeInstall and ValidateService are
// `true`, ApplicationStart starts this very binary in the background as a
// tiny HTTP server on the host's port (see MaybeServe). The group's health
// check GETs http://127.0.0.1:{{.Labels.port}}/healthz every 200 ms until
// one answer is 200.
//
// What is measured, and how (every time is taken in this process, on one
// clock):
//
//   - deploy_wall_s: from just before deploy.Create appends
//     deployment.created to the `time` of deployment.succeeded, which the
//     deploy service stamps when it decides it.
//   - hook time of a host: the sum of the durations the agent reports for
//     its script hooks (ApplicationStop, BeforeInstall, AfterInstall,
//     ApplicationStart, ValidateService): the user's scripts, run by
//     fork/exec of /bin/sh.
//   - per_host_overhead_ms: per host and run, the `time` of host.succeeded
//     (stamped by the agent) − the `time` of host.dispatched (stamped by the
//     deploy service) − that host's hook time. It includes taking the
//     command, reading the deployment back, the bundle download and unpack,
//     the install, every lifecycle event append and the health check
//     (whose own share is reported on its own, as are the others).
//   - deployment_overhead_ms: per run, deploy_wall − the largest hook time
//     of any host.
//   - nats_pub_sync_p50_ms: plain sync JetStream publishes, of payloads the
//     mean size of a deployment event, to a scratch file-storage stream on
//     the same server after the runs; hook_exec_p50_ms: fork/exec and wait
//     of a `#!/bin/sh` script that runs `true`, as a hook is run.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natsd"
	"github.com/gantry-ci/gantry/services/agent"
	"github.com/gantry-ci/gantry/services/artifact"
	deploysvc "github.com/gantry-ci/gantry/services/deploy"
)

// Group and Application name the benchmark's deployment group.
const (
	Group       = "bench"
	Application = "bench-app"
)

// Config sizes a benchmark. Zero fields take the defaults noted.
type Config struct {
	// Hosts is how many agents the group has (default 20).
	Hosts int
	// Runs is how many deployments run one after the other (default 5).
	Runs int
	// PubSync is how many sync publishes measure the NATS baseline, and
	// Execs how many script executions the hook baseline (default 1000 and
	// 200; negative skips).
	PubSync int
	Execs   int
	// Timeout bounds each deployment (default 2 minutes).
	Timeout time.Duration
	// BackToBack creates each deployment as soon as the previous one ended.
	// By default the benchmark first waits until the deploy service has
	// consumed every event of the previous deployment (it re-reads a
	// deployment's whole log per event and lags behind the log), so that
	// each run is an independent sample; the wait is reported as settle_s.
	BackToBack bool
	// ServerBin is the program ApplicationStart runs with EnvHTTPPort set
	// (default: this executable, which must call MaybeServe first).
	ServerBin string
	// TempDir is where the temporary directory goes (default os.TempDir());
	// it is removed at the end.
	TempDir string
	// Log receives the services' and agents' logs; the zero value discards them.
	Log zerolog.Logger
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Hosts, 20)
	def(&c.Runs, 5)
	def(&c.PubSync, 1000)
	def(&c.Execs, 200)
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
	return c
}

// Validate reports every bad field at once.
func (c Config) Validate() error {
	var errs []error
	if c.Hosts < 1 || c.Hosts > 500 {
		errs = append(errs, fmt.Errorf("hosts must be 1 to 500, got %d", c.Hosts))
	}
	if c.Runs < 1 {
		errs = append(errs, fmt.Errorf("runs must be at least 1, got %d", c.Runs))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must not be negative, got %s", c.Timeout))
	}
	return errors.Join(errs...)
}

// Run runs the benchmark. A report whose deployments did not all succeed is
// returned with a nil error (see Report.OK); errors are for a benchmark
// that could not run or measure.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadtest deploy: %w", err)
	}
	if cfg.ServerBin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("server binary: %w", err)
		}
		cfg.ServerBin = exe
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "gantry-loadtest-deploy-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsd.Start(natsd.Options{DataDir: filepath.Join(dir, "jetstream"), Port: -1, ServerName: "gantry-loadtest-deploy"})
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	e := &env{cfg: cfg, dir: dir, url: srv.ClientURL()}
	defer e.closeAll()
	return e.run(ctx)
}

type env struct {
	cfg Config
	dir string
	url string

	mu      sync.Mutex
	closers []func()
	roots   []string // agents' install roots, where app.pid is
}

func (e *env) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
	e.closers = nil
}

func (e *env) addCloser(f func()) {
	e.mu.Lock()
	e.closers = append(e.closers, f)
	e.mu.Unlock()
}

// connect opens a bus on a connection of its own, as a separate process would.
func (e *env) connect(ctx context.Context, name string, provision bool) (*bus.Bus, error) {
	nc, err := bus.Connect(e.url, name)
	if err != nil {
		return nil, err
	}
	e.addCloser(nc.Close)
	codec, err := events.NewCodec()
	if err != nil {
		return nil, err
	}
	b, err := bus.New(nc, codec)
	if err != nil {
		return nil, err
	}
	if provision {
		err = b.Provision(ctx, bus.Config{})
	} else {
		err = b.Open(ctx)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// killServers kills what the last ApplicationStart left running on each host.
func (e *env) killServers() {
	for _, root := range e.roots {
		b, err := os.ReadFile(filepath.Join(root, "app.pid"))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (e *env) run(ctx context.Context) (*Report, error) {
	cfg := e.cfg
	setupStart := time.Now()
	driver, err := e.connect(ctx, "loadtest-deploy-driver", true)
	if err != nil {
		return nil, err
	}
	svcCtx, stopAll := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var runErrs []error
	start := func(name string, f func(context.Context) error) {
		wg.Go(func() {
			if err := f(svcCtx); err != nil && svcCtx.Err() == nil {
				errMu.Lock()
				runErrs = append(runErrs, fmt.Errorf("%s: %w", name, err))
				errMu.Unlock()
			}
		})
	}
	// Stop every service and agent, then kill the servers the hooks started
	// and reap them.
	becomeSubreaper()
	defer reapChildren(2 * time.Second)
	defer e.killServers()
	defer wg.Wait()
	defer stopAll()

	sb, err := e.connect(ctx, "loadtest-deploy-service", false)
	if err != nil {
		return nil, err
	}
	svc, err := deploysvc.New(deploysvc.Options{Bus: sb, Log: cfg.Log.With().Str("role", "deploy").Logger(),
		HeartbeatTimeout: 10 * time.Second, CheckEvery: 500 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	start("deploy service", svc.Run)

	g := deploysvc.Group{Name: Group, Application: Application, DeploymentConfig: "AllAtOnce",
		HealthCheck: &events.HealthCheck{URL: "http://127.0.0.1:{{.Labels.port}}/healthz", ExpectedStatus: 200,
			HealthyThreshold: 1, TimeoutSeconds: 30}}
	if _, err := deploysvc.ApplyGroup(ctx, driver.JetStream(), g); err != nil {
		return nil, err
	}
	pid := strconv.Itoa(os.Getpid())
	for i := range cfg.Hosts {
		name := fmt.Sprintf("h%02d", i+1)
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		root := filepath.Join(e.dir, "agents", name)
		install := filepath.Join(root, "fs")
		e.roots = append(e.roots, install)
		ab, err := e.connect(ctx, "loadtest-agent-"+name, false)
		if err != nil {
			return nil, err
		}
		a, err := agent.New(agent.Options{Bus: ab, Log: cfg.Log.With().Str("role", "agent").Logger(),
			Group: Group, Name: name, Root: root, InstallRoot: install,
			Labels:    map[string]string{"port": strconv.Itoa(port), "server": cfg.ServerBin, "benchpid": pid},
			Heartbeat: 200 * time.Millisecond, AckWait: 10 * time.Second})
		if err != nil {
			return nil, err
		}
		start("agent "+name, a.Run)
	}
	if err := waitAgents(ctx, driver, g, cfg.Hosts); err != nil {
		return nil, err
	}
	ref, err := e.bundle(ctx, driver)
	if err != nil {
		return nil, err
	}
	rep := newReport(cfg)
	rep.SetupSeconds = round3(time.Since(setupStart).Seconds())

	d, err := driver.Deploys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Runs {
		t0 := time.Now()
		backlog, err := serviceBacklog(ctx, driver)
		if err != nil {
			return nil, err
		}
		if !cfg.BackToBack {
			if err := waitDrained(ctx, driver, cfg.Timeout); err != nil {
				return nil, err
			}
		}
		settle := time.Since(t0)
		r, err := e.deployOnce(ctx, driver, d, ref)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		r.backlog, r.settle = backlog, settle
		rep.add(r)
		if !r.succeeded {
			break // the hosts are in an unknown state; later runs would not measure the same thing
		}
	}
	errMu.Lock()
	errs := errors.Join(runErrs...)
	errMu.Unlock()
	if errs != nil {
		return nil, errs
	}

	if err := e.baselines(ctx, rep, d); err != nil {
		return nil, fmt.Errorf("baselines: %w", err)
	}
	rep.finish()
	return rep, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitAgents waits until n agents of the group have registered.
func waitAgents(ctx context.Context, b *bus.Bus, g deploysvc.Group, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		as, err := deploysvc.Agents(ctx, b.JetStream(), g, time.Minute, time.Now())
		if err == nil && len(as) == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d agents registered within 30s, want %d (last error: %v)", len(as), n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

const appspecYAML = `version: 0.0
os: linux
files:
  - source: /www
    destination: /srv/app
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
      timeout: 10
  BeforeInstall:
    - location: scripts/before.sh
      timeout: 10
  ApplicationStart:
    - location: scripts/start.sh
      timeout: 10
  ValidateService:
    - location: scripts/validate.sh
      timeout: 10
`

// stopSh kills the server and waits until it is gone (or a zombie nobody
// reaps: there may be no init to reap it in a container).
const stopSh = `#!/bin/sh
pidf="$GANTRY_INSTALL_ROOT/app.pid"
[ -f "$pidf" ] || exit 0
pid=$(cat "$pidf")
kill "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do
  case "$(sed 's/.*) //' /proc/$pid/stat 2>/dev/null)" in Z*|"") break;; esac
  sleep 0.01; i=$((i+1))
done
rm -f "$pidf"
`

const startSh = `#!/bin/sh
` + EnvHTTPPort + `="$GANTRY_LABEL_PORT" ` + EnvParentPID + `="$GANTRY_LABEL_BENCHPID" "$GANTRY_LABEL_SERVER" >/dev/null 2>&1 &
echo $! > "$GANTRY_INSTALL_ROOT/app.pid"
`

// bundle stores the benchmark's revision.
func (e *env) bundle(ctx context.Context, b *bus.Bus) (events.ArtifactRef, error) {
	store, err := artifact.OpenStore(ctx, b.JetStream())
	if err != nil {
		return events.ArtifactRef{}, err
	}
	dir := filepath.Join(e.dir, "bundle")
	files := map[string]string{
		"appspec.yml":         appspecYAML,
		"www/healthz":         "ok",
		"scripts/stop.sh":     stopSh,
		"scripts/start.sh":    startSh,
		"scripts/before.sh":   "#!/bin/sh\ntrue\n",
		"scripts/validate.sh": "#!/bin/sh\ntrue\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return events.ArtifactRef{}, err
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			return events.ArtifactRef{}, err
		}
	}
	fs, err := artifact.DirFiles(dir)
	if err != nil {
		return events.ArtifactRef{}, err
	}
	// Keys are write-once: a fresh upload part per bundle stored.
	key := events.ArtifactKey(Application, events.ActionRef{Run: "build-1", Stage: "build", Action: "build", Attempt: 1}, fmt.Sprint("bench-", time.Now().UnixNano()), "app")
	return store.PutDir(ctx, key, "app", fs)
}

// hookEvents are the lifecycle events that run the user's scripts.
var hookEvents = map[string]bool{
	"ApplicationStop": true, "BeforeInstall": true, "AfterInstall": true, "ApplicationStart": true, "ValidateService": true,
}

// hostTimes is one host's part of one deployment.
type hostTimes struct {
	dispatched, firstStep, ended time.Time
	succeeded                    bool
	hooks                        time.Duration            // sum of the script hooks' durations
	steps                        map[string]time.Duration // every ended lifecycle event's duration
}

// runTimes is one deployment.
type runTimes struct {
	id        string
	created   time.Time // just before deploy.Create
	ended     time.Time // `time` of the final event
	observed  time.Time // when the watcher here received it
	succeeded bool
	reason    string
	hosts     map[string]*hostTimes
	events    int
	// backlog is the deploy service's unacknowledged deployment events when
	// the run was about to start; settle how long the driver waited for it
	// to drain.
	backlog int
	settle  time.Duration
}

// serviceBacklog is how many deployment events the deploy service has not
// acknowledged yet.
func serviceBacklog(ctx context.Context, b *bus.Bus) (int, error) {
	c, err := b.JetStream().Consumer(ctx, events.StreamDeploys, deploysvc.Durable)
	if err != nil {
		return 0, fmt.Errorf("deploy service consumer: %w", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("deploy service consumer: %w", err)
	}
	return int(info.NumPending) + info.NumAckPending, nil
}

// waitDrained waits until the deploy service has acknowledged every event.
func waitDrained(ctx context.Context, b *bus.Bus, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		n, err := serviceBacklog(ctx, b)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the deploy service still had %d events to consume after %s", n, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// deployOnce creates one deployment and follows its log until it ends.
func (e *env) deployOnce(ctx context.Context, b *bus.Bus, d *bus.Deploys, ref events.ArtifactRef) (*runTimes, error) {
	r := &runTimes{hosts: map[string]*hostTimes{}}
	host := func(name string) *hostTimes {
		h := r.hosts[name]
		if h == nil {
			h = &hostTimes{steps: map[string]time.Duration{}}
			r.hosts[name] = h
		}
		return h
	}
	r.created = time.Now()
	c, err := deploysvc.Create(ctx, b, deploysvc.Request{Group: Group, Revision: ref})
	if err != nil {
		return nil, err
	}
	r.id = c.Deployment
	wctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	err = d.Watch(wctx, Group, c.Deployment, func(ev events.Event) bool {
		r.events++
		switch p := ev.Payload.(type) {
		case events.DeployHostDispatched:
			host(p.Host).dispatched = ev.Time
		case events.DeployHostLifecycle:
			h := host(p.Host)
			if h.firstStep.IsZero() {
				h.firstStep = ev.Time
			}
			if p.Status == events.StepSucceeded || p.Status == events.StepFailed {
				dur := time.Duration(p.Duration * float64(time.Second))
				h.steps[p.Event] += dur
				if hookEvents[p.Event] {
					h.hooks += dur
				}
			}
		case events.DeployHostSucceeded:
			h := host(p.Host)
			h.ended, h.succeeded = ev.Time, true
		case events.DeployHostFailed:
			host(p.Host).ended = ev.Time
		case events.DeploymentSucceeded:
			r.ended, r.observed, r.succeeded = ev.Time, time.Now(), true
			return false
		case events.DeploymentFailed:
			r.ended, r.observed, r.reason = ev.Time, time.Now(), p.Reason
			return false
		case events.DeploymentStopped:
			r.ended, r.observed, r.reason = ev.Time, time.Now(), p.Reason
			return false
		}
		return true
	})
	if r.ended.IsZero() {
		if err == nil {
			err = errors.New("the watch ended early")
		}
		return nil, fmt.Errorf("deployment %s did not end within %s: %w", c.Deployment, e.cfg.Timeout, err)
	}
	return r, nil
}

// hookExec runs a `#!/bin/sh` script that runs `true`, as the agent runs a
// hook (its own process group, output to a file).
func hookExec(script string, out *os.File) (time.Duration, error) {
	t0 := time.Now()
	cmd := exec.Command(script)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	return time.Since(t0), err
}
