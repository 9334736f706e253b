package appspec

// The YAML machinery: walking goccy/go-yaml's AST with positions, strictly.

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// pos is a 1-based line and column; zero when unknown.
type pos struct{ line, col int }

type decoder struct {
	file     string
	problems []*Problem
	// aliases maps each alias to the node of the anchor it names, as
	// defined before it in the document; nil for an undefined alias.
	aliases map[*ast.AliasNode]ast.Node
}

func (d *decoder) add(at pos, path string, errs []error, format string, args ...any) {
	d.problems = append(d.problems, &Problem{
		File: d.file, Line: at.line, Column: at.col, Path: path,
		Message: fmt.Sprintf(format, args...), Errs: errs,
	})
}

// yamlError turns an error of the YAML library into a problem.
func (d *decoder) yamlError(err error) {
	var ye yaml.Error
	if errors.As(err, &ye) {
		at := pos{}
		if tk := ye.GetToken(); tk != nil {
			at = tokenPos(tk.Position)
		}
		d.add(at, "", []error{ErrSyntax}, "%s", ye.GetMessage())
		return
	}
	d.add(pos{}, "", []error{ErrSyntax}, "%v", err)
}

// invalidUTF8 returns the position of the first invalid byte.
func invalidUTF8(data []byte) pos {
	line, col := 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		data = data[size:]
	}
	return pos{line, col}
}

// collectAnchors resolves every alias to the anchor defined before it.
func (d *decoder) collectAnchors(body ast.Node) {
	d.aliases = map[*ast.AliasNode]ast.Node{}
	anchors := map[string]ast.Node{}
	ast.Walk(visitFunc(func(n ast.Node) {
		switch v := n.(type) {
		case *ast.AnchorNode:
			if v.Name != nil {
				anchors[v.Name.GetToken().Value] = v.Value
			}
		case *ast.AliasNode:
			if v.Value != nil {
				d.aliases[v] = anchors[v.Value.GetToken().Value]
			}
		}
	}), body)
}

type visitFunc func(ast.Node)

func (f visitFunc) Visit(n ast.Node) ast.Visitor {
	f(n)
	return f
}

// expandedSize counts the nodes of n with every alias expanded, stopping at
// limit+1; an alias to its own ancestor counts as too many. Memoised per
// node, so it is linear in the file however aliases multiply.
func (d *decoder) expandedSize(n ast.Node, limit int) int {
	memo := map[ast.Node]int{}
	const inProgress = -1
	var size func(n ast.Node) int
	size = func(n ast.Node) int {
		if n == nil {
			return 0
		}
		if s, ok := memo[n]; ok {
			if s == inProgress {
				return limit + 1
			}
			return s
		}
		memo[n] = inProgress
		total := 1
		add := func(c ast.Node) {
			if total <= limit {
				total += size(c)
			}
		}
		switch v := n.(type) {
		case *ast.MappingNode:
			for _, mv := range v.Values {
				add(mv)
			}
		case *ast.MappingValueNode:
			add(v.Key)
			add(v.Value)
		case *ast.MappingKeyNode:
			add(v.Value)
		case *ast.SequenceNode:
			for _, c := range v.Values {
				add(c)
			}
		case *ast.AnchorNode:
			add(v.Value)
		case *ast.TagNode:
			add(v.Value)
		case *ast.AliasNode:
			add(d.aliases[v])
		}
		total = min(total, limit+1)
		memo[n] = total
		return total
	}
	return size(n)
}

// posOf returns where a node starts in the file.
func posOf(n ast.Node) pos {
	switch v := n.(type) {
	case nil:
		return pos{}
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return posOf(v.Values[0])
		}
	case *ast.MappingValueNode:
		return posOf(v.Key)
	case *ast.SequenceNode:
		if v.Start != nil {
			return tokenPos(v.Start.Position)
		}
	case *ast.LiteralNode:
		if v.Start != nil {
			return tokenPos(v.Start.Position)
		}
	}
	if tk := n.GetToken(); tk != nil {
		return tokenPos(tk.Position)
	}
	return pos{}
}

func tokenPos(p *token.Position) pos {
	if p == nil {
		return pos{}
	}
	return pos{p.Line, p.Column}
}

// resolve follows anchors, aliases and tags to the node that holds the
// value; expandedSize has ruled out cycles. It reports and returns false for
// what an appspec does not allow. A "!!str" tag is kept, for scalar to read.
func (d *decoder) resolve(n ast.Node, path string) (ast.Node, bool) {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.AliasNode:
			target := d.aliases[v]
			if target == nil {
				name := ""
				if v.Value != nil {
					name = v.Value.GetToken().Value
				}
				d.add(posOf(v), path, []error{ErrSyntax}, "alias *%s is not defined before it is used", name)
				return nil, false
			}
			n = target
		case *ast.TagNode:
			if v.Start == nil || v.Start.Value != "!!str" {
				tag := ""
				if v.Start != nil {
					tag = v.Start.Value
				}
				d.add(posOf(v), path, []error{ErrSyntax}, "YAML tag %s is not supported (only !!str is)", tag)
				return nil, false
			}
			return v, true
		default:
			return n, true
		}
	}
}

// kindOf names a resolved node's type for messages.
func kindOf(n ast.Node) string {
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode, *ast.TagNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number"
	case *ast.InfinityNode, *ast.NanNode:
		return "a non-finite number"
	case *ast.BoolNode:
		return "a boolean"
	default:
		return "a " + v.Type().YAMLName()
	}
}

// scalar returns a resolved scalar's text: the value of a string, and a
// number or boolean as written. kind is "string", "number" or "boolean";
// ok is false for null and for collections.
func scalar(n ast.Node) (text, kind string, ok bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, "string", true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", "string", true
		}
		return v.Value.Value, "string", true
	case *ast.TagNode: // !!str, checked by resolve
		inner, _, ok := scalar(v.Value)
		if !ok {
			if _, null := v.Value.(*ast.NullNode); null {
				return "", "string", true
			}
			return "", "", false
		}
		return inner, "string", true
	case *ast.IntegerNode, *ast.FloatNode:
		return v.GetToken().Value, "number", true
	case *ast.BoolNode:
		return v.GetToken().Value, "boolean", true
	}
	return "", "", false
}

// number returns the value of a resolved number node.
func number(n ast.Node) (float64, bool) {
	switch v := n.(type) {
	case *ast.IntegerNode:
		switch i := v.Value.(type) {
		case int64:
			return float64(i), true
		case uint64:
			return float64(i), true
		}
	case *ast.FloatNode:
		return v.Value, true
	}
	return 0, false
}

// entry is one key of a mapping.
type entry struct {
	key   string
	at    pos // the key's position
	value ast.Node
}

// entries lists a mapping's keys in order, or reports that n is not one.
func (d *decoder) entries(n ast.Node, path string, at pos) ([]entry, bool) {
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	default:
		d.mustBe(at, path, "a mapping", n)
		return nil, false
	}
	var out []entry
	seen := map[string]pos{}
	for _, mv := range values {
		kat := posOf(mv.Key)
		switch mv.Key.(type) {
		case *ast.MergeKeyNode:
			d.add(kat, path, []error{ErrSyntax}, "merge keys (<<) are not supported")
			continue
		case *ast.MappingKeyNode:
			d.add(kat, path, []error{ErrSyntax}, "complex keys (?) are not supported")
			continue
		}
		kn, ok := d.resolve(mv.Key, path)
		if !ok {
			continue
		}
		key, _, ok := scalar(kn)
		if !ok {
			d.add(kat, path, []error{ErrSchema}, "keys must be strings, got %s", kindOf(kn))
			continue
		}
		if first, dup := seen[key]; dup {
			d.add(kat, join(path, key), []error{ErrSyntax}, "duplicate key (first at line %d)", first.line)
			continue
		}
		seen[key] = kat
		out = append(out, entry{key: key, at: kat, value: mv.Value})
	}
	return out, true
}

func (d *decoder) mustBe(at pos, path, want string, got ast.Node) {
	d.add(at, path, []error{ErrSchema}, "must be %s, got %s", want, kindOf(got))
}

// field is one key of a fixed-shape mapping.
type field struct {
	name     string
	required bool
	decode   func(e entry, path string)
}

// object decodes a mapping with the given fields. refused maps keys that are
// known but not accepted (CodeDeploy features Gantry does not implement,
// events that run no scripts) to the whole message.
func (d *decoder) object(n ast.Node, path string, at pos, fields []field, refused map[string]string) bool {
	es, ok := d.entries(n, path, at)
	if !ok {
		return false
	}
	seen := map[string]bool{}
	for _, e := range es {
		p := join(path, e.key)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == e.key })
		if i < 0 {
			d.unknown(e, p, fields, refused)
			continue
		}
		seen[e.key] = true
		fields[i].decode(e, p)
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			d.add(at, join(path, f.name), []error{ErrMissingField, ErrSchema}, "missing required field")
		}
	}
	return true
}

func (d *decoder) unknown(e entry, path string, fields []field, refused map[string]string) {
	if msg, ok := refused[e.key]; ok {
		d.add(e.at, path, []error{ErrUnsupported, ErrUnknownField, ErrSchema}, "%s", msg)
		return
	}
	names := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		names[i] = f.name
		if dist := distance(strings.ToLower(e.key), strings.ToLower(f.name)); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		d.add(e.at, path, []error{ErrUnknownField, ErrSchema}, "unknown field; did you mean %s?", best)
		return
	}
	d.add(e.at, path, []error{ErrUnknownField, ErrSchema}, "unknown field; expected %s", orList(names))
}

// orList formats "a, b or c".
func orList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// join appends a key to a field path: hooks.AfterInstall, hooks["a.b"].
func join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// list returns the items of a list, or reports that n is not a non-empty
// one; what names the items in messages.
func (d *decoder) list(e entry, path, what string) ([]ast.Node, bool) {
	n, ok := d.resolve(e.value, path)
	if !ok {
		return nil, false
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.mustBe(e.at, path, "a list of "+what, n)
		return nil, false
	}
	if len(seq.Values) == 0 {
		d.add(e.at, path, []error{ErrSchema}, "must not be an empty list; leave the field out instead")
		return nil, false
	}
	return seq.Values, true
}

// str decodes a string field. Numbers and booleans are refused, so the
// value means the same to every YAML reader and to the schema.
func (d *decoder) str(e entry, path, want string) (string, bool) {
	n, ok := d.resolve(e.value, path)
	if !ok {
		return "", false
	}
	text, kind, ok := scalar(n)
	switch {
	case ok && kind == "string":
		if strings.ContainsRune(text, 0) {
			d.add(e.at, path, []error{ErrSchema}, "must not contain a NUL character")
			return "", false
		}
		return text, true
	case ok:
		d.add(e.at, path, []error{ErrSchema}, "must be %s, got %s; quote it: %q", want, kindOf(n), text)
	default:
		d.mustBe(e.at, path, want, n)
	}
	return "", false
}
