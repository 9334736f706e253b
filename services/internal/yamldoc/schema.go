package yamldoc

import (
	"strconv"
	"sync"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/schemas"
)

// Validator returns the embedded schemas, compiled once per process.
var Validator = sync.OnceValues(schemas.New)

// SchemaProblems validates a document against the embedded schema named
// schema (schemas.Buildspec, schemas.Appspec) and reports each violation,
// wrapping errs.Schema, at the YAML line and column of the value its JSON
// pointer names (see Locate) with the field path PointerPath gives. A value
// the YAML library cannot decode is reported as YAMLError does.
func SchemaProblems(file string, body ast.Node, schema string, errs Sentinels) []*Problem {
	var raw any
	if err := yaml.NodeToValue(body, &raw); err != nil {
		d := &Decoder{File: file, Errs: errs}
		d.YAMLError(err)
		return d.Problems
	}
	at := PosOf(body)
	doc, err := schemas.ToAny(raw)
	if err != nil {
		return []*Problem{{File: file, Line: at.Line, Column: at.Col,
			Message: "cannot check against the schema: " + err.Error(), Errs: []error{errs.Schema}}}
	}
	v, err := Validator()
	if err != nil {
		return []*Problem{{File: file, Message: err.Error(), Errs: []error{errs.Schema}}}
	}
	details, err := v.Details(schema, doc)
	if err != nil {
		return []*Problem{{File: file, Message: err.Error(), Errs: []error{errs.Schema}}}
	}
	var out []*Problem
	for _, det := range details {
		where := Locate(body, doc, det.Pointer)
		out = append(out, &Problem{
			File: file, Line: where.Line, Column: where.Col,
			Path:    PointerPath(doc, det.Pointer),
			Message: det.Message,
			Errs:    []error{errs.Schema},
		})
	}
	return out
}

// PointerPath turns a JSON pointer into a field path such as
// phases.build.commands[1] (see Join and Index), using the document to tell
// list indexes from mapping keys.
func PointerPath(doc any, ptr []string) string {
	path := ""
	cur := doc
	for _, tok := range ptr {
		switch v := cur.(type) {
		case []any:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				path = Index(path, i)
				cur = v[i]
				continue
			}
			path, cur = Join(path, tok), nil
		case map[string]any:
			path, cur = Join(path, tok), v[tok]
		default:
			path, cur = Join(path, tok), nil
		}
	}
	return path
}

// Locate finds the position of the value a JSON pointer names with the YAML
// library's path API. A mapping value is reported at its key, as the
// hand-written rules do; a pointer the path API cannot follow (through an
// alias, say) falls back to its nearest ancestor that it can.
func Locate(body ast.Node, doc any, ptr []string) Pos {
	type step struct {
		key   string
		index int
		isKey bool
	}
	steps := make([]step, 0, len(ptr))
	cur := doc
	for _, tok := range ptr {
		if list, ok := cur.([]any); ok {
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(list) {
				steps = append(steps, step{index: i})
				cur = list[i]
				continue
			}
		}
		steps = append(steps, step{key: tok, isKey: true})
		if m, ok := cur.(map[string]any); ok {
			cur = m[tok]
		} else {
			cur = nil
		}
	}
	build := func(steps []step) *yaml.Path {
		b := (&yaml.PathBuilder{}).Root()
		for _, s := range steps {
			if s.isKey {
				b = b.Child(s.key)
			} else {
				b = b.Index(uint(s.index))
			}
		}
		return b.Build()
	}
	for n := len(steps); n > 0; n-- {
		last := steps[n-1]
		if last.isKey {
			// The key itself: find the parent mapping, then the key in it.
			parent, err := build(steps[:n-1]).FilterNode(body)
			if err == nil && parent != nil {
				if at, ok := keyPos(parent, last.key); ok {
					return at
				}
			}
			continue
		}
		if node, err := build(steps[:n]).FilterNode(body); err == nil && node != nil {
			return PosOf(node)
		}
	}
	return PosOf(body)
}

// keyPos returns the position of key in a mapping node.
func keyPos(n ast.Node, key string) (Pos, bool) {
	if a, ok := n.(*ast.AnchorNode); ok {
		return keyPos(a.Value, key)
	}
	values, _ := MappingValues(n)
	for _, mv := range values {
		if text, _, ok := Scalar(mv.Key); ok && text == key {
			return PosOf(mv.Key), true
		}
		if mv.Key != nil && mv.Key.GetToken() != nil && mv.Key.GetToken().Value == key {
			return PosOf(mv.Key), true
		}
	}
	return Pos{}, false
}
