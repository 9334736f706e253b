package buildspec

import (
	"strconv"
	"sync"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/gantry-ci/gantry/schemas"
)

// validator compiles the embedded schemas once per process.
var validator = sync.OnceValues(schemas.New)

// schemaCheck validates the document against schemas/buildspec.json and
// reports each violation at the YAML line and column of the value its JSON
// pointer names. Parse runs it after its own rules pass, so it only speaks
// when the two disagree; TestSchemaAgrees runs it alone on every bad file.
func (d *decoder) schemaCheck(body ast.Node) {
	for _, p := range schemaProblems(d.file, body) {
		d.problems = append(d.problems, p)
	}
}

func schemaProblems(file string, body ast.Node) []*Problem {
	var raw any
	if err := yaml.NodeToValue(body, &raw); err != nil {
		d := &decoder{file: file}
		d.yamlError(err)
		return d.problems
	}
	at := posOf(body)
	doc, err := schemas.ToAny(raw)
	if err != nil {
		return []*Problem{{File: file, Line: at.line, Column: at.col,
			Message: "cannot check against the schema: " + err.Error(), Errs: []error{ErrSchema}}}
	}
	v, err := validator()
	if err != nil {
		return []*Problem{{File: file, Message: err.Error(), Errs: []error{ErrSchema}}}
	}
	details, err := v.Details(schemas.Buildspec, doc)
	if err != nil {
		return []*Problem{{File: file, Message: err.Error(), Errs: []error{ErrSchema}}}
	}
	var out []*Problem
	for _, det := range details {
		where := locate(body, doc, det.Pointer)
		out = append(out, &Problem{
			File: file, Line: where.line, Column: where.col,
			Path:    pointerPath(doc, det.Pointer),
			Message: det.Message,
			Errs:    []error{ErrSchema},
		})
	}
	return out
}

// pointerPath turns a JSON pointer into a field path such as
// phases.build.commands[1], using the document to tell list indexes from
// mapping keys.
func pointerPath(doc any, ptr []string) string {
	path := ""
	cur := doc
	for _, tok := range ptr {
		switch v := cur.(type) {
		case []any:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(v) {
				path = index(path, i)
				cur = v[i]
				continue
			}
			path, cur = join(path, tok), nil
		case map[string]any:
			path, cur = join(path, tok), v[tok]
		default:
			path, cur = join(path, tok), nil
		}
	}
	return path
}

// locate finds the position of the value a JSON pointer names with the YAML
// library's path API. A mapping value is reported at its key, as the
// hand-written rules do; a pointer the path API cannot follow (through an
// alias, say) falls back to its nearest ancestor that it can.
func locate(body ast.Node, doc any, ptr []string) pos {
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
			return posOf(node)
		}
	}
	return posOf(body)
}

// keyPos returns the position of key in a mapping node.
func keyPos(n ast.Node, key string) (pos, bool) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	case *ast.AnchorNode:
		return keyPos(m.Value, key)
	}
	for _, mv := range values {
		if text, _, ok := scalar(mv.Key); ok && text == key {
			return posOf(mv.Key), true
		}
		if mv.Key != nil && mv.Key.GetToken() != nil && mv.Key.GetToken().Value == key {
			return posOf(mv.Key), true
		}
	}
	return pos{}, false
}
