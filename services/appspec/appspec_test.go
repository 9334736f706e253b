package appspec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

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
		Version: "0.0",
		OS:      "linux",
		Files: []File{
			{Source: "/", Destination: "/srv/app"},
			{Source: "config/app.conf", Destination: "/etc/app"},
			{Source: "/index.html", Destination: "/var/www/html/"},
		},
		FileExistsBehavior: Overwrite,
		EventHooks: map[string][]Hook{
			ApplicationStop: {{Location: "scripts/stop.sh", Timeout: 60}},
			BeforeInstall: {
				{Location: "scripts/backup.sh", Timeout: 3600},
				{Location: "./scripts/clean.sh", Timeout: 300, RunAs: "root"},
			},
			AfterInstall:     {{Location: "scripts/configure.sh", Timeout: 3600, RunAs: "app-user"}},
			ApplicationStart: {{Location: "scripts/start.sh", Timeout: 3600, RunAs: "app"}},
			ValidateService:  {{Location: "scripts/check health.sh", Timeout: 30}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("got\n%s\nwant\n%s", g, w)
	}
}

func TestParseSmallFiles(t *testing.T) {
	start := Hook{Location: "scripts/start.sh", Timeout: 120}
	for _, tc := range []struct {
		file string
		want *Spec
	}{
		{"minimal.yml", &Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow}},
		{"anchors.yml", &Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow,
			EventHooks: map[string][]Hook{
				ApplicationStart: {start},
				ValidateService:  {start, {Location: "scripts/validate.sh", Timeout: DefaultTimeout}},
			},
		}},
		{"flow.json", &Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow,
			Files:      []File{{Source: "dist", Destination: "/opt/app"}},
			EventHooks: map[string][]Hook{AfterInstall: {{Location: "bin/migrate", Timeout: 900}}},
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

// TestParseValues: small documents, the values they give.
func TestParseValues(t *testing.T) {
	const head = "version: 0.0\nos: linux\n"
	for _, tc := range []struct {
		name string
		src  string
		want *Spec
	}{
		{"version as a string", "version: '0.0'\nos: linux\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow}},
		{"version as an integer", "version: 0\nos: linux\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow}},
		{"file_exists_behavior RETAIN", head + "file_exists_behavior: RETAIN\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Retain}},
		{"file_exists_behavior DISALLOW", head + "file_exists_behavior: DISALLOW\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow}},
		{"timeout defaults to 3600", head + "hooks: {ApplicationStart: [{location: s.sh}]}\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow,
				EventHooks: map[string][]Hook{ApplicationStart: {{Location: "s.sh", Timeout: 3600}}}}},
		{"timeout bounds", head + "hooks: {ApplicationStart: [{location: a.sh, timeout: 1}, {location: b.sh, timeout: 3600}]}\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow,
				EventHooks: map[string][]Hook{ApplicationStart: {{Location: "a.sh", Timeout: 1}, {Location: "b.sh", Timeout: 3600}}}}},
		{"timeout in hex", head + "hooks: {ApplicationStart: [{location: a.sh, timeout: 0x3c}]}\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow,
				EventHooks: map[string][]Hook{ApplicationStart: {{Location: "a.sh", Timeout: 60}}}}},
		{"empty hooks", head + "hooks: {}\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow}},
		{"tagged string", head + "hooks: {ApplicationStart: [{location: !!str 123}]}\n",
			&Spec{Version: "0.0", OS: "linux", FileExistsBehavior: Disallow,
				EventHooks: map[string][]Hook{ApplicationStart: {{Location: "123", Timeout: 3600}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("appspec.yml", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
			assertRoundTrip(t, got)
		})
	}
}

// TestGoodFilesRoundTrip: every good file passes the schema on its own, and
// its Spec marshalled to JSON parses back to the same Spec.
func TestGoodFilesRoundTrip(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.yml")
	jsons, _ := filepath.Glob("testdata/*.json")
	n := 0
	for _, p := range append(paths, jsons...) {
		if strings.HasSuffix(p, ".bad.yml") {
			continue
		}
		n++
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
			assertRoundTrip(t, mustParseFile(t, p))
		})
	}
	if n == 0 {
		t.Fatal("no good files")
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
	if err := v.ValidateJSON(schemas.Appspec, out); err != nil {
		t.Fatalf("marshalled spec fails the schema: %v\n%s", err, out)
	}
}

func TestErrorsIs(t *testing.T) {
	const head = "version: 0.0\nos: linux\n"
	for _, tc := range []struct {
		src  string
		want []error
	}{
		{head + "hooks: {ApplicationStart: [{location: a.sh, timeout: 3601}]}\n", []error{ErrSchema}},
		{head + "hooks: {ApplicationStart: [{location: /a.sh}]}\n", []error{ErrInvalidPath, ErrSchema}},
		{head + "files: [{source: x, destination: y}]\n", []error{ErrInvalidPath, ErrSchema}},
		{head + "hooks: {ApplicationStart: [{location: a.sh, user: x}]}\n", []error{ErrUnknownField, ErrSchema}},
		{head + "permissions: []\n", []error{ErrUnsupported, ErrUnknownField, ErrSchema}},
		{head + "hooks: {Install: [{location: a.sh}]}\n", []error{ErrUnsupported, ErrUnknownField}},
		{"os: linux\n", []error{ErrMissingField, ErrSchema}},
		{"version: [\n", []error{ErrSyntax}},
		{"", []error{ErrSyntax}},
		{strings.Repeat("#", MaxFileSize+1), []error{ErrTooLarge}},
	} {
		_, err := Parse("appspec.yml", []byte(tc.src))
		if err == nil {
			t.Errorf("%.40q: no error", tc.src)
			continue
		}
		for _, w := range tc.want {
			if !errors.Is(err, w) {
				t.Errorf("%.40q: %v does not wrap %v", tc.src, err, w)
			}
		}
	}
}

func TestHooks(t *testing.T) {
	spec := mustParseFile(t, "testdata/full.yml")
	var order []string
	for _, event := range Lifecycle {
		for _, h := range spec.Hooks(event) {
			order = append(order, event+":"+h.Location)
		}
	}
	want := []string{
		"ApplicationStop:scripts/stop.sh",
		"BeforeInstall:scripts/backup.sh",
		"BeforeInstall:./scripts/clean.sh",
		"AfterInstall:scripts/configure.sh",
		"ApplicationStart:scripts/start.sh",
		"ValidateService:scripts/check health.sh",
	}
	if !slices.Equal(order, want) {
		t.Errorf("hooks in lifecycle order:\n got %v\nwant %v", order, want)
	}
	if spec.Hooks(DownloadBundle) != nil || spec.Hooks(Install) != nil || spec.Hooks("Bogus") != nil {
		t.Error("an event without scripts has hooks")
	}
	var nilSpec *Spec
	if nilSpec.Hooks(ApplicationStart) != nil {
		t.Error("a nil spec has hooks")
	}
	spec.Hooks(BeforeInstall)[0].Location = "changed"
	if spec.Hooks(BeforeInstall)[0].Location != "scripts/backup.sh" {
		t.Error("Hooks returns the spec's own slice")
	}
	if d := spec.Hooks(ValidateService)[0].TimeoutDuration(); d != 30*time.Second {
		t.Errorf("TimeoutDuration = %v", d)
	}
	// Lifecycle holds HookEvents in the same order, and the agent's steps.
	var scripted []string
	for _, e := range Lifecycle {
		if e != DownloadBundle && e != Install {
			scripted = append(scripted, e)
		}
	}
	if !slices.Equal(scripted, HookEvents) {
		t.Errorf("Lifecycle %v and HookEvents %v disagree", Lifecycle, HookEvents)
	}
}

func TestPathProblems(t *testing.T) {
	for _, tc := range []struct {
		fn   func(string) string
		in   string
		want string
	}{
		{LocationProblem, "scripts/start.sh", ""},
		{LocationProblem, "./start.sh", ""},
		{LocationProblem, "a..b/c..", ""},
		{LocationProblem, "", "must not be empty"},
		{LocationProblem, "/start.sh", `"/start.sh" must be relative to the bundle root, such as scripts/start.sh`},
		{LocationProblem, "..", `".." must not contain "..": hook scripts must be inside the bundle`},
		{LocationProblem, "a/../../b", `"a/../../b" must not contain "..": hook scripts must be inside the bundle`},
		{LocationProblem, "a\x00", "must not contain a NUL character"},
		{SourceProblem, "/", ""},
		{SourceProblem, "/index.html", ""},
		{SourceProblem, "dist/", ""},
		{SourceProblem, "", `must not be empty; write "/" for the whole bundle`},
		{SourceProblem, "/../etc", `"/../etc" must not contain "..": files are copied from inside the bundle`},
		{DestinationProblem, "/srv/app", ""},
		{DestinationProblem, "srv/app", `"srv/app" must be an absolute path on the host`},
		{DestinationProblem, "/srv/..", `"/srv/.." must not contain ".."`},
		{DestinationProblem, "", "must not be empty"},
	} {
		if got := tc.fn(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSchemaMatchesCode keeps schemas/appspec.json and the constants here in
// agreement.
func TestSchemaMatchesCode(t *testing.T) {
	raw, err := schemas.Read("appspec.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties struct {
			FileExistsBehavior struct {
				Enum []string `json:"enum"`
			} `json:"file_exists_behavior"`
			Hooks struct {
				Properties map[string]any `json:"properties"`
			} `json:"hooks"`
		} `json:"properties"`
		Defs struct {
			Hooks struct {
				Items struct {
					Properties struct {
						Timeout struct {
							Maximum int `json:"maximum"`
						} `json:"timeout"`
						RunAs struct {
							Pattern string `json:"pattern"`
						} `json:"runas"`
					} `json:"properties"`
				} `json:"items"`
			} `json:"hooks"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if got := s.Properties.FileExistsBehavior.Enum; !slices.Equal(got, []string{string(Disallow), string(Overwrite), string(Retain)}) {
		t.Errorf("file_exists_behavior enum %v", got)
	}
	var events []string
	for e := range s.Properties.Hooks.Properties {
		events = append(events, e)
	}
	slices.Sort(events)
	want := slices.Sorted(slices.Values(HookEvents))
	if !slices.Equal(events, want) {
		t.Errorf("schema hook events %v, HookEvents %v", events, want)
	}
	if got := s.Defs.Hooks.Items.Properties.Timeout.Maximum; got != MaxTimeout {
		t.Errorf("schema timeout maximum %d, MaxTimeout %d", got, MaxTimeout)
	}
	if got := s.Defs.Hooks.Items.Properties.RunAs.Pattern; got != userName.String() {
		t.Errorf("schema runas pattern %q, parser %q", got, userName)
	}
}

// TestExampleMessage checks the message shown in the package documentation.
func TestExampleMessage(t *testing.T) {
	src := "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\nhooks:\n" +
		"  ApplicationStart:\n    - location: scripts/start.sh\n      timeout: 7200\n"
	_, err := Parse("appspec.yml", []byte(src))
	want := "appspec.yml:9:7: hooks.ApplicationStart[0].timeout: must be at most 3600 seconds, got 7200"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	var p *Problem
	if !errors.As(err, &p) || p.Line != 9 || p.Column != 7 || p.Path != "hooks.ApplicationStart[0].timeout" {
		t.Errorf("problem fields: %+v", p)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "appspec.yml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
}
