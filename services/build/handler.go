// Package build is the handler of build and test actions: it fetches the
// action's input artifacts (verifying their digests), runs the buildspec in
// the task's workspace, stores the output artifact, and for test actions
// parses the JUnit reports the buildspec names into a test.reported event
// that gates the action.
package build

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/buildspec"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/junit"
	"github.com/gantry-ci/gantry/services/redact"
	"github.com/gantry-ci/gantry/services/runner"
	"github.com/gantry-ci/gantry/services/secrets"
	"github.com/gantry-ci/gantry/services/worker"
)

// Handler runs build (and, with Tests set, test) actions.
type Handler struct {
	Validator *schemas.Validator
	// Tests makes the handler read the buildspec's reports and fail the
	// action when a test failed.
	Tests bool
	// Secrets resolves the secret references of the action and of its
	// buildspec; nil fails any action that has some.
	Secrets *secrets.Resolver
	// PassEnv names variables of the worker's environment that builds see
	// besides BaseEnvNames (a proxy of your own, GOPROXY, ...). Nothing
	// else of the worker's environment reaches a build.
	PassEnv []string
}

var _ worker.Handler = (*Handler)(nil)

var (
	// ErrTestsFailed fails a test action whose reports hold failures.
	ErrTestsFailed = errors.New("tests failed")
	// ErrBuildFailed fails an action whose buildspec failed.
	ErrBuildFailed = errors.New("buildspec failed")
	// ErrNoReports fails a test action whose buildspec produced no report.
	ErrNoReports = errors.New("no JUnit report files")
)

// DefaultBuildspec is read from the primary input when the action names none.
const DefaultBuildspec = "buildspec.yml"

// Handle runs one build or test task.
func (h *Handler) Handle(ctx context.Context, t *worker.Task) (worker.Result, error) {
	store := t.Artifacts
	src := filepath.Join(t.Workspace, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return worker.Result{}, err
	}
	env, err := buildEnv(t.Workspace, h.PassEnv)
	if err != nil {
		return worker.Result{}, err
	}
	for i, in := range t.Inputs {
		dest := src
		if i > 0 {
			dest = filepath.Join(t.Workspace, "inputs", in.Name)
		}
		t.Log.Printf("fetching input artifact %s (%d bytes, sha256 %s)", in.Name, in.Size, in.SHA256)
		if err := store.FetchAndUnpack(ctx, in, dest); err != nil {
			return worker.Result{}, fmt.Errorf("input artifact %s: %w", in.Name, err)
		}
		env["GANTRY_INPUT_"+envName(in.Name)] = dest
	}
	spec, err := h.loadSpec(t, src)
	if err != nil {
		return worker.Result{}, err
	}
	refs := maps.Clone(spec.Env.Secrets)
	if refs == nil {
		refs = map[string]string{}
	}
	maps.Copy(refs, t.Secrets) // the pipeline's references win, as its variables do
	resolver := h.Secrets
	if resolver == nil {
		resolver = &secrets.Resolver{}
	}
	values, err := resolver.Resolve(ctx, refs)
	if err != nil {
		return worker.Result{}, err
	}
	mask := redact.New(slices.Collect(maps.Values(values))...)
	t.Log.SetMask(mask)
	if len(values) > 0 {
		t.Log.Printf("secrets: %s (values masked as %s)", strings.Join(slices.Sorted(maps.Keys(values)), ", "), redact.Mask)
	}
	out, err := h.run(ctx, t, spec, src, env, values, mask)
	return out, maskErr(mask, err)
}

// maskErr hides secret values in the text of an error, which becomes an
// action.failed reason; errors.Is still sees the chain.
func maskErr(m *redact.Masker, err error) error {
	if err == nil || !m.Contains(err.Error()) {
		return err
	}
	return &maskedError{msg: m.String(err.Error()), err: err}
}

type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

func (h *Handler) run(ctx context.Context, t *worker.Task, spec *buildspec.Spec, src string, env, secretValues map[string]string, mask *redact.Masker) (worker.Result, error) {
	store := t.Artifacts
	env["GANTRY_SRC_DIR"] = src
	env["GANTRY_WORKSPACE"] = t.Workspace
	if exe, err := os.Executable(); err == nil {
		env["GANTRY_BIN"] = exe
	}
	vars, err := taskVariables(t.Variables, t.Configuration)
	if err != nil {
		return worker.Result{}, err
	}
	res, err := runner.Run(ctx, spec, runner.Options{Workspace: src, Env: env, Variables: vars, Secrets: secretValues,
		Sink: t.Log, KillGrace: 5 * time.Second, TempDir: t.Workspace})
	if err != nil {
		return worker.Result{}, fmt.Errorf("run buildspec: %w", err)
	}
	var runErr error
	if res.Status != runner.Succeeded {
		runErr = fmt.Errorf("%w: %s", ErrBuildFailed, res.Reason)
	}
	out := worker.Result{Variables: res.ExportedVariables}
	// A stage condition's Command rule runs on a test worker but is judged
	// by its exit status alone: it has no JUnit report to ask for.
	if h.Tests && t.Configuration[decider.ConditionTaskKey] == "" {
		if err := h.report(ctx, t, spec, src, mask); err != nil && runErr == nil {
			runErr = err
		} else if err != nil {
			t.Log.Printf("%v", err)
		}
	}
	if runErr != nil {
		return out, runErr
	}
	if spec.Artifacts != nil && len(t.Outputs) > 0 {
		found, err := runner.CollectArtifacts(src, *spec.Artifacts)
		if err != nil {
			return out, fmt.Errorf("artifact %s: %w", t.Outputs[0], err)
		}
		files := make([]artifact.File, 0, len(found))
		for _, f := range found {
			files = append(files, artifact.File{DiskPath: f.Path, ArchivePath: f.Name})
		}
		ref, err := store.PutDir(ctx, t.ArtifactKey(t.Outputs[0]), t.Outputs[0], files)
		if err != nil {
			return out, fmt.Errorf("store artifact %s: %w", t.Outputs[0], err)
		}
		if err := t.Publish(ctx, events.ArtifactStored{ActionRef: t.Ref, Artifact: ref}, "artifact/"+ref.Name); err != nil {
			return out, err
		}
		t.Log.Printf("stored artifact %s: %d files, %d bytes, sha256 %s", ref.Name, len(files), ref.Size, ref.SHA256)
		out.Outputs = append(out.Outputs, ref)
	} else if len(t.Outputs) > 0 {
		return out, fmt.Errorf("the action declares output %q but the buildspec has no artifacts section", t.Outputs[0])
	}
	return out, nil
}

func (h *Handler) loadSpec(t *worker.Task, src string) (*buildspec.Spec, error) {
	name := t.Configuration["buildspec"]
	if name == "" {
		name = DefaultBuildspec
	}
	if strings.Contains(name, "\n") {
		return buildspec.Parse("inline buildspec", []byte(name))
	}
	p := filepath.Join(src, filepath.FromSlash(name))
	if rel, err := filepath.Rel(src, p); err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("buildspec %q is outside the source", name)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read buildspec %s from the primary input: %w", name, err)
	}
	return buildspec.Parse(name, data)
}

// report parses every report the buildspec names into one test.reported.
func (h *Handler) report(ctx context.Context, t *worker.Task, spec *buildspec.Spec, src string, mask *redact.Masker) error {
	var files []string
	for _, name := range slices.Sorted(maps.Keys(spec.Reports)) {
		found, err := runner.CollectReport(src, spec.Reports[name])
		if errors.Is(err, runner.ErrNoFiles) {
			continue
		}
		if err != nil {
			return fmt.Errorf("report %s: %w", name, err)
		}
		for _, f := range found {
			files = append(files, f.Path)
		}
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: the buildspec's reports matched no files", ErrNoReports)
	}
	rep, err := junit.ParseFiles(files...)
	if err != nil {
		return fmt.Errorf("parse JUnit reports: %w", err)
	}
	ev := rep.Event(t.Ref)
	// A test may print a secret in its failure message; the report is an event.
	for i := range ev.Failures {
		f := &ev.Failures[i]
		f.Suite, f.Name, f.Message = mask.String(f.Suite), mask.String(f.Name), mask.String(f.Message)
	}
	if err := t.Publish(ctx, ev, "test-reported"); err != nil {
		return err
	}
	t.Log.Printf("tests: %d total, %d passed, %d failed, %d skipped", ev.Total, ev.Passed, ev.Failed, ev.Skipped)
	if ev.Failed > 0 {
		names := make([]string, 0, len(ev.Failures))
		for _, f := range ev.Failures {
			names = append(names, f.Name)
		}
		return fmt.Errorf("%w: %d of %d (%s)", ErrTestsFailed, ev.Failed, ev.Total, strings.Join(names, ", "))
	}
	return nil
}

// BaseEnvNames are the variables of the worker's own environment that a
// build sees: what tools need to find programs, locale and proxies. The
// rest (NATS_URL, NATS_CREDS, cloud credentials of the worker host, ...)
// never reaches a build.
var BaseEnvNames = []string{
	"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}

// defaultPath is PATH when the worker has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildEnv is a build's base environment: BaseEnvNames and pass taken from
// the worker's environment where set, and TMPDIR a directory of the task's
// workspace, so that temporary files go away with it.
func buildEnv(workspace string, pass []string) (map[string]string, error) {
	env := map[string]string{"PATH": defaultPath}
	for _, k := range append(slices.Clone(BaseEnvNames), pass...) {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	tmp := filepath.Join(workspace, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create the build's TMPDIR: %w", err)
	}
	env["TMPDIR"] = tmp
	return env, nil
}

func envName(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_").Replace(s))
}
