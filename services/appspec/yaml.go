package appspec

// The appspec's use of the shared strict YAML machinery (yamldoc).

import (
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// decoder walks an appspec's AST with the shared strict YAML machinery.
type decoder struct{ yamldoc.Decoder }

type (
	entry = yamldoc.Entry
	field = yamldoc.Field
)

// list returns the items of a list, or reports that n is not a non-empty
// one; what names the items in messages.
func (d *decoder) list(e entry, path, what string) ([]ast.Node, bool) {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return nil, false
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.MustBe(e.At, path, "a list of "+what, n)
		return nil, false
	}
	if len(seq.Values) == 0 {
		d.Add(e.At, path, []error{ErrSchema}, "must not be an empty list; leave the field out instead")
		return nil, false
	}
	return seq.Values, true
}

// str decodes a string field. Numbers and booleans are refused, so the
// value means the same to every YAML reader and to the schema.
func (d *decoder) str(e entry, path, want string) (string, bool) {
	n, ok := d.Resolve(e.Value, path)
	if !ok {
		return "", false
	}
	text, kind, ok := yamldoc.Scalar(n)
	switch {
	case ok && kind == "string":
		if strings.ContainsRune(text, 0) {
			d.Add(e.At, path, []error{ErrSchema}, "must not contain a NUL character")
			return "", false
		}
		return text, true
	case ok:
		d.Add(e.At, path, []error{ErrSchema}, "must be %s, got %s; quote it: %q", want, yamldoc.KindOf(n), text)
	default:
		d.MustBe(e.At, path, want, n)
	}
	return "", false
}
