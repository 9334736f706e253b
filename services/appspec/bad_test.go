package appspec

import (
	"flag"
	"testing"

	"github.com/gantry-ci/gantry/services/internal/yamldoc/yamldoctest"
)

var update = flag.Bool("update", false, "rewrite the # error: lines of testdata/*.bad.yml")

// TestBadFiles parses every testdata/*.bad.yml and compares the problems
// with the file's "# error:" lines (go test -run TestBadFiles -update
// rewrites them).
func TestBadFiles(t *testing.T) {
	yamldoctest.BadFiles(t, "testdata/*.bad.yml", *update, Parse)
}

// TestSchemaAgrees checks schemas/appspec.json on its own against the bad
// files: every file that is YAML of a reasonable size must be refused by the
// schema too, except those marked schema-blind (a YAML tag, bytes that are
// not UTF-8: what JSON Schema cannot see). So the schema, which other tools
// use, is no looser than the parser.
func TestSchemaAgrees(t *testing.T) {
	parse := func(name string, data []byte) error {
		_, err := Parse(name, data)
		return err
	}
	yamldoctest.SchemaAgrees(t, "testdata/*.bad.yml", sentinels, parse, schemaProblems)
}
