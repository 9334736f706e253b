package buildspec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics; it returns a spec or a *ParseError whose
// problems all wrap a sentinel; and a spec it returns round-trips through
// its JSON form unchanged.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) < 4096 {
			f.Add(data)
		}
	}
	f.Add([]byte("version: 0.2\nphases: {build: {commands: [\"a\\u2028b\", '#x', \"\\t\"]}}\n"))
	f.Add([]byte("version: 0.2\nenv: {variables: {A: 0x1F, B: 1e3, C: .inf, D: !!str 7}}\nphases: {build: {commands: [x]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse("fuzz.yml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("error is not a non-empty *ParseError: %#v", err)
			}
			for _, p := range pe.Problems {
				if len(p.Errs) == 0 {
					t.Fatalf("problem wraps no sentinel: %v", p)
				}
			}
			return
		}
		if spec == nil {
			t.Fatal("nil spec without error")
		}
		assertRoundTrip(t, spec)
	})
}
