package buildspec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"

	"github.com/gantry-ci/gantry/schemas"
)

func mustParseFile(t *testing.T, path string) *Spec {
	t.Helper()
	s, err := ParseFile(path)
	if err != nil {
		t.Fatalf("ParseFile(%s): %v", path, err)
	}
	return s
}

func TestParseFull(t *testing.T) {
	got := mustParseFile(t, "testdata/full.yml")
	want := &Spec{
		Version: "0.2",
		Env: Env{
			Variables: map[string]string{
				"GOFLAGS": "-mod=readonly", "PORT": "8080", "DEBUG": "true", "EMPTY": "",
			},
			ExportedVariables: []string{"IMAGE_TAG", "VERSION"},
			Secrets:           map[string]string{"NPM_TOKEN": "npm-token", "SIGNING_KEY": "file:/run/secrets/signing.key"},
		},
		Phases: Phases{
			Install: &Phase{
				Commands: []string{
					"echo installing",
					"if ! command -v go; then\n  echo \"no go\" >&2\n  exit 1\nfi\n",
				},
				Finally:   []string{"echo install done"},
				OnFailure: Abort,
			},
			PreBuild: &Phase{
				Commands: []string{
					"export IMAGE_TAG=$(git rev-parse --short HEAD)",
					`echo "tag: $IMAGE_TAG"`,
				},
				OnFailure: Continue,
			},
			Build: &Phase{
				Commands:  []string{"go build ./...", "go test -json ./... > report.json"},
				OnFailure: Abort,
			},
			PostBuild: &Phase{Commands: []string{"export VERSION=1.2.3"}, OnFailure: Abort},
		},
		Artifacts: &Artifacts{Files: []string{"**/*", "bin/app"}, BaseDirectory: "dist", DiscardPaths: true},
		Reports: map[string]Report{
			"unit":        {Files: []string{"junit/*.xml"}, BaseDirectory: "build", FileFormat: "JUNITXML"},
			"integration": {Files: []string{"it-*.xml"}, FileFormat: "JUNITXML"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("got\n%s\nwant\n%s", g, w)
	}
}

func TestParseSmallFiles(t *testing.T) {
	for _, tc := range []struct {
		file string
		want *Spec
	}{
		{"minimal.yml", &Spec{Version: "0.2", Phases: Phases{Build: &Phase{Commands: []string{"make"}, OnFailure: Abort}}}},
		{"anchors.yml", &Spec{Version: "0.2",
			Phases: Phases{
				Build:     &Phase{Commands: []string{"make", "make check"}, Finally: []string{"make", "make check"}, OnFailure: Abort},
				PostBuild: &Phase{Commands: []string{"true"}, OnFailure: Abort},
			},
			Artifacts: &Artifacts{Files: []string{"out/**"}},
		}},
		{"flow.json", &Spec{Version: "0.2",
			Env:    Env{Variables: map[string]string{"A": "1"}},
			Phases: Phases{Build: &Phase{Commands: []string{`echo "json" works`, `printf '%s\n' a`}, OnFailure: Abort}},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got := mustParseFile(t, filepath.Join("testdata", tc.file))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestGoodFilesRoundTrip: every good file passes the schema on its own, and
// its Spec marshalled to JSON parses back to the same Spec.
func TestGoodFilesRoundTrip(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.yml")
	json1, _ := filepath.Glob("testdata/*.json")
	for _, p := range append(paths, json1...) {
		if strings.HasSuffix(p, ".bad.yml") {
			continue
		}
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseBytes(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if sp := schemaProblems(p, f.Docs[0].Body); len(sp) > 0 {
				t.Errorf("schema refuses a good file: %v", sp)
			}
			spec := mustParseFile(t, p)
			assertRoundTrip(t, spec)
		})
	}
}

func assertRoundTrip(t *testing.T, spec *Spec) {
	t.Helper()
	out, err := json.Marshal(spec)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again, err := Parse("roundtrip.json", out)
	if err != nil {
		t.Fatalf("parse of marshalled spec %s: %v", out, err)
	}
	if !reflect.DeepEqual(spec, again) {
		t.Fatalf("round trip changed the spec:\n%#v\n%#v\njson: %s", spec, again, out)
	}
	// The JSON form is what the schema describes, too.
	v, err := validator()
	if err != nil {
		t.Fatal(err)
	}
	if err := v.ValidateJSON(schemas.Buildspec, out); err != nil {
		t.Fatalf("marshalled spec fails the schema: %v\n%s", err, out)
	}
}

func TestErrorsIs(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []error
	}{
		{"version: 0.2\nphases: {build: {commands: [make], on-failure: STOP}}\n", []error{ErrSchema}},
		{"version: 0.2\nphases: {build: {commands: [make], run: x}}\n", []error{ErrUnknownField, ErrSchema}},
		{"version: 0.2\ncache: {paths: [x]}\nphases: {build: {commands: [make]}}\n", []error{ErrUnsupported, ErrUnknownField}},
		{"version: 0.2\nphases: {build: {finally: [make]}}\n", []error{ErrMissingField, ErrSchema}},
		{"version: 0.2\nphases: {build: {commands: [make]}}\nartifacts: {files: [../x]}\n", []error{ErrInvalidPath}},
		{"version: [\n", []error{ErrSyntax}},
	} {
		_, err := Parse("buildspec.yml", []byte(tc.src))
		for _, want := range tc.want {
			if !errors.Is(err, want) {
				t.Errorf("%q: error %v does not wrap %v", tc.src, err, want)
			}
		}
		var p *Problem
		if !errors.As(err, &p) || p.File != "buildspec.yml" {
			t.Errorf("%q: no *Problem in %v", tc.src, err)
		}
	}
}

// TestExampleMessage is the message the package documentation promises.
func TestExampleMessage(t *testing.T) {
	src := "version: 0.2\nenv:\n  variables:\n    A: b\nphases:\n  build:\n    on-failure: STOP\n    commands: [make]\n"
	_, err := Parse("buildspec.yml", []byte(src))
	want := `buildspec.yml:7:5: phases.build.on-failure: must be ABORT or CONTINUE, got "STOP"`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestTooLarge(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	if _, err := Parse("big.yml", big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized file: %v", err)
	}
	// A flat list, small in the file, large once its alias is used 8 times.
	var b strings.Builder
	b.WriteString("version: 0.2\nx-list: &c [")
	for i := range 20_000 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("a")
	}
	b.WriteString("]\nphases:\n")
	for _, ph := range PhaseNames {
		fmt.Fprintf(&b, "  %s: {commands: *c, finally: *c}\n", ph)
	}
	if _, err := Parse("wide.yml", []byte(b.String())); !errors.Is(err, ErrTooLarge) {
		t.Errorf("alias-multiplied list: %v", err)
	}
	// An alias to its own anchor is a cycle, refused the same way.
	if _, err := Parse("cycle.yml", []byte("version: 0.2\nphases: &p {build: *p}\n")); err == nil {
		t.Errorf("self-referencing alias accepted")
	}
}

func TestParseFileMissing(t *testing.T) {
	if _, err := ParseFile("testdata/does-not-exist.yml"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

// TestLocate maps schema pointers back to YAML positions: a mapping value
// at its key, a list item at the item, and below an anchor or alias (which
// the path API does not follow) at the nearest ancestor it can reach.
func TestLocate(t *testing.T) {
	src := `version: 0.2
env:
  variables:
    "a.b": x
phases:
  build:
    commands:
      - make
      - {a: b}
    on-failure: STOP
  post_build: &pb
    commands: [x]
  install: *pb
`
	f, err := parser.ParseBytes([]byte(src), 0)
	if err != nil {
		t.Fatal(err)
	}
	body := f.Docs[0].Body
	d := &decoder{}
	d.collectAnchors(body)
	doc := map[string]any{
		"version": 0.2,
		"env":     map[string]any{"variables": map[string]any{"a.b": "x"}},
		"phases": map[string]any{
			"build":      map[string]any{"commands": []any{"make", map[string]any{"a": "b"}}, "on-failure": "STOP"},
			"post_build": map[string]any{"commands": []any{"x"}},
			"install":    map[string]any{"commands": []any{"x"}},
		},
	}
	for _, tc := range []struct {
		ptr  []string
		want pos
		path string
	}{
		{nil, pos{1, 1}, ""},
		{[]string{"version"}, pos{1, 1}, "version"},
		{[]string{"env", "variables", "a.b"}, pos{4, 5}, `env.variables["a.b"]`},
		{[]string{"phases", "build", "commands", "1"}, pos{9, 9}, "phases.build.commands[1]"},
		{[]string{"phases", "build", "commands", "1", "a"}, pos{9, 10}, "phases.build.commands[1].a"},
		{[]string{"phases", "build", "on-failure"}, pos{10, 5}, "phases.build.on-failure"},
		{[]string{"phases", "post_build", "commands", "0"}, pos{12, 5}, "phases.post_build.commands[0]"},
		{[]string{"phases", "install", "commands", "0"}, pos{13, 3}, "phases.install.commands[0]"},
		{[]string{"phases", "nope", "x"}, pos{5, 1}, "phases.nope.x"},
	} {
		if got := locate(body, doc, tc.ptr); got != tc.want {
			t.Errorf("locate(%v) = %v, want %v", tc.ptr, got, tc.want)
		}
		if got := pointerPath(doc, tc.ptr); got != tc.path {
			t.Errorf("pointerPath(%v) = %q, want %q", tc.ptr, got, tc.path)
		}
	}
}

func TestPhasesGet(t *testing.T) {
	s := mustParseFile(t, "testdata/full.yml")
	for _, name := range PhaseNames {
		if s.Phases.Get(name) == nil {
			t.Errorf("Get(%q) = nil", name)
		}
	}
	if s.Phases.Get("deploy") != nil {
		t.Errorf("Get(deploy) != nil")
	}
}

func TestGlobAndDirProblems(t *testing.T) {
	for g, bad := range map[string]bool{
		"**/*": false, "dist/*.jar": false, "{a,b}/**": false, "a/./b": false, "x..y/z": false,
		"": true, "/abs": true, "../x": true, "a/../b": true, "a/..": true, "[": true, "a\x00b": true,
	} {
		if got := GlobProblem(g) != ""; got != bad {
			t.Errorf("GlobProblem(%q) = %q, want bad=%v", g, GlobProblem(g), bad)
		}
	}
	for dir, bad := range map[string]bool{"dist": false, "./out/x": false, "": true, "/x": true, "a/../..": true} {
		if got := DirProblem(dir) != ""; got != bad {
			t.Errorf("DirProblem(%q) = %q, want bad=%v", dir, DirProblem(dir), bad)
		}
	}
}
