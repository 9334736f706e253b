package buildspec

import (
	"testing"

	"github.com/gantry-ci/gantry/services/internal/yamldoc/yamldoctest"
)

// FuzzParse: Parse never panics; it returns a spec or a *ParseError whose
// problems all wrap a sentinel; and a spec it returns round-trips through
// its JSON form unchanged.
func FuzzParse(f *testing.F) {
	yamldoctest.SeedCorpus(f, "testdata/*", 4096)
	f.Add([]byte("version: 0.2\nphases: {build: {commands: [\"a\\u2028b\", '#x', \"\\t\"]}}\n"))
	f.Add([]byte("version: 0.2\nenv: {variables: {A: 0x1F, B: 1e3, C: .inf, D: !!str 7}}\nphases: {build: {commands: [x]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse("fuzz.yml", data)
		if err != nil {
			yamldoctest.CheckParseError(t, err)
			return
		}
		if spec == nil {
			t.Fatal("nil spec without error")
		}
		assertRoundTrip(t, spec)
	})
}
