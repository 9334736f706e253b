package appspec

import (
	"testing"

	"github.com/gantry-ci/gantry/services/internal/yamldoc/yamldoctest"
)

// FuzzParse: Parse never panics; it returns a spec or a *ParseError whose
// problems all wrap a sentinel; and a spec it returns round-trips through
// its JSON form unchanged and passes the schema.
func FuzzParse(f *testing.F) {
	yamldoctest.SeedCorpus(f, "testdata/*", 4096)
	f.Add([]byte("version: 0.0\nos: linux\nhooks: {ApplicationStart: [{location: \"a\\u2028b\", timeout: 1e3}]}\n"))
	f.Add([]byte("version: 0.0\nos: linux\nfiles: [{source: '#x', destination: \"/\\t\"}]\nhooks: {BeforeInstall: [{location: !!str 7, runas: a.b}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := Parse("fuzz.yml", data)
		if err != nil {
			yamldoctest.CheckParseError(t, err)
			return
		}
		if spec == nil {
			t.Fatal("nil spec without error")
		}
		for _, hooks := range spec.EventHooks {
			for _, h := range hooks {
				if h.Timeout < 1 || h.Timeout > MaxTimeout || LocationProblem(h.Location) != "" {
					t.Fatalf("accepted a bad hook: %+v", h)
				}
			}
		}
		assertRoundTrip(t, spec)
	})
}
