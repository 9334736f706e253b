package pipelinefile

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the parser's output")

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func glob(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return files
}

// TestBadFiles parses every testdata/bad/*.yaml and compares the whole error
// text with the sibling .err file.
func TestBadFiles(t *testing.T) {
	for _, file := range glob(t, "testdata/bad/*.yaml") {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			def, err := Parse(name, readFile(t, file))
			if err == nil {
				t.Fatalf("parsed without error: %+v", def)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, want *ParseError: %v", err, err)
			}
			if !reflect.DeepEqual(def, events.Definition{}) {
				t.Errorf("definition returned with the error: %+v", def)
			}
			for _, p := range pe.Problems {
				if len(p.Errs) == 0 {
					t.Errorf("problem wraps no sentinel: %v", p)
				}
			}
			errFile := strings.TrimSuffix(file, ".yaml") + ".err"
			got := err.Error() + "\n"
			if *update {
				if err := os.WriteFile(errFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := string(readFile(t, errFile)); got != want {
				t.Errorf("error text differs from %s\ngot:\n%swant:\n%s", errFile, got, want)
			}
		})
	}
	// Every .err belongs to a .yaml.
	for _, errFile := range glob(t, "testdata/bad/*.err") {
		if _, err := os.Stat(strings.TrimSuffix(errFile, ".err") + ".yaml"); err != nil {
			t.Errorf("%s has no .yaml", errFile)
		}
	}
}

// TestBadFilesSentinels checks that callers can tell problems apart with
// errors.Is, without reading messages.
func TestBadFilesSentinels(t *testing.T) {
	tests := []struct {
		file string
		want []error
		not  []error
	}{
		{"syntax-unclosed", []error{ErrSyntax}, []error{ErrSchema}},
		{"syntax-duplicate-key", []error{ErrSyntax}, nil},
		{"empty", []error{ErrSyntax}, nil},
		{"two-documents", []error{ErrSyntax}, nil},
		{"alias-bomb", []error{ErrTooLarge}, []error{ErrSchema}},
		{"missing-fields", []error{ErrSchema, ErrMissingField}, []error{ErrUnknownField}},
		{"unknown-fields", []error{ErrSchema, ErrUnknownField}, []error{ErrMissingField}},
		{"runorder-zero", []error{ErrSchema}, []error{ErrInputNotProduced}},
		{"invalid-names", []error{ErrSchema, events.ErrInvalidName}, nil},
		{"duplicate-stage", []error{ErrDuplicateName}, []error{ErrSchema}},
		{"duplicate-action", []error{ErrDuplicateName}, []error{ErrSchema}},
		{"duplicate-output", []error{ErrDuplicateArtifact, ErrSchema}, []error{ErrDuplicateName}},
		{"codepipeline-artifacts", []error{ErrSchema, ErrDuplicateArtifact, ErrInputNotProduced, events.ErrInvalidName}, []error{ErrDuplicateName}},
		{"input-not-produced", []error{ErrInputNotProduced}, []error{ErrSchema}},
		{"input-order", []error{ErrInputNotProduced}, []error{ErrSchema}},
		{"reserved-variable", []error{ErrReservedVariable}, []error{ErrSchema}},
		{"source-repository", []error{ErrMissingConfiguration, ErrSchema}, nil},
		{"depends-on", []error{ErrBadDependency}, []error{ErrSchema}},
		{"references", []error{ErrBadReference, ErrReservedVariable}, []error{ErrSchema}},
		{"depends-on-cycle", []error{ErrBadDependency}, []error{ErrSchema, ErrInputNotProduced}},
		{"depends-on-parallel-input", []error{ErrInputNotProduced}, []error{ErrSchema, ErrBadDependency}},
		{"many-problems", []error{ErrSchema, ErrUnknownField, ErrDuplicateName, ErrDuplicateArtifact,
			ErrInputNotProduced, ErrMissingConfiguration}, []error{ErrSyntax}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Parse(tt.file+".yaml", readFile(t, "testdata/bad/"+tt.file+".yaml"))
			for _, e := range tt.want {
				if !errors.Is(err, e) {
					t.Errorf("errors.Is(err, %v) = false; err:\n%v", e, err)
				}
			}
			for _, e := range tt.not {
				if errors.Is(err, e) {
					t.Errorf("errors.Is(err, %v) = true; err:\n%v", e, err)
				}
			}
		})
	}
}

func TestProblemFields(t *testing.T) {
	_, err := Parse("pipeline.yaml", readFile(t, "testdata/bad/runorder-zero.yaml"))
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("errors.As(*Problem) failed: %v", err)
	}
	want := Problem{File: "pipeline.yaml", Line: 14, Column: 9, Path: "stages[1].actions[0].runOrder", Message: "must be >= 1, got 0"}
	if p.File != want.File || p.Line != want.Line || p.Column != want.Column || p.Path != want.Path || p.Message != want.Message {
		t.Errorf("problem = %+v, want %+v", *p, want)
	}
	if got, want := p.Error(), "pipeline.yaml:14:9: stages[1].actions[0].runOrder: must be >= 1, got 0"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestTooLarge(t *testing.T) {
	_, err := Parse("big.yaml", make([]byte, MaxFileSize+1))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func action(name, typ string, f func(*events.ActionDef)) events.ActionDef {
	a := events.ActionDef{Name: name, Type: typ, Pool: DefaultPool, RunOrder: DefaultRunOrder, TimeoutSeconds: DefaultTimeoutSeconds}
	if f != nil {
		f(&a)
	}
	return a
}

var goodFiles = map[string]events.Definition{
	"triggers": {
		Name: "webshop",
		Triggers: []events.TriggerDef{
			{Repository: "acme/webshop", Events: []string{"push", "pullRequest"}, PullRequestActions: []string{"opened", "updated", "closed"},
				Branches:  &events.GlobFilter{Includes: []string{"main", "release/**"}, Excludes: []string{"release/old"}},
				FilePaths: &events.GlobFilter{Includes: []string{"src/**"}, Excludes: []string{"**/*.md"}}},
			{Repository: "github.com/acme/webshop", Tags: &events.GlobFilter{Includes: []string{"v*"}}},
			{Poll: &events.PollDef{Interval: "5m"}, Branches: &events.GlobFilter{Includes: []string{"main"}}},
		},
		Stages: []events.StageDef{{Name: "Source", Actions: []events.ActionDef{
			action("checkout", "source", func(a *events.ActionDef) {
				a.Outputs = []string{"source"}
				a.Configuration = map[string]string{"repository": "repos/webshop"}
			}),
		}}},
	},
	"gates": {
		Name: "gates",
		Stages: []events.StageDef{
			{Name: "Build", Actions: []events.ActionDef{
				action("compile", "build", func(a *events.ActionDef) { a.Outputs = []string{"app"} }),
			}},
			{Name: "Staging",
				BeforeEntry: &events.Condition{Result: "FAIL", Rules: []events.Rule{{Name: "on-main", Type: "VariableCheck",
					Configuration: map[string]string{"variable": "#{GANTRY_REF}", "operator": "EQ", "value": "refs/heads/main"}}}},
				Actions: []events.ActionDef{action("deploy", "deploy", func(a *events.ActionDef) {
					a.Inputs, a.Configuration = []string{"app"}, map[string]string{"group": "staging"}
				})},
				OnSuccess: &events.Condition{Result: "ROLLBACK", Rules: []events.Rule{
					{Name: "no-alarms", Type: "NoActiveAlarm", Configuration: map[string]string{"group": "staging", "windowSeconds": "600"}},
					{Name: "smoke", Type: "Command", Configuration: map[string]string{"command": "./smoke.sh https://staging.example.com", "input": "app"}},
				}},
			},
			{Name: "Production",
				BeforeEntry: &events.Condition{Result: "SKIP", Rules: []events.Rule{{Name: "office-hours", Type: "DeploymentWindow",
					Configuration: map[string]string{"cron": "* 9-16 * * MON-FRI", "timeZone": "Europe/Berlin"}}}},
				Actions: []events.ActionDef{
					action("sign-off", "approval", func(a *events.ActionDef) {
						a.TimeoutSeconds = events.DefaultApprovalTimeoutSeconds
						a.Configuration = map[string]string{"instructions": "Check the staging dashboard first.",
							"url": "https://grafana.example.com/d/staging", "approvers": "alice@laptop, slack:bob"}
					}),
					action("quick-look", "approval", func(a *events.ActionDef) { a.TimeoutSeconds = 300 }),
					action("deploy", "deploy", func(a *events.ActionDef) {
						a.RunOrder, a.Inputs, a.Configuration = 2, []string{"app"}, map[string]string{"group": "production"}
					}),
				},
			},
		},
	},
	"variables": {
		Name:      "variables",
		Variables: map[string]string{"REGION": "eu-1"},
		Stages: []events.StageDef{
			{Name: "Source", Actions: []events.ActionDef{action("checkout", "source", func(a *events.ActionDef) {
				a.Namespace, a.Outputs = "Src", []string{"src"}
				a.Configuration = map[string]string{"repository": "/srv/repo"}
			})}},
			{Name: "Build", Actions: []events.ActionDef{
				action("version", "build", func(a *events.ActionDef) {
					a.Namespace, a.Inputs = "Version", []string{"src"}
					a.Configuration = map[string]string{"buildspec": "version.yml"}
				}),
				action("image", "build", func(a *events.ActionDef) {
					a.RunOrder, a.Inputs = 2, []string{"src"}
					a.Configuration = map[string]string{"buildspec": "image.yml", "env.IMAGE_TAG": "#{Version.APP_VERSION}-#{Src.COMMIT_ID}"}
				}),
			}},
			{Name: "Deploy", Actions: []events.ActionDef{action("ship", "deploy", func(a *events.ActionDef) {
				a.Configuration = map[string]string{"group": "web-#{variables.REGION}", "revision": "#{pipeline.runId} #{source.commitId}"}
			})}},
		},
	},
	"codepipeline-artifacts": {
		Name: "codepipeline-artifacts",
		Stages: []events.StageDef{
			{Name: "Source", Actions: []events.ActionDef{action("checkout", "source", func(a *events.ActionDef) {
				a.Outputs = []string{"SourceArtifact"}
				a.Configuration = map[string]string{"repository": "/srv/repo"}
			})}},
			{Name: "Build", Actions: []events.ActionDef{action("compile", "build", func(a *events.ActionDef) {
				a.Inputs, a.Outputs = []string{"SourceArtifact"}, []string{"BuildArtifact", "Reports"}
			})}},
			{Name: "Deploy", Actions: []events.ActionDef{action("ship", "deploy", func(a *events.ActionDef) {
				a.Inputs = []string{"BuildArtifact"}
			})}},
		},
	},
	"diamond": {
		Name: "diamond",
		Stages: []events.StageDef{
			{Name: "Source", Actions: []events.ActionDef{action("checkout", "source", func(a *events.ActionDef) {
				a.Outputs = []string{"src"}
				a.Configuration = map[string]string{"repository": "/srv/repo"}
			})}},
			{Name: "Build", DependsOn: []string{"Source"}, Actions: []events.ActionDef{action("compile", "build", func(a *events.ActionDef) {
				a.Inputs, a.Outputs = []string{"src"}, []string{"app"}
			})}},
			{Name: "Lint", DependsOn: []string{"Source"}, Actions: []events.ActionDef{action("vet", "build", func(a *events.ActionDef) {
				a.Inputs = []string{"src"}
			})}},
			{Name: "Deploy", DependsOn: []string{"Lint", "Build"}, OnFailure: &events.OnFailure{Result: "RETRY", Retries: 3}, Actions: []events.ActionDef{action("ship", "deploy", func(a *events.ActionDef) {
				a.Inputs = []string{"app", "src"}
			})}},
		},
	},
	"hello": {
		Name:      "hello",
		Variables: map[string]string{"GREETING": "hi"},
		Stages: []events.StageDef{
			{Name: "Source", Actions: []events.ActionDef{
				action("checkout", "source", func(a *events.ActionDef) {
					a.Outputs = []string{"source"}
					a.Configuration = map[string]string{"repository": "repos/hello", "branch": "main"}
				}),
			}},
			{Name: "Build", Actions: []events.ActionDef{
				action("compile", "build", func(a *events.ActionDef) {
					a.Inputs = []string{"source"}
					a.Outputs = []string{"app"}
					a.TimeoutSeconds = 600
					a.Configuration = map[string]string{"buildspec": "buildspec.yml"}
				}),
			}},
		},
	},
	"minimal": {
		Name:   "m",
		Stages: []events.StageDef{{Name: "only", Actions: []events.ActionDef{action("lint", "test", nil)}}},
	},
	"secrets": {
		Name: "publish",
		Stages: []events.StageDef{{Name: "Release", Actions: []events.ActionDef{action("npm", "build", func(a *events.ActionDef) {
			a.Secrets = map[string]string{"NPM_TOKEN": "npm-token", "SIGNING_KEY": "file:/run/secrets/signing.key"}
		})}}},
	},
	"groups": {
		Name:      "web-app_2",
		Variables: map[string]string{"ENV": "staging", "_private": "1", "REPLICAS": "3"},
		Stages: []events.StageDef{
			{Name: "Source", Actions: []events.ActionDef{
				action("app", "source", func(a *events.ActionDef) {
					a.Outputs = []string{"src"}
					a.Configuration = map[string]string{"repository": "file:///srv/git/web-app", "branch": "release/2.x"}
				}),
				action("infra", "source", func(a *events.ActionDef) {
					a.Outputs = []string{"infra-src"}
					a.Configuration = map[string]string{"repository": "../infra"}
				}),
			}},
			{Name: "Build", Actions: []events.ActionDef{
				action("unit", "test", func(a *events.ActionDef) {
					a.Inputs = []string{"src"}
					a.Outputs = []string{"junit"}
				}),
				action("compile", "build", func(a *events.ActionDef) {
					a.Pool = "linux-arm64"
					a.Inputs = []string{"src"}
					a.Outputs = []string{"bin", "docs"}
					a.TimeoutSeconds = 28800
				}),
				action("image", "docker", func(a *events.ActionDef) {
					a.RunOrder = 2
					a.Inputs = []string{"bin", "infra-src"}
					a.Outputs = []string{"image"}
					a.Configuration = map[string]string{"docker.tag": "v2", "push": "true"}
				}),
				action("scan", "scanner", func(a *events.ActionDef) {
					a.Pool = "secure"
					a.RunOrder = 10
					a.Inputs = []string{"image"}
					a.TimeoutSeconds = 1
				}),
			}},
			{Name: "Deploy", Actions: []events.ActionDef{
				action("staging", "deploy", func(a *events.ActionDef) {
					a.Inputs = []string{"image", "junit"}
					a.Configuration = map[string]string{"application": "web", "deploymentGroup": "staging"}
				}),
			}},
		},
	},
	"anchors": {
		Name: "anchors",
		Stages: []events.StageDef{{Name: "Build", Actions: []events.ActionDef{
			action("compile", "build", func(a *events.ActionDef) {
				a.Outputs = []string{"a"}
				a.Configuration = map[string]string{"buildspec": "buildspec.yml", "image": "golang"}
			}),
			action("compile-race", "build", func(a *events.ActionDef) {
				a.Outputs = []string{"b"}
				a.Configuration = map[string]string{"buildspec": "buildspec.yml", "image": "golang", "flags": "-race"}
			}),
		}}},
	},
	"json": {
		Name: "from-json",
		Stages: []events.StageDef{{Name: "S", Actions: []events.ActionDef{
			action("a", "build", func(a *events.ActionDef) {
				a.RunOrder = 3
				a.Outputs = []string{"x"}
				a.Configuration = map[string]string{"k": "v"}
			}),
			action("b", "test", func(a *events.ActionDef) {
				a.RunOrder = 4
				a.Inputs = []string{"x"}
				a.Pool = "p1"
			}),
		}}},
	},
}

// TestGoodFiles parses every testdata/good/*.yaml and compares the whole
// definition, defaults applied, with the table.
func TestGoodFiles(t *testing.T) {
	files := glob(t, "testdata/good/*.yaml")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, ok := goodFiles[name]
			if !ok {
				t.Fatalf("no expected definition for %s in goodFiles", file)
			}
			got, err := Parse(filepath.Base(file), readFile(t, file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("definition differs\ngot:  %+v\nwant: %+v", got, want)
			}
		})
	}
	for name := range goodFiles {
		if !slices.Contains(files, "testdata/good/"+name+".yaml") {
			t.Errorf("goodFiles has %s, but testdata/good/%s.yaml does not exist", name, name)
		}
	}
}

// TestMarshalRoundTrip: Marshal writes what Parse reads back unchanged.
func TestMarshalRoundTrip(t *testing.T) {
	for name, def := range goodFiles {
		t.Run(name, func(t *testing.T) {
			out, err := Marshal(def)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			back, err := Parse(name+".yaml", out)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, def) {
				t.Errorf("round trip differs\ngot:  %+v\nwant: %+v\nfile:\n%s", back, def, out)
			}
		})
	}
}

func TestMarshalOutput(t *testing.T) {
	out, err := Marshal(goodFiles["hello"])
	if err != nil {
		t.Fatal(err)
	}
	want := `name: hello
variables:
  GREETING: hi
stages:
  - name: Source
    actions:
      - name: checkout
        type: source
        outputs: [source]
        configuration:
          branch: main
          repository: repos/hello
  - name: Build
    actions:
      - name: compile
        type: build
        inputs: [source]
        outputs: [app]
        timeoutSeconds: 600
        configuration:
          buildspec: buildspec.yml
`
	if string(out) != want {
		t.Errorf("Marshal output:\n%s\nwant:\n%s", out, want)
	}
}

func TestMarshalInvalid(t *testing.T) {
	def := goodFiles["minimal"]
	def.Stages = append(def.Stages, def.Stages[0])
	if _, err := Marshal(def); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("Marshal(duplicate stages) err = %v, want ErrDuplicateName", err)
	}
}

// TestSchemaFacts guards what the parser reads from schemas/pipeline.json.
func TestSchemaFacts(t *testing.T) {
	info, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"description", "executionMode", "name", "stages", "triggers", "variables"}; !slices.Equal(info.rootFields, want) {
		t.Errorf("root fields = %v, want %v", info.rootFields, want)
	}
	if want := []string{"actions", "beforeEntry", "dependsOn", "name", "onFailure", "onSuccess"}; !slices.Equal(info.stageFields, want) {
		t.Errorf("stage fields = %v, want %v", info.stageFields, want)
	}
	if want := []string{"configuration", "inputArtifacts", "inputs", "name", "namespace", "outputArtifacts", "outputs", "pool", "runOrder", "secrets", "timeoutSeconds", "type"}; !slices.Equal(info.actionFields, want) {
		t.Errorf("action fields = %v, want %v", info.actionFields, want)
	}
}

// TestStructureLimits: files the YAML parser would take very long on are
// refused before it runs, and a large realistic pipeline is not.
func TestStructureLimits(t *testing.T) {
	var manyKeys, manyItems, manyFlow, deepBlock strings.Builder
	manyKeys.WriteString("name: x\nvariables:\n")
	for i := range MaxEntries + 1 {
		fmt.Fprintf(&manyKeys, "  V%d: v\n", i)
	}
	manyItems.WriteString("name: x\nstages:\n")
	for i := range MaxEntries + 1 {
		fmt.Fprintf(&manyItems, "  - {name: s%d, actions: [{name: a, type: build}]}\n", i)
	}
	manyFlow.WriteString("name: x\nstages: [")
	for range MaxEntries + 1 {
		manyFlow.WriteString("1, ")
	}
	manyFlow.WriteString("1]\n")
	deepBlock.WriteString("name: x\nstages:\n  " + strings.Repeat("- ", MaxDepth) + "x\n")
	for name, src := range map[string]string{
		"many keys": manyKeys.String(), "many items": manyItems.String(),
		"many flow items": manyFlow.String(), "deep block": deepBlock.String(),
		"deep flow":         "name: x\nstages: " + strings.Repeat("[", 100000),
		"deep flow mapping": "a: " + strings.Repeat("{a: ", MaxDepth) + strings.Repeat("}", MaxDepth),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("big.yaml", []byte(src))
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
		})
	}

	// 300 stages of 6 actions: about 100 KiB, within every limit.
	var big strings.Builder
	big.WriteString("name: big\nstages:\n")
	for i := range 300 {
		fmt.Fprintf(&big, "  - name: stage-%d\n    actions:\n", i)
		for j := range 6 {
			fmt.Fprintf(&big, "      - name: a%d\n        type: build\n        runOrder: %d\n        outputs: [art-%d-%d]\n        configuration:\n          key: value\n", j, j+1, i, j)
		}
	}
	if big.Len() > MaxFileSize {
		t.Fatalf("realistic file is %d bytes, more than MaxFileSize", big.Len())
	}
	def, err := Parse("big.yaml", []byte(big.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Stages) != 300 || len(def.Stages[299].Actions) != 6 {
		t.Fatalf("got %d stages", len(def.Stages))
	}
}

// TestMarshalTrickyStrings: values YAML would read as something else unless
// quoted survive the round trip.
func TestMarshalTrickyStrings(t *testing.T) {
	tricky := []string{"", " ", "yes", "no", "true", "null", "~", "0x10", "0o17", "1e3", "1.10", ".inf", "-",
		"- a", "a: b", "#x", "x #y", "'", `"`, "\\", "\t", "line\nbreak", "trailing\n", "  lead", "ünï", "{a}", "[b]",
		"*alias", "&anchor", "!tag", "%d", "@x", "`x", "2020-01-01", "<<", "=", "? x", "|", ">"}
	cfg := map[string]string{}
	vars := map[string]string{}
	for i, s := range tricky {
		cfg[fmt.Sprintf("k%d", i)] = s
		vars[fmt.Sprintf("V%d", i)] = s
	}
	def := events.Definition{Name: "t", Variables: vars, Stages: []events.StageDef{{Name: "S", Actions: []events.ActionDef{
		action("a", "build", func(a *events.ActionDef) { a.Configuration = cfg }),
	}}}}
	out, err := Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("t.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, def) {
		for k, v := range cfg {
			if back.Stages[0].Actions[0].Configuration[k] != v {
				t.Errorf("configuration %s: %q came back as %q", k, v, back.Stages[0].Actions[0].Configuration[k])
			}
		}
		t.Fatalf("round trip differs\n%s", out)
	}
}
