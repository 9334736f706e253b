// Package agent is `gantry agent`: it runs on each target host of a
// deployment group, heartbeats into the agents bucket, takes the deploy
// commands sent to gantry.agents.<group>.<host> through its own durable
// consumer, and runs CodeDeploy's in-place lifecycle: ApplicationStop (of
// the last revision that succeeded here), DownloadBundle (digest verified,
// unsafe paths refused), BeforeInstall, Install, AfterInstall,
// ApplicationStart, ValidateService, then the group's HTTP health check.
// Every lifecycle event's start and end, exit code and log tail is an event
// on the deployment's log; the host ends with host.succeeded or
// host.failed. The last Keep revisions stay on disk.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/appspec"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/deploydecider"
	"github.com/gantry-ci/gantry/services/internal/consume"
	"github.com/gantry-ci/gantry/services/metrics"
)

// Source is the CloudEvents source of the agent's events.
const Source = "/gantry/agent"

// HealthCheckEvent is the lifecycle event name of the HTTP health check.
const HealthCheckEvent = "HealthCheck"

// Options configure an agent.
type Options struct {
	Bus   *bus.Bus
	Log   zerolog.Logger
	Group string
	Name  string
	// Root holds revisions/<deployment>, the install manifest and the
	// record of the last successful deployment.
	Root   string
	Labels map[string]string
	// InstallRoot, when set, is prefixed to every appspec destination (a
	// chroot-like base for tests and containers); empty installs at the
	// absolute destinations.
	InstallRoot string
	// Heartbeat is how often the agent renews its entry (default 5s).
	Heartbeat time.Duration
	// AckWait is how long a command stays with an agent that went silent.
	AckWait time.Duration
	// Keep is how many revisions stay on disk (default 5).
	Keep int
	// StopOnExit runs the ApplicationStop hooks of the revision that last
	// succeeded here when Run ends, so the apps a throwaway local host
	// started (`gantry dev`) do not outlive it. Real hosts leave their
	// application running across agent restarts.
	StopOnExit bool
	// Metrics, if set, counts heartbeats and records the last one.
	Metrics *metrics.Set
}

// Agent is one host's agent.
type Agent struct {
	o Options
}

// ConsumerName is the durable consumer of a host's agent.
func ConsumerName(group, host string) string { return "agent-" + group + "-" + host }

// New checks options; it does no I/O.
func New(o Options) (*Agent, error) {
	var errs []error
	if o.Bus == nil {
		errs = append(errs, errors.New("a bus is required"))
	}
	if err := events.CheckName("group", o.Group); err != nil {
		errs = append(errs, err)
	}
	if err := events.CheckName("host name", o.Name); err != nil {
		errs = append(errs, err)
	}
	if o.Root == "" {
		errs = append(errs, errors.New("a root directory is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("agent options: %w", err)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Keep <= 0 {
		o.Keep = 5
	}
	abs, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	o.Root = abs
	o.Log = o.Log.With().Str("group", o.Group).Str("host", o.Name).Logger()
	return &Agent{o: o}, nil
}

// Run heartbeats and takes commands until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(a.o.Root, "revisions"), 0o755); err != nil {
		return err
	}
	js := a.o.Bus.JetStream()
	kv, err := js.KeyValue(ctx, events.BucketAgents)
	if err != nil {
		return fmt.Errorf("agents bucket: %w", err)
	}
	deploys, err := a.o.Bus.Deploys(ctx)
	if err != nil {
		return err
	}
	store, err := artifact.OpenStore(ctx, js, artifact.WithTempDir(a.o.Root))
	if err != nil {
		return err
	}
	if err := a.beat(ctx, kv); err != nil {
		return err
	}
	if a.o.StopOnExit {
		defer a.stopApplication()
	}
	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go func() {
		t := time.NewTicker(a.o.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				err := a.beat(hbCtx, kv)
				if hbCtx.Err() != nil {
					return
				}
				a.o.Metrics.Heartbeat(a.o.Group, a.o.Name, time.Now(), err)
				if err != nil {
					a.o.Log.Warn().Err(err).Msg("heartbeat failed")
				}
			}
		}
	}()
	cons, err := js.CreateOrUpdateConsumer(ctx, events.StreamAgents, jetstream.ConsumerConfig{
		Durable:       ConsumerName(a.o.Group, a.o.Name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.o.AckWait,
		MaxAckPending: 1,
		MaxDeliver:    consume.MaxDeliver,
		FilterSubject: events.AgentSubject(a.o.Group, a.o.Name),
		Description:   "deploy commands of agent " + a.o.Name + " in group " + a.o.Group,
	})
	if err != nil {
		return fmt.Errorf("agent consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1))
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	a.o.Log.Info().Str("root", a.o.Root).Msg("agent waiting for deployments")
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		a.take(ctx, deploys, store, m)
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (a *Agent) beat(ctx context.Context, kv jetstream.KeyValue) error {
	b, err := json.Marshal(Info{Group: a.o.Group, Host: a.o.Name, Labels: a.o.Labels})
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, events.AgentKey(a.o.Group, a.o.Name), b)
	return err
}

// take handles one command message: acked when its host has ended (or the
// command is unreadable), left unacked if the agent stops mid-way.
func (a *Agent) take(ctx context.Context, deploys *bus.Deploys, store *artifact.Store, m jetstream.Msg) {
	var cmd Command
	if err := a.readCommand(m.Data(), &cmd); err != nil {
		a.o.Log.Warn().Err(err).Str("subject", m.Subject()).Msg("unreadable deploy command dropped")
		_ = a.o.Bus.DeadLetter(ctx, events.StreamAgents, m.Subject(), 0, m.Data(), err)
		_ = m.Term()
		return
	}
	log := a.o.Log.With().Str("deployment", cmd.Deployment).Logger()
	if consume.Poisoned(ctx, log, a.o.Bus, m, "the agent died or could not report at every try") {
		return
	}
	evs, err := deploys.Read(ctx, cmd.Group, cmd.Deployment, 0)
	if err != nil {
		_ = m.NakWithDelay(time.Second)
		return
	}
	st := deploydecider.Fold(deploydecider.State{}, evs...)
	if h := st.Host(cmd.Host); st.Phase.Ended() || h == nil || h.Status.Ended() {
		log.Info().Msg("host already ended in the log; command dropped")
		_ = m.Ack()
		return
	}
	// The command only says which deployment to carry out: what to install
	// (revision, variables, health check) comes from the deployment's
	// created event in the log, so a forged or tampered command on
	// gantry.agents.> cannot make this host run another bundle.
	if st.Created.Group != cmd.Group {
		_ = a.o.Bus.DeadLetter(ctx, events.StreamAgents, m.Subject(), 0, m.Data(),
			fmt.Errorf("deploy command for group %s names deployment %s of group %q", cmd.Group, cmd.Deployment, st.Created.Group))
		_ = m.Term()
		return
	}
	cmd = CommandFor(st.Created, cmd.Host)
	// Keep the command while the lifecycle runs.
	beatCtx, stopBeat := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(max(a.o.AckWait/3, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-beatCtx.Done():
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	}()
	r := &deployRun{a: a, cmd: cmd, deploys: deploys, store: store, log: log}
	err = r.run(ctx)
	stopBeat()
	if ctx.Err() != nil {
		return // the agent is stopping: the command comes back to it
	}
	if err != nil {
		log.Warn().Err(err).Msg("host failed")
		if perr := r.emit(ctx, "failed", events.DeployHostFailed{Deployment: cmd.Deployment, Group: cmd.Group, Host: cmd.Host, Reason: events.TruncateReason(err.Error())}); perr != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
	} else {
		log.Info().Msg("host succeeded")
		if perr := r.emit(ctx, "succeeded", events.DeployHostSucceeded{Deployment: cmd.Deployment, Group: cmd.Group, Host: cmd.Host}); perr != nil {
			_ = m.NakWithDelay(time.Second)
			return
		}
	}
	_ = m.Ack()
}

// stopTimeout bounds stopApplication when a hook names no timeout of its own.
const stopTimeout = 30 * time.Second

// stopApplication runs the ApplicationStop hooks of the revision that last
// succeeded on this host, outside any deployment: no events, output to the
// revision's log directory. It runs after Run's context has ended, so it
// has its own, bounded by the hooks' timeouts.
func (a *Agent) stopApplication() {
	prev := readTrim(filepath.Join(a.o.Root, "last-succeeded"))
	if prev == "" {
		return
	}
	dir := filepath.Join(a.o.Root, "revisions", prev)
	spec, err := appspec.ParseFile(filepath.Join(dir, "appspec.yml"))
	if err != nil {
		a.o.Log.Warn().Err(err).Str("deployment", prev).Msg("cannot stop the application: revision unreadable")
		return
	}
	if err := os.MkdirAll(dir+".logs", 0o755); err != nil {
		return
	}
	out, err := os.Create(filepath.Join(dir+".logs", "exit-ApplicationStop.log"))
	if err != nil {
		return
	}
	defer out.Close()
	r := &deployRun{a: a, cmd: Command{Deployment: prev, Group: a.o.Group, Host: a.o.Name}, log: a.o.Log}
	for _, h := range spec.Hooks(appspec.ApplicationStop) {
		as, err := resolveRunAs(h.RunAs, a.o.Name, os.Geteuid(), lookupAccount)
		if err != nil {
			a.o.Log.Warn().Err(err).Str("hook", h.Location).Msg("cannot stop the application")
			return
		}
		timeout := h.TimeoutDuration()
		if timeout <= 0 {
			timeout = stopTimeout
		}
		if _, err := runScript(context.Background(), filepath.Join(dir, filepath.FromSlash(h.Location)), dir,
			r.env(appspec.ApplicationStop, dir), as, timeout, out); err != nil {
			a.o.Log.Warn().Err(err).Str("hook", h.Location).Msg("ApplicationStop on exit failed")
			return
		}
	}
	a.o.Log.Info().Str("deployment", prev).Msg("application stopped on exit")
}

// readCommand decodes a deploy command and checks it is addressed to this
// agent, saying what is wrong so the dead letter carries a reason.
func (a *Agent) readCommand(data []byte, cmd *Command) error {
	if err := json.Unmarshal(data, cmd); err != nil {
		return fmt.Errorf("unreadable deploy command: %w", err)
	}
	if err := cmd.Validate(); err != nil {
		return fmt.Errorf("invalid deploy command: %w", err)
	}
	if cmd.Group != a.o.Group || cmd.Host != a.o.Name {
		return fmt.Errorf("deploy command for %s/%s reached agent %s/%s", cmd.Group, cmd.Host, a.o.Group, a.o.Name)
	}
	return nil
}

// deployRun is one command being carried out.
type deployRun struct {
	a       *Agent
	cmd     Command
	deploys *bus.Deploys
	store   *artifact.Store
	log     zerolog.Logger
}

func (r *deployRun) emit(ctx context.Context, fact string, p events.Payload) error {
	e, err := events.New(events.DeployHostID(r.cmd.Deployment, r.cmd.Host, fact), Source, r.cmd.Deployment, time.Now(), p)
	if err != nil {
		return err
	}
	_, _, err = r.deploys.Append(ctx, r.cmd.Group, e, nil)
	return err
}

func (r *deployRun) step(ctx context.Context, event, status string, exit int, d time.Duration, logTail string) {
	p := events.DeployHostLifecycle{Deployment: r.cmd.Deployment, Group: r.cmd.Group, Host: r.cmd.Host,
		Event: event, Status: status, ExitCode: exit, Duration: d.Seconds(), LogTail: strings.ToValidUTF8(logTail, "?")}
	if err := r.emit(ctx, "lifecycle/"+event+"/"+status, p); err != nil && ctx.Err() == nil {
		r.log.Warn().Err(err).Str("event", event).Msg("lifecycle event not recorded")
	}
}

func (r *deployRun) revDir(dep string) string { return filepath.Join(r.a.o.Root, "revisions", dep) }

// lastFile records the deployment whose revision last succeeded here.
func (r *deployRun) lastFile() string { return filepath.Join(r.a.o.Root, "last-succeeded") }

// env is a hook's environment: the revision's variables, then the agent's
// PATH and HOME, CodeDeploy's names and Gantry's. exec keeps the last of
// duplicate names, so a revision variable cannot replace PATH or
// DEPLOYMENT_ID.
func (r *deployRun) env(event, bundle string) []string {
	env := make([]string, 0, len(r.cmd.Variables)+12+len(r.a.o.Labels))
	for _, k := range slices.Sorted(maps.Keys(r.cmd.Variables)) {
		env = append(env, k+"="+r.cmd.Variables[k])
	}
	env = append(env,
		"PATH="+os.Getenv("PATH"),
		"HOME="+os.Getenv("HOME"),
		"APPLICATION_NAME="+r.cmd.Application,
		"DEPLOYMENT_ID="+r.cmd.Deployment,
		"DEPLOYMENT_GROUP_NAME="+r.cmd.Group,
		"LIFECYCLE_EVENT="+event,
		"GANTRY_HOST="+r.cmd.Host,
		"GANTRY_BUNDLE_DIR="+bundle,
		"GANTRY_INSTALL_ROOT="+r.a.o.InstallRoot,
		"GANTRY_REVISION_NAME="+r.cmd.Revision.Name,
		"GANTRY_REVISION_KEY="+r.cmd.Revision.Key,
		"GANTRY_REVISION_SHA256="+r.cmd.Revision.SHA256,
	)
	for _, k := range slices.Sorted(maps.Keys(r.a.o.Labels)) {
		env = append(env, "GANTRY_LABEL_"+envName(k)+"="+r.a.o.Labels[k])
	}
	return env
}

func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}

// hooks runs an event's hooks of spec from bundle, recording the event.
func (r *deployRun) hooks(ctx context.Context, event string, spec *appspec.Spec, bundle string) error {
	hs := spec.Hooks(event)
	if len(hs) == 0 {
		r.step(ctx, event, events.StepSkipped, 0, 0, "")
		return nil
	}
	r.step(ctx, event, events.StepStarted, 0, 0, "")
	logPath := filepath.Join(r.revDir(r.cmd.Deployment)+".logs", event+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	out, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer out.Close()
	start := time.Now()
	for _, h := range hs {
		fmt.Fprintf(out, "== %s: %s\n", event, h.Location)
		as, err := resolveRunAs(h.RunAs, r.cmd.Host, os.Geteuid(), lookupAccount)
		if err != nil {
			fmt.Fprintf(out, "%s: %v\n", h.Location, err)
			r.step(ctx, event, events.StepFailed, 0, time.Since(start), tail(logPath, 2048))
			return fmt.Errorf("%s: %s: %w", event, h.Location, err)
		}
		if as != nil {
			fmt.Fprintf(out, "== running as %s (uid %d)\n", as.Name, as.Cred.Uid)
		}
		code, err := runScript(ctx, filepath.Join(bundle, filepath.FromSlash(h.Location)), bundle, r.env(event, bundle), as, h.TimeoutDuration(), out)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(out, "%s: %v\n", h.Location, err)
			r.step(ctx, event, events.StepFailed, code, time.Since(start), tail(logPath, 2048))
			return fmt.Errorf("%s: %s %v", event, h.Location, err)
		}
	}
	r.step(ctx, event, events.StepSucceeded, 0, time.Since(start), tail(logPath, 2048))
	return nil
}

func (r *deployRun) run(ctx context.Context) error {
	cmd := r.cmd
	r.log.Info().Str("revision", cmd.Revision.Key).Msg("deploying")
	// ApplicationStop, from the revision that last succeeded here.
	if prev := readTrim(r.lastFile()); prev != "" && prev != cmd.Deployment {
		spec, err := appspec.ParseFile(filepath.Join(r.revDir(prev), "appspec.yml"))
		if err != nil {
			r.step(ctx, appspec.ApplicationStop, events.StepSkipped, 0, 0, "previous revision unreadable: "+err.Error())
		} else if err := r.hooks(ctx, appspec.ApplicationStop, spec, r.revDir(prev)); err != nil {
			// The failed step is in the log either way; the deployment
			// decides whether the host goes on.
			if !cmd.IgnoreApplicationStopFailures || ctx.Err() != nil {
				return err
			}
			r.log.Warn().Err(err).Msg("ApplicationStop failed; ignored as the deployment asks")
		}
	} else {
		r.step(ctx, appspec.ApplicationStop, events.StepSkipped, 0, 0, "")
	}
	// DownloadBundle: verified against the digest in the log.
	r.step(ctx, appspec.DownloadBundle, events.StepStarted, 0, 0, "")
	start := time.Now()
	dir := r.revDir(cmd.Deployment)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	fail := func(event string, err error) error {
		r.step(ctx, event, events.StepFailed, 0, time.Since(start), err.Error())
		return fmt.Errorf("%s: %w", event, err)
	}
	if err := r.store.FetchAndUnpack(ctx, cmd.Revision, dir); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(appspec.DownloadBundle, err)
	}
	spec, err := appspec.ParseFile(filepath.Join(dir, "appspec.yml"))
	if err != nil {
		return fail(appspec.DownloadBundle, err)
	}
	r.step(ctx, appspec.DownloadBundle, events.StepSucceeded, 0, time.Since(start),
		fmt.Sprintf("%s: %d bytes, sha256 %s", cmd.Revision.Key, cmd.Revision.Size, cmd.Revision.SHA256))
	if err := r.hooks(ctx, appspec.BeforeInstall, spec, dir); err != nil {
		return err
	}
	// Install.
	r.step(ctx, appspec.Install, events.StepStarted, 0, 0, "")
	start = time.Now()
	var ilog strings.Builder
	manifest := filepath.Join(r.a.o.Root, "installed.json")
	written, err := install(spec, dir, r.a.o.InstallRoot, readManifest(manifest), &ilog)
	if len(written) > 0 {
		prev := readManifest(manifest)
		for p := range prev {
			written = append(written, p)
		}
		sort.Strings(written)
		_ = writeManifest(manifest, dedupe(written))
	}
	if err != nil {
		return fail(appspec.Install, err)
	}
	r.step(ctx, appspec.Install, events.StepSucceeded, 0, time.Since(start), ilog.String())
	for _, ev := range []string{appspec.AfterInstall, appspec.ApplicationStart, appspec.ValidateService} {
		if err := r.hooks(ctx, ev, spec, dir); err != nil {
			return err
		}
	}
	if hc := cmd.HealthCheck; hc != nil {
		url, err := HealthURL(hc.URL, HealthTarget{Host: cmd.Host, Group: cmd.Group, Labels: r.a.o.Labels})
		start = time.Now()
		if err != nil {
			return fail(HealthCheckEvent, err)
		}
		r.step(ctx, HealthCheckEvent, events.StepStarted, 0, 0, "")
		var hlog strings.Builder
		if err := healthCheck(ctx, *hc, url, &hlog); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fail(HealthCheckEvent, err)
		}
		r.step(ctx, HealthCheckEvent, events.StepSucceeded, 0, time.Since(start), lastLines(hlog.String(), 2048))
	}
	if err := writeAtomic(r.lastFile(), []byte(cmd.Deployment+"\n")); err != nil {
		return err
	}
	r.prune(cmd.Deployment)
	return nil
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func lastLines(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// prune keeps the newest Keep revisions (and always the current one).
func (r *deployRun) prune(current string) {
	base := filepath.Join(r.a.o.Root, "revisions")
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	type rev struct {
		name string
		mod  time.Time
	}
	var revs []rev
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".logs") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			revs = append(revs, rev{e.Name(), fi.ModTime()})
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].mod.After(revs[j].mod) })
	kept := 0
	for _, v := range revs {
		if v.name == current || kept < r.a.o.Keep-1 {
			if v.name != current {
				kept++
			}
			continue
		}
		_ = os.RemoveAll(filepath.Join(base, v.name))
		_ = os.RemoveAll(filepath.Join(base, v.name+".logs"))
	}
}
