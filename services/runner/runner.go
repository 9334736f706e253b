package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-ci/gantry/services/buildspec"
	"github.com/gantry-ci/gantry/services/redact"
)

// LogSink receives a run's output, one line at a time without its line
// ending, labelled with the phase that produced it. The runner never calls
// it from two goroutines at once.
type LogSink interface {
	Line(phase string, line string)
}

// Defaults and limits.
const (
	// DefaultMaxLogBytes caps the output handed to the LogSink.
	DefaultMaxLogBytes = 10 << 20
	// DefaultKillGrace is how long processes get between SIGTERM and
	// SIGKILL.
	DefaultKillGrace = 10 * time.Second
	// MaxLineBytes is the longest line handed to the sink; longer output
	// without a newline is split into lines of this size.
	MaxLineBytes = 64 << 10
)

// lingerGrace is how long the runner waits, after a command's shell exits,
// for the end of its output when processes it started in the background
// still run (they may hold the output pipe open for as long as they live).
const lingerGrace = 200 * time.Millisecond

// Options configure one run.
type Options struct {
	// Workspace is the directory the commands start in. Required; it must
	// exist.
	Workspace string
	// Env is the base environment, complete: the worker's own environment
	// is not inherited, so include PATH, HOME and the like.
	Env map[string]string
	// Variables are the task's variables; they override the buildspec's
	// env.variables, which override Env.
	Variables map[string]string
	// Secrets are resolved secret values by environment variable name; they
	// override Variables. Every value is masked in the output handed to
	// Sink, in the runner's own lines and in Result.Reason, and an exported
	// variable that holds one is left out. Values shorter than
	// redact.MinLen are refused, since they could not be masked.
	Secrets map[string]string
	// Sink receives the output; nil discards it.
	Sink LogSink
	// MaxLogBytes caps the bytes (line plus newline) handed to Sink; 0
	// means DefaultMaxLogBytes.
	MaxLogBytes int64
	// KillGrace is the time between SIGTERM and SIGKILL; 0 means
	// DefaultKillGrace.
	KillGrace time.Duration
	// Shell is the shell to run commands with, a path or a name looked up
	// in the worker's PATH; empty means bash, or sh where bash is missing.
	Shell string
	// TempDir holds the run's private state directory; empty means
	// os.TempDir().
	TempDir string
}

// Validate reports every problem with the options at once; each wraps
// ErrInvalidOptions.
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Workspace == "" {
		bad("Workspace is empty")
	} else if fi, err := os.Stat(o.Workspace); err != nil {
		bad("Workspace: %v", err)
	} else if !fi.IsDir() {
		bad("Workspace %s is not a directory", o.Workspace)
	}
	if o.MaxLogBytes < 0 {
		bad("MaxLogBytes is negative")
	}
	if o.KillGrace < 0 {
		bad("KillGrace is negative")
	}
	for _, m := range []struct {
		name string
		vars map[string]string
	}{{"Env", o.Env}, {"Variables", o.Variables}, {"Secrets", o.Secrets}} {
		for _, k := range slices.Sorted(maps.Keys(m.vars)) {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				bad("%s: invalid variable name %q", m.name, k)
			}
			if strings.ContainsRune(m.vars[k], 0) {
				bad("%s: value of %s contains a NUL character", m.name, k)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(o.Secrets)) {
		if redact.TooShort(o.Secrets[k]) {
			bad("Secrets: the value of %s is shorter than %d bytes and could not be masked", k, redact.MinLen)
		}
	}
	return errors.Join(errs...)
}

// Status is the outcome of a run, a phase or nothing yet.
type Status string

// Statuses. A run is Succeeded, Failed, TimedOut or Stopped; a phase can also
// be Skipped (not run because an earlier phase aborted the build).
const (
	Succeeded Status = "SUCCEEDED"
	Failed    Status = "FAILED"
	TimedOut  Status = "TIMED_OUT"
	Stopped   Status = "STOPPED"
	Skipped   Status = "SKIPPED"
)

// Result is what a run did.
type Result struct {
	Status Status
	// FailedPhase is the first phase that failed, or the one that was
	// running at a timeout or cancellation; empty on success.
	FailedPhase string
	// Reason says why, for people; empty on success.
	Reason string
	// Phases are the phases the buildspec defines, in order.
	Phases []PhaseResult
	// ExportedVariables are the values of env.exported-variables after the
	// last phase; variables that are not set are left out. Nil after a
	// timeout or cancellation.
	ExportedVariables map[string]string
	// LogBytes counts the bytes handed to the sink (lines plus newlines).
	LogBytes int64
	// Truncated says output was dropped at MaxLogBytes.
	Truncated bool
	Duration  time.Duration
}

// PhaseResult is what one phase did.
type PhaseResult struct {
	Name   string
	Status Status
	// Reason says why the phase did not succeed.
	Reason string
	// Commands are the commands that ran, then the finally commands that
	// ran.
	Commands []CommandResult
	Duration time.Duration
}

// CommandResult is one command's outcome.
type CommandResult struct {
	Command string
	// Finally marks a command of the phase's finally block.
	Finally bool
	// ExitCode is the shell's exit code: 128+n when a signal n killed it
	// (as $? reports), -1 when it could not start.
	ExitCode int
	Duration time.Duration
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkSpec(spec *buildspec.Spec) error {
	if spec == nil {
		return fmt.Errorf("%w: nil", ErrInvalidSpec)
	}
	n := 0
	for _, name := range buildspec.PhaseNames {
		if spec.Phases.Get(name) != nil {
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: no phase", ErrInvalidSpec)
	}
	for _, v := range spec.Env.ExportedVariables {
		if !identifier.MatchString(v) {
			return fmt.Errorf("%w: exported variable %q is not a shell identifier", ErrInvalidSpec, v)
		}
	}
	for k, v := range spec.Env.Variables {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return fmt.Errorf("%w: variable %q", ErrInvalidSpec, k)
		}
	}
	return nil
}

func findShell(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoShell, err)
		}
		return p, nil
	}
	for _, sh := range []string{"bash", "sh"} {
		if p, err := exec.LookPath(sh); err == nil {
			return p, nil
		}
	}
	return "", ErrNoShell
}

// Run runs spec's phases in opts.Workspace and returns what happened. A
// failed, timed-out or cancelled build is a Result, not an error; the error
// is for a run that could not start (ErrInvalidOptions, ErrInvalidSpec,
// ErrNoShell, ErrUnsupported, or failing to create the state directory).
func Run(ctx context.Context, spec *buildspec.Spec, opts Options) (*Result, error) {
	if !supported {
		return nil, ErrUnsupported
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	shell, err := findShell(opts.Shell)
	if err != nil {
		return nil, err
	}
	ws, err := filepath.Abs(opts.Workspace)
	if err != nil {
		return nil, fmt.Errorf("%w: Workspace: %v", ErrInvalidOptions, err)
	}
	state, err := os.MkdirTemp(opts.TempDir, "gantry-run-")
	if err != nil {
		return nil, fmt.Errorf("create run state directory: %w", err)
	}
	defer os.RemoveAll(state)

	r := &run{
		spec:       spec,
		shell:      shell,
		sink:       opts.Sink,
		maxLog:     opts.MaxLogBytes,
		grace:      opts.KillGrace,
		workspace:  ws,
		cwd:        ws,
		envFile:    filepath.Join(state, "env"),
		nextEnv:    filepath.Join(state, "env.next"),
		nextCwd:    filepath.Join(state, "cwd.next"),
		succeeding: true,
		mask:       redact.New(slices.Collect(maps.Values(opts.Secrets))...),
	}
	if r.maxLog == 0 {
		r.maxLog = DefaultMaxLogBytes
	}
	if r.grace == 0 {
		r.grace = DefaultKillGrace
	}
	env := maps.Clone(opts.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, spec.Env.Variables)
	maps.Copy(env, opts.Variables)
	maps.Copy(env, opts.Secrets)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		r.initEnv = append(r.initEnv, k+"="+env[k])
	}

	start := time.Now()
	res := r.phases(ctx)
	if ctx.Err() == nil {
		res.ExportedVariables = r.exported(ctx)
	}
	r.finish()
	res.Reason = r.mask.String(res.Reason)
	for i := range res.Phases {
		res.Phases[i].Reason = r.mask.String(res.Phases[i].Reason)
	}
	res.LogBytes, res.Truncated = r.logBytes, r.truncated
	res.Duration = time.Since(start)
	return res, nil
}

// run is the state of one Run.
type run struct {
	spec      *buildspec.Spec
	shell     string
	sink      LogSink
	maxLog    int64
	grace     time.Duration
	workspace string

	// The shell state carried between commands.
	initEnv  []string // the first command's environment
	haveDump bool     // envFile holds the environment; the process gets none
	cwd      string
	envFile  string
	nextEnv  string // written by the EXIT trap
	nextCwd  string

	succeeding bool
	mask       *redact.Masker // the secrets' values, hidden in every line

	groups    []*exec.Cmd // every command's shell, its process group's leader
	lingering []*pump     // output readers still held open by background processes

	logMu     sync.Mutex
	logBytes  int64
	truncated bool
}

func ctxStatus(ctx context.Context) Status {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return TimedOut
	}
	return Stopped
}

func (r *run) phases(ctx context.Context) *Result {
	res := &Result{Status: Succeeded}
	stop := false
	for _, name := range buildspec.PhaseNames {
		ph := r.spec.Phases.Get(name)
		if ph == nil {
			continue
		}
		if stop {
			res.Phases = append(res.Phases, PhaseResult{Name: name, Status: Skipped})
			continue
		}
		pr := r.phase(ctx, name, ph)
		res.Phases = append(res.Phases, pr)
		switch pr.Status {
		case TimedOut, Stopped:
			res.Status, res.FailedPhase, res.Reason = pr.Status, name, pr.Reason
			stop = true
		case Failed:
			if res.FailedPhase == "" {
				res.FailedPhase, res.Reason = name, pr.Reason
			}
			res.Status = Failed
			r.succeeding = false
			// CodeBuild: a failed install or pre_build ends the build; a
			// failed build still runs post_build.
			if ph.OnFailure != buildspec.Continue && name != buildspec.Build {
				stop = true
			}
		}
	}
	return res
}

func (r *run) phase(ctx context.Context, name string, ph *buildspec.Phase) PhaseResult {
	start := time.Now()
	pr := PhaseResult{Name: name, Status: Succeeded}
	r.note(name, "Entering phase %s", name)
	run := func(cmds []string, finally bool) bool {
		for _, c := range cmds {
			cr, reason := r.command(ctx, name, c, finally)
			started := cr.ExitCode != -1 || reason != ""
			if started {
				pr.Commands = append(pr.Commands, cr)
			}
			if ctx.Err() != nil {
				pr.Status = ctxStatus(ctx)
				verb, when := "timed out", "while running"
				if pr.Status == Stopped {
					verb = "was stopped"
				}
				if !started {
					when = "before"
				}
				pr.Reason = fmt.Sprintf("%s %s %q", verb, when, summary(c))
				return false
			}
			if reason != "" {
				if pr.Status == Succeeded {
					pr.Status, pr.Reason = Failed, reason
					if finally {
						pr.Reason = "finally: " + reason
					}
				}
				return true
			}
		}
		return true
	}
	if run(ph.Commands, false) {
		run(ph.Finally, true)
	}
	pr.Duration = time.Since(start)
	if pr.Reason != "" {
		r.note(name, "Phase %s %s: %s", name, pr.Status, pr.Reason)
	} else {
		r.note(name, "Phase %s %s", name, pr.Status)
	}
	return pr
}

// summary is a command's first line, shortened, for messages.
func summary(c string) string {
	c = strings.TrimSpace(c)
	first, rest, multi := strings.Cut(c, "\n")
	if len(first) > 200 {
		first, multi = first[:200], true
	}
	if multi || rest != "" {
		return first + " ..."
	}
	return first
}

// assignment matches a command that starts by setting a variable (export
// NAME=..., NAME=..., declare -x NAME=...).
var assignment = regexp.MustCompile(`^\s*((?:export|readonly|local|declare(?:\s+-[A-Za-z]+)*)\s+)?([A-Za-z_][A-Za-z0-9_]*)=`)

// describe is how a command is announced in the log: its summary, except
// that the value a command assigns is not shown, since it is often a
// token or a key; the variable's name is.
func describe(c string) string {
	s := summary(c)
	if m := assignment.FindStringSubmatchIndex(s); m != nil {
		return s[:m[1]] + "[value hidden]"
	}
	return s
}

// shQuote quotes s for the shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// script wraps a command: restore the environment of the previous command,
// set GANTRY_BUILD_SUCCEEDING, and on exit save the environment and working
// directory for the next one.
func (r *run) script(command string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "__gantry_env=%s; __gantry_cwd=%s\n", shQuote(r.nextEnv), shQuote(r.nextCwd))
	if r.haveDump {
		fmt.Fprintf(&b, ". %s\n", shQuote(r.envFile))
	}
	succeeding := 0
	if r.succeeding {
		succeeding = 1
	}
	fmt.Fprintf(&b, "export GANTRY_BUILD_SUCCEEDING=%d\n", succeeding)
	b.WriteString(`trap '__gantry_rc=$?; export -p >"$__gantry_env" && pwd >"$__gantry_cwd"; exit $__gantry_rc' EXIT` + "\n")
	b.WriteString(command)
	b.WriteString("\n")
	return b.String()
}

// env is the environment of the next command's process: the initial one,
// or nothing once a dump carries it.
func (r *run) env() []string {
	if r.haveDump {
		return []string{}
	}
	return r.initEnv
}

// loadState adopts what the last command's EXIT trap saved, if it ran to
// the end.
func (r *run) loadState() {
	cwd, err := os.ReadFile(r.nextCwd)
	if err != nil {
		return
	}
	if err := os.Rename(r.nextEnv, r.envFile); err != nil {
		return
	}
	r.haveDump = true
	r.cwd = strings.TrimSuffix(string(cwd), "\n")
}

// command runs one command and returns its result and, if it failed, why.
func (r *run) command(ctx context.Context, phase, command string, finally bool) (CommandResult, string) {
	cr := CommandResult{Command: command, Finally: finally, ExitCode: -1}
	if ctx.Err() != nil {
		return cr, ""
	}
	start := time.Now()
	defer func() { cr.Duration = time.Since(start) }()
	r.note(phase, "Running command: %s", describe(command))
	os.Remove(r.nextEnv)
	os.Remove(r.nextCwd)

	rd, wr, err := os.Pipe()
	if err != nil {
		return cr, fmt.Sprintf("command %q could not start: %v", summary(command), err)
	}
	cmd := exec.Command(r.shell, "-c", r.script(command))
	cmd.Dir = r.cwd
	cmd.Env = r.env()
	cmd.Stdout, cmd.Stderr = wr, wr
	setGroup(cmd)
	err = cmd.Start()
	wr.Close()
	if err != nil {
		rd.Close()
		return cr, fmt.Sprintf("command %q could not start: %v", summary(command), err)
	}
	r.groups = append(r.groups, cmd)
	p := r.startPump(phase, rd)

	exited := make(chan exitStatus, 1)
	go func() { exited <- waitExit(cmd) }()
	var st exitStatus
	select {
	case st = <-exited:
	case <-ctx.Done():
		r.killAll()
		st = <-exited
	}
	r.settle(p, cmd.Process.Pid)

	cr.ExitCode = st.code
	switch {
	case st.err != nil && st.code == -1:
		return cr, fmt.Sprintf("command %q: %v", summary(command), st.err)
	case st.signaled:
		return cr, fmt.Sprintf("command %q was killed by signal %v", summary(command), st.signal)
	}
	r.loadState()
	if st.code != 0 {
		return cr, fmt.Sprintf("command %q exited with code %d", summary(command), st.code)
	}
	return cr, ""
}

// killAll stops every process group of the run that still has a live
// process: SIGTERM, then SIGKILL to what is left after the grace period.
func (r *run) killAll() {
	pgids := map[int]bool{}
	for _, c := range r.groups {
		pgids[c.Process.Pid] = true
	}
	live := liveGroups(pgids)
	if len(live) == 0 {
		return
	}
	for p := range live {
		terminateGroup(p)
	}
	deadline := time.Now().Add(r.grace)
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if live = liveGroups(live); len(live) == 0 {
			return
		}
	}
	for p := range live {
		killGroup(p)
	}
	for range 50 { // SIGKILL is not instant; wait up to a second
		if live = liveGroups(live); len(live) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish ends the run: background processes are stopped, zombies reaped,
// and the last output read.
func (r *run) finish() {
	r.killAll()
	for _, c := range r.groups {
		reap(c)
	}
	deadline := time.Now().Add(time.Second)
	for _, p := range r.lingering {
		select {
		case <-p.done:
		case <-time.After(time.Until(deadline)): // a process that left its group still holds the pipe
		}
		p.f.Close()
		<-p.done
	}
}

// exported reads env.exported-variables in the environment the last
// command left.
func (r *run) exported(ctx context.Context) map[string]string {
	names := r.spec.Env.ExportedVariables
	if len(names) == 0 {
		return nil
	}
	var b strings.Builder
	if r.haveDump {
		fmt.Fprintf(&b, ". %s\n", shQuote(r.envFile))
	}
	for _, n := range names {
		fmt.Fprintf(&b, "if [ -n \"${%s+x}\" ]; then printf '%%s\\0%%s\\0' %s \"$%s\"; fi\n", n, n, n)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.shell, "-c", b.String())
	cmd.Dir = r.workspace
	cmd.Env = r.env()
	out, err := cmd.Output()
	if err != nil {
		r.note("gantry", "could not read exported variables: %v", err)
		return nil
	}
	vars := map[string]string{}
	parts := bytes.Split(out, []byte{0})
	for i := 0; i+1 < len(parts); i += 2 {
		k, v := string(parts[i]), string(parts[i+1])
		if r.mask.Contains(v) {
			// Exported variables are written to the run's events.
			r.note("gantry", "exported variable %s holds a secret's value; it is not exported", k)
			continue
		}
		vars[k] = v
	}
	return vars
}

// pump reads one command's output into the sink.
type pump struct {
	f    *os.File
	done chan struct{}
}

func (r *run) startPump(phase string, f *os.File) *pump {
	p := &pump{f: f, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		// Mask the byte stream before it is cut into lines, so that a
		// secret split across reads or across a MaxLineBytes cut is still
		// found whole.
		lw := &lineWriter{emit: func(line string) { r.emit(phase, line) }}
		mw := r.mask.NewWriter(lw)
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				_, _ = mw.Write(buf[:n])
			}
			if err != nil {
				if err != io.EOF && !errors.Is(err, os.ErrClosed) {
					r.note(phase, "reading output: %v", err)
				}
				break
			}
		}
		_ = mw.Flush()
		lw.flush()
	}()
	return p
}

// lineWriter cuts output into lines without their line endings; a line
// longer than MaxLineBytes is handed over in pieces of that size.
type lineWriter struct {
	emit func(string)
	max  int // MaxLineBytes when 0
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	limit := w.max
	if limit <= 0 {
		limit = MaxLineBytes
	}
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		switch {
		case i >= 0 && i < limit:
			w.emit(strings.TrimSuffix(string(w.buf[:i]), "\r"))
			w.buf = w.buf[i+1:]
		case len(w.buf) >= limit:
			w.emit(strings.TrimSuffix(string(w.buf[:limit]), "\r"))
			w.buf = w.buf[limit:]
		default:
			return len(p), nil
		}
	}
}

// flush hands over the last line if it had no line ending.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(strings.TrimSuffix(string(w.buf), "\r"))
		w.buf = nil
	}
}

// settle waits for the end of a command's output. If processes the command
// left in the background may still hold the pipe, it waits only briefly
// and lets the pump run on until the end of the build.
func (r *run) settle(p *pump, pgid int) {
	wait := 10 * time.Second // the shell is gone; only a setsid escapee can hold the pipe
	if len(liveGroups(map[int]bool{pgid: true})) > 0 {
		wait = lingerGrace
	}
	select {
	case <-p.done:
		p.f.Close()
	case <-time.After(wait):
		r.lingering = append(r.lingering, p)
	}
}

// emit hands a line to the sink, within the cap.
func (r *run) emit(phase, line string) {
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if r.truncated {
		return
	}
	n := int64(len(line)) + 1
	if r.logBytes+n > r.maxLog {
		r.truncated = true
		if r.sink != nil {
			r.sink.Line(phase, fmt.Sprintf("[gantry] output truncated at %d bytes; later lines are dropped", r.maxLog))
		}
		return
	}
	r.logBytes += n
	if r.sink != nil {
		r.sink.Line(phase, line)
	}
}

// note logs a line of the runner's own, secrets masked.
func (r *run) note(phase, format string, args ...any) {
	r.emit(phase, r.mask.String("[gantry] "+fmt.Sprintf(format, args...)))
}
