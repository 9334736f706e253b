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
	"github.com/gantry-ci/gantry/services/junit"
	"github.com/gantry-ci/gantry/services/runner"
	"github.com/gantry-ci/gantry/services/worker"
)

// Handler runs build (and, with Tests set, test) actions.
type Handler struct {
	Validator *schemas.Validator
	// Tests makes the handler read the buildspec's reports and fail the
	// action when a test failed.
	Tests bool
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
	env := baseEnv()
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
	env["GANTRY_SRC_DIR"] = src
	env["GANTRY_WORKSPACE"] = t.Workspace
	if exe, err := os.Executable(); err == nil {
		env["GANTRY_BIN"] = exe
	}
	res, err := runner.Run(ctx, spec, runner.Options{Workspace: src, Env: env, Variables: t.Variables, Sink: t.Log,
		KillGrace: 5 * time.Second, TempDir: t.Workspace})
	if err != nil {
		return worker.Result{}, fmt.Errorf("run buildspec: %w", err)
	}
	var runErr error
	if res.Status != runner.Succeeded {
		runErr = fmt.Errorf("%w: %s", ErrBuildFailed, res.Reason)
	}
	out := worker.Result{Variables: res.ExportedVariables}
	if h.Tests {
		if err := h.report(ctx, t, spec, src); err != nil && runErr == nil {
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
func (h *Handler) report(ctx context.Context, t *worker.Task, spec *buildspec.Spec, src string) error {
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

func baseEnv() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func envName(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_").Replace(s))
}
