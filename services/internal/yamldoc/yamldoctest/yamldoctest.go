// Package yamldoctest holds the test helpers the strict YAML parsers share:
// the folder of bad files with their expected messages (golden "# error:"
// lines), the check that the JSON Schema refuses what the parser refuses,
// and the fuzz target's seeds and invariants.
package yamldoctest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// BadFile is a bad file, such as testdata/x.bad.yml: its leading "# error: "
// lines are the messages the parser must return, in order, without the file
// name; a "# schema-blind: why" line says the schema alone cannot see the
// problem.
type BadFile struct {
	Path        string
	Name        string // the base name, which the parser is given
	Data        []byte
	Want        []string
	SchemaBlind bool
}

// ReadBadFiles reads the bad files matching pattern; there must be some.
func ReadBadFiles(t testing.TB, pattern string) []BadFile {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	var out []BadFile
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bf := BadFile{Path: p, Name: filepath.Base(p), Data: data}
		for _, line := range strings.Split(string(data), "\n") {
			if msg, ok := strings.CutPrefix(line, "# error: "); ok {
				bf.Want = append(bf.Want, msg)
				continue
			}
			if strings.HasPrefix(line, "# schema-blind:") {
				bf.SchemaBlind = true
				continue
			}
			break
		}
		out = append(out, bf)
	}
	return out
}

// Messages returns the problems of err, a *yamldoc.ParseError, without the
// file name prefix.
func Messages(t testing.TB, name string, err error) []string {
	t.Helper()
	var pe *yamldoc.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error is %T, want *ParseError: %v", err, err)
	}
	var out []string
	for _, p := range pe.Problems {
		msg := strings.TrimPrefix(p.Error(), name)
		msg = strings.TrimPrefix(msg, ":")
		out = append(out, strings.TrimSpace(msg))
	}
	return out
}

// BadFiles parses every file matching pattern and compares the problems with
// the file's "# error:" lines; with update it rewrites those lines instead.
// parse must refuse each file and return no value with its error.
func BadFiles[T any](t *testing.T, pattern string, update bool, parse func(name string, data []byte) (*T, error)) {
	for _, bf := range ReadBadFiles(t, pattern) {
		t.Run(bf.Name, func(t *testing.T) {
			spec, err := parse(bf.Name, bf.Data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", spec)
			}
			if spec != nil {
				t.Errorf("Parse returned a spec with an error")
			}
			got := Messages(t, bf.Name, err)
			if update {
				RewriteHeader(t, bf, got)
				return
			}
			if len(bf.Want) == 0 {
				t.Fatalf("no # error: line; got:\n%s", strings.Join(got, "\n"))
			}
			if strings.Join(got, "\n") != strings.Join(bf.Want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(bf.Want, "\n"))
			}
			if !strings.HasPrefix(err.Error(), bf.Name+":") {
				t.Errorf("error does not start with the file name: %q", err)
			}
		})
	}
}

// RewriteHeader replaces the file's leading "# error:" lines with got.
func RewriteHeader(t testing.TB, bf BadFile, got []string) {
	t.Helper()
	lines := strings.Split(string(bf.Data), "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "# error: ") {
		i++
	}
	var head []string
	for _, m := range got {
		head = append(head, "# error: "+m)
	}
	out := strings.Join(append(head, lines[i:]...), "\n")
	if err := os.WriteFile(bf.Path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// SchemaAgrees checks a JSON Schema on its own against the bad files: every
// file that is one YAML document of a size the schema can read must be
// refused by schemaProblems too, unless marked schema-blind, and each schema
// problem must wrap errs.Schema or errs.Syntax and name a field the parser
// reports, or an ancestor of one (the schema reports an unknown key at its
// mapping). So the schema, which other tools use, is no looser than the
// parser.
func SchemaAgrees(t *testing.T, pattern string, errs yamldoc.Sentinels,
	parse func(name string, data []byte) error,
	schemaProblems func(name string, body ast.Node) []*yamldoc.Problem) {
	for _, bf := range ReadBadFiles(t, pattern) {
		t.Run(bf.Name, func(t *testing.T) {
			err := parse(bf.Name, bf.Data)
			f, perr := parser.ParseBytes(bf.Data, 0)
			if perr != nil || len(f.Docs) != 1 || f.Docs[0].Body == nil || errors.Is(err, errs.TooLarge) {
				t.Skip("not one YAML document of a size the schema can read")
			}
			got := schemaProblems(bf.Name, f.Docs[0].Body)
			if bf.SchemaBlind {
				if len(got) > 0 {
					t.Errorf("marked schema-blind, but the schema refuses it: %v", got)
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("the schema accepts a file the parser refuses:\n%v", err)
			}
			var pe *yamldoc.ParseError
			errors.As(err, &pe)
			for _, sp := range got {
				if !errors.Is(sp, errs.Schema) && !errors.Is(sp, errs.Syntax) {
					t.Errorf("schema problem wraps neither ErrSchema nor ErrSyntax: %v", sp)
				}
				if !slices.ContainsFunc(pe.Problems, func(p *yamldoc.Problem) bool { return IsPrefix(sp.Path, p.Path) }) {
					t.Errorf("schema problem about a field the parser does not mention: %v\nparser: %v", sp, err)
				}
			}
		})
	}
}

// IsPrefix reports whether field path p is q or an ancestor of it.
func IsPrefix(p, q string) bool {
	return p == "" || p == q || strings.HasPrefix(q, p+".") || strings.HasPrefix(q, p+"[")
}

// SeedCorpus adds every file matching pattern smaller than maxSize to the
// fuzz corpus.
func SeedCorpus(f *testing.F, pattern string, maxSize int) {
	paths, _ := filepath.Glob(pattern)
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) < maxSize {
			f.Add(data)
		}
	}
}

// CheckParseError fails unless err is a non-empty *yamldoc.ParseError whose
// problems each wrap a sentinel.
func CheckParseError(t testing.TB, err error) {
	t.Helper()
	var pe *yamldoc.ParseError
	if !errors.As(err, &pe) || len(pe.Problems) == 0 {
		t.Fatalf("error is not a non-empty *ParseError: %#v", err)
	}
	for _, p := range pe.Problems {
		if len(p.Errs) == 0 {
			t.Fatalf("problem wraps no sentinel: %v", p)
		}
	}
}
