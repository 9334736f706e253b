package buildspec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"
)

var update = flag.Bool("update", false, "rewrite the # error: lines of testdata/*.bad.yml")

// badFile is a testdata/*.bad.yml file: its leading "# error: " lines are the
// messages Parse must return, in order, without the file name; a
// "# schema-blind: why" line says the schema alone cannot see the problem.
type badFile struct {
	name        string
	data        []byte
	want        []string
	schemaBlind bool
}

func readBadFiles(t *testing.T) []badFile {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.bad.yml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no bad files: %v", err)
	}
	var out []badFile
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bf := badFile{name: filepath.Base(p), data: data}
		for _, line := range strings.Split(string(data), "\n") {
			if msg, ok := strings.CutPrefix(line, "# error: "); ok {
				bf.want = append(bf.want, msg)
				continue
			}
			if strings.HasPrefix(line, "# schema-blind:") {
				bf.schemaBlind = true
				continue
			}
			break
		}
		out = append(out, bf)
	}
	return out
}

// messages returns the problems of err without the file name prefix.
func messages(t *testing.T, name string, err error) []string {
	t.Helper()
	var pe *ParseError
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

// TestBadFiles parses every testdata/*.bad.yml and compares the problems
// with the file's "# error:" lines (go test -run TestBadFiles -update
// rewrites them).
func TestBadFiles(t *testing.T) {
	for _, bf := range readBadFiles(t) {
		t.Run(bf.name, func(t *testing.T) {
			spec, err := Parse(bf.name, bf.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", spec)
			}
			if spec != nil {
				t.Errorf("Parse returned a spec with an error")
			}
			got := messages(t, bf.name, err)
			if *update {
				rewriteHeader(t, bf, got)
				return
			}
			if len(bf.want) == 0 {
				t.Fatalf("no # error: line; got:\n%s", strings.Join(got, "\n"))
			}
			if strings.Join(got, "\n") != strings.Join(bf.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(bf.want, "\n"))
			}
			if !strings.HasPrefix(err.Error(), bf.name+":") {
				t.Errorf("error does not start with the file name: %q", err)
			}
		})
	}
}

func rewriteHeader(t *testing.T, bf badFile, got []string) {
	t.Helper()
	lines := strings.Split(string(bf.data), "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "# error: ") {
		i++
	}
	var head []string
	for _, m := range got {
		head = append(head, "# error: "+m)
	}
	out := strings.Join(append(head, lines[i:]...), "\n")
	if err := os.WriteFile(filepath.Join("testdata", bf.name), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaAgrees checks schemas/buildspec.json on its own against the bad
// files: every file that is YAML of a reasonable size must be refused by the
// schema too, except those marked schema-blind (a glob's syntax, a YAML tag,
// which JSON Schema cannot see). So the schema, which other tools use, is
// no looser than the parser.
func TestSchemaAgrees(t *testing.T) {
	for _, bf := range readBadFiles(t) {
		t.Run(bf.name, func(t *testing.T) {
			_, err := Parse(bf.name, bf.data)
			f, perr := parser.ParseBytes(bf.data, 0)
			if perr != nil || len(f.Docs) != 1 || f.Docs[0].Body == nil || errors.Is(err, ErrTooLarge) {
				t.Skip("not one YAML document of a size the schema can read")
			}
			body := f.Docs[0].Body
			got := schemaProblems(bf.name, body)
			if bf.schemaBlind {
				if len(got) > 0 {
					t.Errorf("marked schema-blind, but the schema refuses it: %v", got)
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("the schema accepts a file the parser refuses:\n%v", err)
			}
			// Each schema problem names a field the parser reports, or an
			// ancestor of one (the schema reports an unknown key at its
			// mapping); TestLocate checks the positions.
			var pe *ParseError
			errors.As(err, &pe)
			for _, sp := range got {
				if !errors.Is(sp, ErrSchema) && !errors.Is(sp, ErrSyntax) {
					t.Errorf("schema problem wraps neither ErrSchema nor ErrSyntax: %v", sp)
				}
				if !slices.ContainsFunc(pe.Problems, func(p *Problem) bool { return isPrefix(sp.Path, p.Path) }) {
					t.Errorf("schema problem about a field the parser does not mention: %v\nparser: %v", sp, err)
				}
			}
		})
	}
}

// isPrefix reports whether field path p is q or an ancestor of it.
func isPrefix(p, q string) bool {
	return p == "" || p == q || strings.HasPrefix(q, p+".") || strings.HasPrefix(q, p+"[")
}
