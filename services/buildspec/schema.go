package buildspec

import (
	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// schemaProblems validates the document against schemas/buildspec.json alone,
// as Parse does after its own rules pass (so the schema only speaks when the
// two disagree); TestSchemaAgrees runs it on every bad file.
func schemaProblems(file string, body ast.Node) []*Problem {
	return yamldoc.SchemaProblems(file, body, schemas.Buildspec, sentinels)
}

// validator, collectAnchors, pointerPath and locate name the shared
// machinery for the package's tests.
var validator = yamldoc.Validator

func (d *decoder) collectAnchors(body ast.Node) { d.CollectAnchors(body) }

func pointerPath(doc any, ptr []string) string { return yamldoc.PointerPath(doc, ptr) }

// pos is a position as the tests spell it: pos{line, column}.
type pos yamldoc.Pos

func locate(body ast.Node, doc any, ptr []string) pos { return pos(yamldoc.Locate(body, doc, ptr)) }
