package appspec

import (
	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// validator compiles the embedded schemas once per process.
var validator = yamldoc.Validator

// schemaProblems validates the document against schemas/appspec.json alone,
// as Parse does after its own rules pass (so the schema only speaks when the
// two disagree); TestSchemaAgrees runs it on every bad file.
func schemaProblems(file string, body ast.Node) []*Problem {
	return yamldoc.SchemaProblems(file, body, schemas.Appspec, sentinels)
}
