package pipelinefile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

// FuzzParse: Parse never panics; what it accepts is a definition the
// conductor can run (valid names, defaults applied, every input produced
// earlier) that Marshal writes back unchanged; what it refuses is a
// *ParseError whose every problem wraps a sentinel.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/good/*.yaml", "testdata/bad/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			f.Add(readFileF(f, file))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error is not a *ParseError with problems: %v", err)
			}
			for _, p := range pe.Problems {
				if len(p.Errs) == 0 || p.Message == "" {
					t.Fatalf("problem without sentinel or message: %#v", p)
				}
			}
			_, err2 := Parse("fuzz.yaml", data)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("second parse differs:\n%v\n---\n%v", err, err2)
			}
			return
		}
		checkDefinition(t, def)
		out, err := Marshal(def)
		if err != nil {
			t.Fatalf("Marshal of a parsed definition: %v", err)
		}
		back, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(def)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, def) {
			t.Fatalf("round trip differs\ngot:  %+v\nwant: %+v\n%s", back, def, out)
		}
	})
}

func readFileF(f *testing.F, path string) []byte {
	f.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// checkDefinition asserts what every definition Parse returns must satisfy.
func checkDefinition(t *testing.T, def events.Definition) {
	t.Helper()
	name := func(what, s string) {
		if !events.ValidName(s) {
			t.Fatalf("%s %q is not a valid name", what, s)
		}
	}
	name("pipeline", def.Name)
	for v := range def.Variables {
		if strings.HasPrefix(v, ReservedVariablePrefix) {
			t.Fatalf("reserved variable %q accepted", v)
		}
	}
	if len(def.Stages) == 0 {
		t.Fatal("no stages")
	}
	produced := map[string]bool{} // by earlier stages
	stages := map[string]bool{}
	for _, s := range def.Stages {
		name("stage", s.Name)
		if stages[s.Name] {
			t.Fatalf("duplicate stage %q", s.Name)
		}
		stages[s.Name] = true
		if len(s.Actions) == 0 {
			t.Fatalf("stage %q has no actions", s.Name)
		}
		actions := map[string]bool{}
		for _, a := range s.Actions {
			name("action", a.Name)
			name("type", a.Type)
			name("pool", a.Pool)
			if actions[a.Name] {
				t.Fatalf("duplicate action %q", a.Name)
			}
			actions[a.Name] = true
			lo, hi := 1, MaxTimeoutSeconds
			if a.Type == events.KindApproval {
				lo, hi = events.MinApprovalTimeoutSeconds, events.MaxApprovalTimeoutSeconds
			}
			if a.RunOrder < 1 || a.RunOrder > MaxRunOrder || a.TimeoutSeconds < lo || a.TimeoutSeconds > hi {
				t.Fatalf("action %q: runOrder %d, timeout %d out of range", a.Name, a.RunOrder, a.TimeoutSeconds)
			}
			if a.Type == "source" && a.Configuration["repository"] == "" {
				t.Fatalf("source action %q without repository", a.Name)
			}
			for _, in := range a.Inputs {
				name("input", in)
				ok := produced[in]
				for _, b := range s.Actions {
					if b.RunOrder < a.RunOrder && slices.Contains(b.Outputs, in) {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("action %q reads %q, which nothing before it produces", a.Name, in)
				}
			}
		}
		for _, a := range s.Actions {
			for _, out := range a.Outputs {
				name("output", out)
				if produced[out] {
					t.Fatalf("artifact %q produced twice", out)
				}
				produced[out] = true
			}
		}
	}
}
