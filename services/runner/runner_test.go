package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/services/buildspec"
	"github.com/gantry-ci/gantry/services/internal/proctest"
)

// sink records what the runner logs.
type sink struct {
	mu    sync.Mutex
	lines []logLine
}

type logLine struct{ phase, text string }

func (s *sink) Line(phase, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, logLine{phase, line})
}

// output returns the command output of a phase ("" for all), without the
// runner's own [gantry] lines.
func (s *sink) output(phase string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.lines {
		if (phase == "" || l.phase == phase) && !strings.HasPrefix(l.text, "[gantry] ") {
			out = append(out, l.text)
		}
	}
	return out
}

var _ LogSink = (*sink)(nil)

// baseEnv is a minimal environment for the commands.
func baseEnv() map[string]string {
	return map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.TempDir(), "LANG": "C"}
}

func parse(t *testing.T, src string) *buildspec.Spec {
	t.Helper()
	spec, err := buildspec.Parse("buildspec.yml", []byte(src))
	if err != nil {
		t.Fatalf("parse buildspec: %v", err)
	}
	return spec
}

// runSpec runs src in a fresh workspace and returns the result, the log and
// the workspace.
func runSpec(t *testing.T, ctx context.Context, src string, opts Options) (*Result, *sink, string) {
	t.Helper()
	if opts.Workspace == "" {
		opts.Workspace = t.TempDir()
	}
	if opts.Env == nil {
		opts.Env = baseEnv()
	}
	s := &sink{}
	if opts.Sink == nil {
		opts.Sink = s
	}
	if opts.KillGrace == 0 {
		opts.KillGrace = 300 * time.Millisecond
	}
	res, err := Run(ctx, parse(t, src), opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, s, opts.Workspace
}

func phaseStatuses(res *Result) map[string]Status {
	out := map[string]Status{}
	for _, p := range res.Phases {
		out[p.Name] = p.Status
	}
	return out
}

func TestEnvPersistence(t *testing.T) {
	t.Setenv("GANTRY_WORKER_SECRET", "leak")
	src := `version: 0.2
env:
  variables:
    FROM_SPEC: spec
    OVERRIDDEN: spec
    PORT: 8080
phases:
  install:
    commands:
      - export FOO=bar
      - |
        export MULTI="line one
        line two"
      - export BASE=changed-$BASE
      - export PATH="$PATH:/opt/gantry-test/bin"
      - export GONE=soon && unset GONE
      - NOT_EXPORTED=x
  build:
    commands:
      - echo "FOO=$FOO"
      - echo "BASE=$BASE"
      - echo "SPEC=$FROM_SPEC PORT=$PORT OVERRIDDEN=$OVERRIDDEN TASK=$TASK"
      - echo "GONE=${GONE-unset} NOT_EXPORTED=${NOT_EXPORTED-unset}"
      - echo "SECRET=${GANTRY_WORKER_SECRET-unset}"
      - case "$PATH" in *:/opt/gantry-test/bin) echo path-kept;; esac
      - printf '%s\n' "$MULTI" | wc -l | tr -d ' '
`
	env := baseEnv()
	env["BASE"] = "base"
	res, s, _ := runSpec(t, context.Background(), src, Options{
		Env:       env,
		Variables: map[string]string{"OVERRIDDEN": "task", "TASK": "task"},
	})
	if res.Status != Succeeded {
		t.Fatalf("status %s: %s\n%v", res.Status, res.Reason, s.output(""))
	}
	want := []string{
		"FOO=bar",
		"BASE=changed-base",
		"SPEC=spec PORT=8080 OVERRIDDEN=task TASK=task",
		"GONE=unset NOT_EXPORTED=unset",
		"SECRET=unset",
		"path-kept",
		"2",
	}
	if got := s.output(buildspec.Build); !reflect.DeepEqual(got, want) {
		t.Fatalf("build output\n got %q\nwant %q", got, want)
	}
}

func TestCdPersistence(t *testing.T) {
	src := `version: 0.2
phases:
  install:
    commands:
      - mkdir -p "a dir/b"
      - cd "a dir"
      - pwd
      - cd b && pwd
  build:
    commands:
      - pwd
      - cd /
    finally:
      - pwd
  post_build:
    commands:
      - pwd
`
	res, s, ws := runSpec(t, context.Background(), src, Options{})
	if res.Status != Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Reason)
	}
	real, _ := filepath.EvalSymlinks(ws)
	a := filepath.Join(real, "a dir")
	b := filepath.Join(a, "b")
	want := []string{a, b, b, "/", "/"}
	got := s.output("")
	for i := range got {
		if r, err := filepath.EvalSymlinks(got[i]); err == nil {
			got[i] = r
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pwd\n got %q\nwant %q", got, want)
	}
}

func TestExportedVariables(t *testing.T) {
	src := `version: 0.2
env:
  variables:
    FROM_SPEC: spec value
  exported-variables: [IMAGE_TAG, WEIRD, FROM_SPEC, EMPTY, NEVER_SET, DROPPED]
phases:
  build:
    commands:
      - export IMAGE_TAG=v1.2.3
      - export DROPPED=x
      - export EMPTY=
  post_build:
    commands:
      - |
        export WEIRD="a'b\"c \$d
        e%s"
      - unset DROPPED
`
	for _, shell := range []string{"", "sh"} {
		t.Run("shell="+shell, func(t *testing.T) {
			res, _, _ := runSpec(t, context.Background(), src, Options{Shell: shell})
			if res.Status != Succeeded {
				t.Fatalf("status %s: %s", res.Status, res.Reason)
			}
			want := map[string]string{
				"IMAGE_TAG": "v1.2.3",
				"WEIRD":     "a'b\"c $d\ne%s",
				"FROM_SPEC": "spec value",
				"EMPTY":     "",
			}
			if !reflect.DeepEqual(res.ExportedVariables, want) {
				t.Fatalf("exported\n got %q\nwant %q", res.ExportedVariables, want)
			}
		})
	}
}

func TestExportedVariablesAfterFailure(t *testing.T) {
	src := `version: 0.2
env:
  exported-variables: [A]
phases:
  install:
    commands:
      - export A=1
      - "false"
  build:
    commands:
      - export A=2
`
	res, _, _ := runSpec(t, context.Background(), src, Options{})
	if res.Status != Failed || res.ExportedVariables["A"] != "1" {
		t.Fatalf("status %s, exported %v", res.Status, res.ExportedVariables)
	}
}

// TestShFallback runs the persistence checks with sh (dash here) instead of
// bash.
func TestShFallback(t *testing.T) {
	src := `version: 0.2
phases:
  install:
    commands:
      - export FOO=bar
      - mkdir sub && cd sub
  build:
    commands:
      - echo "$FOO $(basename "$(pwd)") $GANTRY_BUILD_SUCCEEDING"
`
	res, s, _ := runSpec(t, context.Background(), src, Options{Shell: "sh"})
	if res.Status != Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Reason)
	}
	if got := s.output(buildspec.Build); !reflect.DeepEqual(got, []string{"bar sub 1"}) {
		t.Fatalf("got %q", got)
	}
}

func TestOnFailure(t *testing.T) {
	// Each phase echoes its name; "fail" makes the phase fail.
	spec := func(failIn string, onFailure buildspec.OnFailure) string {
		var b strings.Builder
		b.WriteString("version: 0.2\nphases:\n")
		for _, ph := range buildspec.PhaseNames {
			fmt.Fprintf(&b, "  %s:\n    on-failure: %s\n    commands:\n      - echo %s $GANTRY_BUILD_SUCCEEDING\n", ph, onFailure, ph)
			if ph == failIn {
				b.WriteString("      - exit 7\n      - echo not reached\n")
			}
			fmt.Fprintf(&b, "    finally:\n      - echo finally %s\n", ph)
		}
		return b.String()
	}
	for _, tc := range []struct {
		failIn    string
		onFailure buildspec.OnFailure
		status    Status
		ran       []string
		skipped   []string
	}{
		{"", buildspec.Abort, Succeeded, []string{"install 1", "pre_build 1", "build 1", "post_build 1"}, nil},
		{"install", buildspec.Abort, Failed, []string{"install 1"}, []string{"pre_build", "build", "post_build"}},
		{"pre_build", buildspec.Abort, Failed, []string{"install 1", "pre_build 1"}, []string{"build", "post_build"}},
		{"build", buildspec.Abort, Failed, []string{"install 1", "pre_build 1", "build 1", "post_build 0"}, nil},
		{"post_build", buildspec.Abort, Failed, []string{"install 1", "pre_build 1", "build 1", "post_build 1"}, nil},
		{"install", buildspec.Continue, Failed, []string{"install 1", "pre_build 0", "build 0", "post_build 0"}, nil},
		{"pre_build", buildspec.Continue, Failed, []string{"install 1", "pre_build 1", "build 0", "post_build 0"}, nil},
	} {
		t.Run(fmt.Sprintf("%s-%s", tc.failIn, tc.onFailure), func(t *testing.T) {
			res, s, _ := runSpec(t, context.Background(), spec(tc.failIn, tc.onFailure), Options{})
			if res.Status != tc.status {
				t.Fatalf("status %s, want %s (%s)", res.Status, tc.status, res.Reason)
			}
			var ran []string
			for _, l := range s.output("") {
				if strings.HasPrefix(l, "finally ") {
					continue
				}
				if l == "not reached" {
					t.Errorf("a command after the failing one ran")
				}
				ran = append(ran, l)
			}
			if !reflect.DeepEqual(ran, tc.ran) {
				t.Errorf("ran %q, want %q", ran, tc.ran)
			}
			st := phaseStatuses(res)
			for _, ph := range tc.skipped {
				if st[ph] != Skipped {
					t.Errorf("phase %s is %s, want SKIPPED", ph, st[ph])
				}
			}
			// Every phase that ran, ran its finally block.
			for _, ph := range buildspec.PhaseNames {
				ranFinally := slicesContains(s.output(ph), "finally "+ph)
				if ranFinally != (st[ph] != Skipped) {
					t.Errorf("phase %s (%s): finally ran = %v", ph, st[ph], ranFinally)
				}
			}
			if tc.failIn == "" {
				if res.FailedPhase != "" || res.Reason != "" {
					t.Errorf("success with FailedPhase %q Reason %q", res.FailedPhase, res.Reason)
				}
				return
			}
			if res.FailedPhase != tc.failIn || st[tc.failIn] != Failed {
				t.Errorf("FailedPhase %q (status %s), want %s", res.FailedPhase, st[tc.failIn], tc.failIn)
			}
			if want := `command "exit 7" exited with code 7`; res.Reason != want {
				t.Errorf("Reason %q, want %q", res.Reason, want)
			}
			for _, p := range res.Phases {
				if p.Name != tc.failIn {
					continue
				}
				codes := []int{}
				for _, c := range p.Commands {
					codes = append(codes, c.ExitCode)
				}
				if !reflect.DeepEqual(codes, []int{0, 7, 0}) || !p.Commands[2].Finally {
					t.Errorf("commands of the failed phase: %+v", p.Commands)
				}
			}
		})
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestFinally(t *testing.T) {
	src := `version: 0.2
phases:
  build:
    commands:
      - echo ok
    finally:
      - echo cleanup 1
      - exit 4
      - echo cleanup 3
  post_build:
    commands:
      - echo post
`
	res, s, _ := runSpec(t, context.Background(), src, Options{})
	if res.Status != Failed || res.FailedPhase != "build" {
		t.Fatalf("status %s phase %q", res.Status, res.FailedPhase)
	}
	if want := `finally: command "exit 4" exited with code 4`; res.Reason != want {
		t.Errorf("reason %q, want %q", res.Reason, want)
	}
	if got, want := s.output(""), []string{"ok", "cleanup 1", "post"}; !reflect.DeepEqual(got, want) {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestExitCodesAndSignals(t *testing.T) {
	for _, tc := range []struct {
		command string
		code    int
		reason  string
	}{
		{"exit 3", 3, `command "exit 3" exited with code 3`},
		{"kill -KILL $$", 137, `command "kill -KILL $$" was killed by signal killed`},
		{"if then fi", 2, `command "if then fi" exited with code 2`},
		{"no-such-command-gantry", 127, `command "no-such-command-gantry" exited with code 127`},
		{"echo a\necho b\nfalse", 1, `command "echo a ..." exited with code 1`},
	} {
		t.Run(tc.command, func(t *testing.T) {
			src := fmt.Sprintf("version: 0.2\nphases:\n  build:\n    commands:\n      - %q\n", tc.command)
			res, _, _ := runSpec(t, context.Background(), src, Options{})
			got := res.Phases[0].Commands[0]
			if res.Status != Failed || got.ExitCode != tc.code || res.Reason != tc.reason {
				t.Fatalf("status %s code %d reason %q; want code %d reason %q", res.Status, got.ExitCode, res.Reason, tc.code, tc.reason)
			}
		})
	}
}

// TestStateSurvivesFailedCommand: a command killed before its EXIT trap
// leaves the previous environment in place for the finally block.
func TestStateSurvivesFailedCommand(t *testing.T) {
	src := `version: 0.2
phases:
  build:
    commands:
      - export A=1
      - export A=2; kill -KILL $$
    finally:
      - echo "A=$A"
`
	_, s, _ := runSpec(t, context.Background(), src, Options{})
	if got := s.output(""); !reflect.DeepEqual(got, []string{"A=1"}) {
		t.Fatalf("got %q", got)
	}
}

func readPids(t *testing.T, file string) []int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read pids: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("pid %q: %v", f, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// TestTimeoutKillsProcessGroups: at the deadline every process the build
// started is gone, children and grandchildren, those of earlier commands,
// and one that ignores SIGTERM (SIGKILL after the grace period).
func TestTimeoutKillsProcessGroups(t *testing.T) {
	src := `version: 0.2
phases:
  install:
    commands:
      - sleep 1000 & echo $! >> "$PIDS"
  build:
    commands:
      - sleep 1000 & echo $! >> "$PIDS"
      - bash -c 'sleep 1000 & echo $! >> "$PIDS"; sleep 1000' & echo $! >> "$PIDS"
      - sh -c 'trap "" TERM; echo $$ >> "$PIDS"; while :; do sleep 1; done' &
      - sleep 0.3; echo started; sleep 1000
    finally:
      - echo finally must not run after a timeout
`
	pids := filepath.Join(t.TempDir(), "pids")
	env := baseEnv()
	env["PIDS"] = pids
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, s, _ := runSpec(t, ctx, src, Options{Env: env, KillGrace: 400 * time.Millisecond})
	elapsed := time.Since(start)
	if res.Status != TimedOut || res.FailedPhase != "build" {
		t.Fatalf("status %s phase %q reason %q", res.Status, res.FailedPhase, res.Reason)
	}
	if want := `timed out while running "sleep 0.3; echo started; sleep 1000"`; res.Reason != want {
		t.Errorf("reason %q, want %q", res.Reason, want)
	}
	if elapsed > 6*time.Second {
		t.Errorf("Run took %v after a 1.5s timeout", elapsed)
	}
	if got := s.output(""); !reflect.DeepEqual(got, []string{"started"}) {
		t.Errorf("output %q", got)
	}
	if res.ExportedVariables != nil {
		t.Errorf("exported variables after a timeout: %v", res.ExportedVariables)
	}
	all := readPids(t, pids)
	if len(all) != 5 {
		t.Fatalf("want 5 background pids, got %v", all)
	}
	for _, pid := range all {
		if proctest.Alive(pid) {
			t.Errorf("process %d survived the timeout", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestCancelStops(t *testing.T) {
	src := `version: 0.2
phases:
  build:
    commands:
      - echo $$ > "$PIDS"; exec sleep 1000
  post_build:
    commands:
      - echo never
`
	pids := filepath.Join(t.TempDir(), "pids")
	env := baseEnv()
	env["PIDS"] = pids
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			if _, err := os.Stat(pids); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	res, s, _ := runSpec(t, ctx, src, Options{Env: env})
	if res.Status != Stopped || res.FailedPhase != "build" {
		t.Fatalf("status %s phase %q", res.Status, res.FailedPhase)
	}
	if st := phaseStatuses(res); st["post_build"] != Skipped {
		t.Errorf("post_build %s", st["post_build"])
	}
	if len(s.output("")) != 0 {
		t.Errorf("output %q", s.output(""))
	}
	for _, pid := range readPids(t, pids) {
		if proctest.Alive(pid) {
			t.Errorf("process %d survived", pid)
		}
	}
}

// TestBackgroundProcesses: a daemon started in the background does not hold
// the build up, keeps logging under the phase that started it, and is
// stopped when the build ends.
func TestBackgroundProcesses(t *testing.T) {
	src := `version: 0.2
phases:
  install:
    commands:
      - (sleep 0.5; echo daemon says hi; exec sleep 1000) & echo $! > "$PIDS"
  build:
    commands:
      - sleep 1
      - echo built
`
	pids := filepath.Join(t.TempDir(), "pids")
	env := baseEnv()
	env["PIDS"] = pids
	start := time.Now()
	res, s, _ := runSpec(t, context.Background(), src, Options{Env: env})
	if res.Status != Succeeded {
		t.Fatalf("status %s: %s", res.Status, res.Reason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if got := s.output("install"); !reflect.DeepEqual(got, []string{"daemon says hi"}) {
		t.Errorf("install output %q", got)
	}
	if got := s.output("build"); !reflect.DeepEqual(got, []string{"built"}) {
		t.Errorf("build output %q", got)
	}
	for _, pid := range readPids(t, pids) {
		if proctest.Alive(pid) {
			t.Errorf("background process %d survived the build", pid)
		}
	}
}

func TestOutputMergedAndLabelled(t *testing.T) {
	src := `version: 0.2
phases:
  pre_build:
    commands:
      - echo out; echo err >&2; echo out2
  build:
    commands:
      - printf 'no newline'
      - printf 'crlf\r\n\n'
`
	res, s, _ := runSpec(t, context.Background(), src, Options{})
	if res.Status != Succeeded {
		t.Fatal(res.Reason)
	}
	if got := s.output("pre_build"); !reflect.DeepEqual(got, []string{"out", "err", "out2"}) {
		t.Errorf("pre_build %q", got)
	}
	if got := s.output("build"); !reflect.DeepEqual(got, []string{"no newline", "crlf", ""}) {
		t.Errorf("build %q", got)
	}
	var own []string
	for _, l := range s.lines {
		if strings.HasPrefix(l.text, "[gantry] ") {
			own = append(own, l.phase+": "+l.text)
		}
	}
	want := []string{
		"pre_build: [gantry] Entering phase pre_build",
		"pre_build: [gantry] Running command: echo out; echo err >&2; echo out2",
		"pre_build: [gantry] Phase pre_build SUCCEEDED",
		"build: [gantry] Entering phase build",
		"build: [gantry] Running command: printf 'no newline'",
		`build: [gantry] Running command: printf 'crlf\r\n\n'`,
		"build: [gantry] Phase build SUCCEEDED",
	}
	if !reflect.DeepEqual(own, want) {
		t.Errorf("runner lines\n got %q\nwant %q", own, want)
	}
}

func TestLogCap(t *testing.T) {
	src := `version: 0.2
phases:
  build:
    commands:
      - for i in $(seq 1 200); do echo "line $i of output, padded to be long enough"; done
      - echo after
`
	res, s, _ := runSpec(t, context.Background(), src, Options{MaxLogBytes: 1000})
	if res.Status != Succeeded {
		t.Fatal(res.Reason)
	}
	if !res.Truncated || res.LogBytes > 1000 || res.LogBytes < 900 {
		t.Fatalf("Truncated %v LogBytes %d", res.Truncated, res.LogBytes)
	}
	var n int64
	var marker int
	for _, l := range s.lines {
		if strings.HasPrefix(l.text, "[gantry] output truncated") {
			marker++
			continue
		}
		n += int64(len(l.text)) + 1
	}
	if n != res.LogBytes || marker != 1 {
		t.Errorf("sink got %d bytes and %d markers; LogBytes %d", n, marker, res.LogBytes)
	}
	if slicesContains(s.output(""), "after") {
		t.Errorf("a line after the cap was delivered")
	}
}

func TestDefaultLogCapAndLongLines(t *testing.T) {
	src := `version: 0.2
phases:
  build:
    commands:
      - head -c 200000 /dev/zero | tr '\0' x; echo; echo end
`
	res, s, _ := runSpec(t, context.Background(), src, Options{})
	if res.Status != Succeeded || res.Truncated {
		t.Fatalf("status %s truncated %v", res.Status, res.Truncated)
	}
	out := s.output("build")
	total := 0
	for _, l := range out[:len(out)-1] {
		if len(l) > MaxLineBytes {
			t.Errorf("line of %d bytes", len(l))
		}
		total += len(l)
	}
	if total != 200000 || out[len(out)-1] != "end" {
		t.Errorf("got %d bytes of x in %d lines, last %q", total, len(out)-1, out[len(out)-1])
	}
}

func TestOptionsValidate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	o := Options{
		Workspace:   file,
		MaxLogBytes: -1,
		KillGrace:   -1,
		Env:         map[string]string{"A=B": "x", "OK": "a\x00b"},
	}
	err := o.Validate()
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"not a directory", "MaxLogBytes", "KillGrace", `"A=B"`, "NUL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
	if err := (&Options{Workspace: t.TempDir()}).Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
	if _, err := Run(context.Background(), nil, Options{Workspace: t.TempDir()}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("nil spec: %v", err)
	}
	spec := &buildspec.Spec{Version: "0.2"}
	if _, err := Run(context.Background(), spec, Options{Workspace: t.TempDir()}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("no phases: %v", err)
	}
	spec.Phases.Build = &buildspec.Phase{Commands: []string{"true"}}
	spec.Env.ExportedVariables = []string{"$(rm -rf /)"}
	if _, err := Run(context.Background(), spec, Options{Workspace: t.TempDir()}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("bad exported name: %v", err)
	}
	spec.Env.ExportedVariables = nil
	if _, err := Run(context.Background(), spec, Options{Workspace: t.TempDir(), Shell: "no-such-shell-gantry"}); !errors.Is(err, ErrNoShell) {
		t.Errorf("missing shell: %v", err)
	}
}

// TestHandBuiltSpec: a Spec not from the parser (OnFailure empty) behaves
// like ABORT.
func TestHandBuiltSpec(t *testing.T) {
	spec := &buildspec.Spec{Phases: buildspec.Phases{
		Install: &buildspec.Phase{Commands: []string{"false"}},
		Build:   &buildspec.Phase{Commands: []string{"echo build"}},
	}}
	res, err := Run(context.Background(), spec, Options{Workspace: t.TempDir(), Env: baseEnv()})
	if err != nil {
		t.Fatal(err)
	}
	if st := phaseStatuses(res); res.Status != Failed || st["build"] != Skipped {
		t.Fatalf("status %s phases %v", res.Status, st)
	}
}

// TestCommandInDeletedDirectory: a cwd that vanished fails the next command
// with a reason, not the runner.
func TestCommandInDeletedDirectory(t *testing.T) {
	src := `version: 0.2
phases:
  build:
    commands:
      - mkdir gone && cd gone && rmdir ../gone
      - echo unreachable
`
	res, _, _ := runSpec(t, context.Background(), src, Options{})
	if res.Status != Failed || !strings.Contains(res.Reason, "could not start") {
		t.Fatalf("status %s reason %q", res.Status, res.Reason)
	}
	if c := res.Phases[0].Commands; len(c) != 2 || c[1].ExitCode != -1 {
		t.Errorf("commands %+v", c)
	}
}

func TestContextDoneBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, s, _ := runSpec(t, ctx, "version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n", Options{})
	if res.Status != Stopped || res.Reason != `was stopped before "echo hi"` || len(s.output("")) != 0 {
		t.Fatalf("status %s reason %q output %q", res.Status, res.Reason, s.output(""))
	}
	if len(res.Phases[0].Commands) != 0 {
		t.Errorf("commands %+v", res.Phases[0].Commands)
	}
}
