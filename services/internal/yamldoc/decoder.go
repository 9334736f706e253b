package yamldoc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Pos is a 1-based line and column; zero when unknown.
type Pos struct{ Line, Col int }

// Decoder collects the problems of one file while a parser walks its AST.
// The zero value is ready once File and Errs are set.
type Decoder struct {
	File     string
	Problems []*Problem
	Errs     Sentinels
	// RefusedFormat formats the message of a refused key (see Object) from
	// the text its map gives; "%s" when empty.
	RefusedFormat string
	// aliases maps each alias to the node of the anchor it names, as
	// defined before it in the document; nil for an undefined alias.
	aliases map[*ast.AliasNode]ast.Node
}

// Add records a problem.
func (d *Decoder) Add(at Pos, path string, errs []error, format string, args ...any) {
	d.Problems = append(d.Problems, &Problem{
		File: d.File, Line: at.Line, Column: at.Col, Path: path,
		Message: fmt.Sprintf(format, args...), Errs: errs,
	})
}

// Err returns nil when there are no problems, else a *ParseError with the
// problems in file order.
func (d *Decoder) Err() error {
	if len(d.Problems) == 0 {
		return nil
	}
	SortProblems(d.Problems)
	return &ParseError{File: d.File, Problems: d.Problems}
}

// YAMLError turns an error of the YAML library into a problem.
func (d *Decoder) YAMLError(err error) {
	var ye yaml.Error
	if errors.As(err, &ye) {
		at := Pos{}
		if tk := ye.GetToken(); tk != nil {
			at = TokenPos(tk.Position)
		}
		d.Add(at, "", []error{d.Errs.Syntax}, "%s", ye.GetMessage())
		return
	}
	d.Add(Pos{}, "", []error{d.Errs.Syntax}, "%v", err)
}

// InvalidUTF8 returns the position (column in runes) of the first byte of
// data that is not UTF-8.
func InvalidUTF8(data []byte) Pos {
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
	return Pos{line, col}
}

// ReadFile reads the file at path, at most maxSize+1 bytes: enough for Load
// to refuse a file that is too large without reading all of it.
func ReadFile(path string, maxSize int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(maxSize)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// Limits are what Load accepts.
type Limits struct {
	// MaxFileSize is the largest file in bytes.
	MaxFileSize int
	// MaxNodes bounds the YAML nodes, aliases expanded.
	MaxNodes int
	// Noun names the file in messages, with its article: "a buildspec".
	Noun string
}

// Parse runs Load, then decode on the document's body; when decode found
// no problem, it checks the body against the embedded JSON Schema named
// schema too (see SchemaProblems), so the schema only speaks when it and the
// hand-written rules disagree. It returns decode's value, or nil and a
// *ParseError listing every problem in file order.
func Parse[T any](d *Decoder, data []byte, lim Limits, schema string, decode func(body ast.Node) *T) (*T, error) {
	body := d.Load(data, lim)
	if body == nil {
		return nil, d.Err()
	}
	v := decode(body)
	if len(d.Problems) == 0 {
		d.Problems = append(d.Problems, SchemaProblems(d.File, body, schema, d.Errs)...)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return v, nil
}

// Load runs the guards a file passes before it is decoded: its size, UTF-8,
// YAML syntax, exactly one document, and its size once aliases are expanded
// (so an alias bomb is refused, not expanded). It returns the document's
// body, or nil after recording the problem.
func (d *Decoder) Load(data []byte, lim Limits) ast.Node {
	if len(data) > lim.MaxFileSize {
		d.Add(Pos{}, "", []error{d.Errs.TooLarge}, "the file is larger than %d bytes", lim.MaxFileSize)
		return nil
	}
	if !utf8.Valid(data) {
		d.Add(InvalidUTF8(data), "", []error{d.Errs.Syntax}, "not valid UTF-8")
		return nil
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.YAMLError(err)
		return nil
	}
	var bodies []ast.Node
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			bodies = append(bodies, doc.Body)
		}
	}
	switch {
	case len(bodies) == 0:
		d.Add(Pos{}, "", []error{d.Errs.Syntax}, "the file is empty")
		return nil
	case len(bodies) > 1:
		d.Add(PosOf(bodies[1]), "", []error{d.Errs.Syntax}, "more than one YAML document; %s is one document", lim.Noun)
		return nil
	}
	body := bodies[0]
	d.CollectAnchors(body)
	if d.ExpandedSize(body, lim.MaxNodes) > lim.MaxNodes {
		d.Add(Pos{}, "", []error{d.Errs.TooLarge}, "more than %d YAML nodes once aliases are expanded", lim.MaxNodes)
		return nil
	}
	return body
}

// CollectAnchors resolves every alias to the anchor defined before it.
func (d *Decoder) CollectAnchors(body ast.Node) {
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

// ExpandedSize counts the nodes of n with every alias expanded, stopping at
// limit+1; an alias to its own ancestor counts as too many. Memoised per
// node, so it is linear in the file however aliases multiply. It needs
// CollectAnchors first.
func (d *Decoder) ExpandedSize(n ast.Node, limit int) int {
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

// PosOf returns where a node starts in the file.
func PosOf(n ast.Node) Pos {
	switch v := n.(type) {
	case nil:
		return Pos{}
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return PosOf(v.Values[0])
		}
	case *ast.MappingValueNode:
		return PosOf(v.Key)
	case *ast.SequenceNode:
		if v.Start != nil {
			return TokenPos(v.Start.Position)
		}
	case *ast.LiteralNode:
		if v.Start != nil {
			return TokenPos(v.Start.Position)
		}
	}
	if tk := n.GetToken(); tk != nil {
		return TokenPos(tk.Position)
	}
	return Pos{}
}

// TokenPos converts a token position; nil is the zero Pos.
func TokenPos(p *token.Position) Pos {
	if p == nil {
		return Pos{}
	}
	return Pos{p.Line, p.Column}
}

// Resolve follows anchors, aliases and tags to the node that holds the
// value; Load has ruled out cycles. It reports and returns false for an
// undefined alias and for any tag but "!!str", which it keeps for Scalar to
// read.
func (d *Decoder) Resolve(n ast.Node, path string) (ast.Node, bool) {
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
				d.Add(PosOf(v), path, []error{d.Errs.Syntax}, "alias *%s is not defined before it is used", name)
				return nil, false
			}
			n = target
		case *ast.TagNode:
			if v.Start == nil || v.Start.Value != "!!str" {
				tag := ""
				if v.Start != nil {
					tag = v.Start.Value
				}
				d.Add(PosOf(v), path, []error{d.Errs.Syntax}, "YAML tag %s is not supported (only !!str is)", tag)
				return nil, false
			}
			return v, true
		default:
			return n, true
		}
	}
}

// KindOf names a resolved node's type for messages: "a mapping", "null".
func KindOf(n ast.Node) string {
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

// Scalar returns a resolved scalar's text: the value of a string, and a
// number or boolean as written. kind is "string", "number" or "boolean";
// ok is false for null and for collections.
func Scalar(n ast.Node) (text, kind string, ok bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, "string", true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", "string", true
		}
		return v.Value.Value, "string", true
	case *ast.TagNode: // !!str, checked by Resolve
		inner, _, ok := Scalar(v.Value)
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

// Number returns the value of a resolved number node.
func Number(n ast.Node) (float64, bool) {
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

// MappingValues returns the entries of a mapping node, block or flow, or
// false when n is not one. A mapping of one entry may be parsed as a bare
// *ast.MappingValueNode.
func MappingValues(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// Entry is one key of a mapping.
type Entry struct {
	Key   string
	At    Pos // the key's position
	Value ast.Node
}

// Entries lists a mapping's keys in order, or reports that n is not one. It
// refuses merge keys, complex keys, keys that are not strings and duplicate
// keys.
func (d *Decoder) Entries(n ast.Node, path string, at Pos) ([]Entry, bool) {
	values, ok := MappingValues(n)
	if !ok {
		d.MustBe(at, path, "a mapping", n)
		return nil, false
	}
	var out []Entry
	seen := map[string]Pos{}
	for _, mv := range values {
		kat := PosOf(mv.Key)
		switch mv.Key.(type) {
		case *ast.MergeKeyNode:
			d.Add(kat, path, []error{d.Errs.Syntax}, "merge keys (<<) are not supported")
			continue
		case *ast.MappingKeyNode:
			d.Add(kat, path, []error{d.Errs.Syntax}, "complex keys (?) are not supported")
			continue
		}
		kn, ok := d.Resolve(mv.Key, path)
		if !ok {
			continue
		}
		key, _, ok := Scalar(kn)
		if !ok {
			d.Add(kat, path, []error{d.Errs.Schema}, "keys must be strings, got %s", KindOf(kn))
			continue
		}
		if first, dup := seen[key]; dup {
			d.Add(kat, Join(path, key), []error{d.Errs.Syntax}, "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[key] = kat
		out = append(out, Entry{Key: key, At: kat, Value: mv.Value})
	}
	return out, true
}

// MustBe reports a value of the wrong type: "must be want, got a list".
func (d *Decoder) MustBe(at Pos, path, want string, got ast.Node) {
	d.Add(at, path, []error{d.Errs.Schema}, "must be %s, got %s", want, KindOf(got))
}

// Field is one key of a fixed-shape mapping.
type Field struct {
	Name     string
	Required bool
	Decode   func(e Entry, path string)
}

// Object decodes a mapping with the given fields, reporting unknown keys
// (with a suggestion) and missing required ones; it returns false when n is
// not a mapping. refused maps keys that are known but not accepted to the
// text of their message, formatted with RefusedFormat.
func (d *Decoder) Object(n ast.Node, path string, at Pos, fields []Field, refused map[string]string) bool {
	es, ok := d.Entries(n, path, at)
	if !ok {
		return false
	}
	seen := map[string]bool{}
	for _, e := range es {
		p := Join(path, e.Key)
		i := slices.IndexFunc(fields, func(f Field) bool { return f.Name == e.Key })
		if i < 0 {
			d.unknown(e, p, fields, refused)
			continue
		}
		seen[e.Key] = true
		fields[i].Decode(e, p)
	}
	for _, f := range fields {
		if f.Required && !seen[f.Name] {
			d.Add(at, Join(path, f.Name), []error{d.Errs.MissingField, d.Errs.Schema}, "missing required field")
		}
	}
	return true
}

func (d *Decoder) unknown(e Entry, path string, fields []Field, refused map[string]string) {
	if msg, ok := refused[e.Key]; ok {
		format := d.RefusedFormat
		if format == "" {
			format = "%s"
		}
		d.Add(e.At, path, []error{d.Errs.Unsupported, d.Errs.UnknownField, d.Errs.Schema}, format, msg)
		return
	}
	names := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		names[i] = f.Name
		if dist := Distance(strings.ToLower(e.Key), strings.ToLower(f.Name)); dist < bestDist {
			best, bestDist = f.Name, dist
		}
	}
	if best != "" {
		d.Add(e.At, path, []error{d.Errs.UnknownField, d.Errs.Schema}, "unknown field; did you mean %s?", best)
		return
	}
	d.Add(e.At, path, []error{d.Errs.UnknownField, d.Errs.Schema}, "unknown field; expected %s", OrList(names))
}

// OrList formats "a, b or c".
func OrList(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Distance is the Levenshtein distance between a and b, in bytes.
func Distance(a, b string) int {
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

// Join appends a key to a field path: phases.build, env.variables["a.b"].
func Join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index appends a list index to a field path: commands[2].
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
