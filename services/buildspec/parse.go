package buildspec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Limits on what Parse accepts.
const (
	// MaxFileSize is the largest buildspec in bytes.
	MaxFileSize = 1 << 20
	// MaxNodes bounds the YAML nodes visited, aliases expanded, so that an
	// alias bomb is refused rather than expanded.
	MaxNodes = 100_000
)

// ParseFile reads and parses the buildspec at path; messages name the path.
func ParseFile(path string) (*Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse parses a buildspec. name is the file name used in messages. The
// error, if any, is a *ParseError listing every problem in file order.
func Parse(name string, data []byte) (*Spec, error) {
	d := &decoder{file: name}
	spec := d.parse(data)
	if len(d.problems) > 0 {
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &ParseError{File: name, Problems: d.problems}
	}
	return spec, nil
}

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

func (d *decoder) parse(data []byte) *Spec {
	if len(data) > MaxFileSize {
		d.add(pos{}, "", []error{ErrTooLarge}, "the file is larger than %d bytes", MaxFileSize)
		return nil
	}
	if !utf8.Valid(data) {
		d.add(invalidUTF8(data), "", []error{ErrSyntax}, "not valid UTF-8")
		return nil
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.yamlError(err)
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
		d.add(pos{}, "", []error{ErrSyntax}, "the file is empty")
		return nil
	case len(bodies) > 1:
		d.add(posOf(bodies[1]), "", []error{ErrSyntax}, "more than one YAML document; a buildspec is one document")
		return nil
	}
	body := bodies[0]
	d.collectAnchors(body)
	if d.expandedSize(body, MaxNodes) > MaxNodes {
		d.add(pos{}, "", []error{ErrTooLarge}, "more than %d YAML nodes once aliases are expanded", MaxNodes)
		return nil
	}
	spec := d.spec(body)
	if len(d.problems) == 0 {
		d.schemaCheck(body)
	}
	return spec
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
// value; expandedSize has ruled out cycles. It reports and returns false for what a buildspec does not allow.
// A "!!str" tag is kept, for scalar to read.
func (d *decoder) resolve(n ast.Node, path string, at pos) (ast.Node, bool) {
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
		kn, ok := d.resolve(mv.Key, path, kat)
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

// object decodes a mapping with the given fields. unsupported maps CodeBuild
// keys Gantry does not implement to a hint.
func (d *decoder) object(n ast.Node, path string, at pos, fields []field, unsupported map[string]string) bool {
	es, ok := d.entries(n, path, at)
	if !ok {
		return false
	}
	seen := map[string]bool{}
	for _, e := range es {
		p := join(path, e.key)
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == e.key })
		if i < 0 {
			d.unknown(e, p, fields, unsupported)
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

func (d *decoder) unknown(e entry, path string, fields []field, unsupported map[string]string) {
	if hint, ok := unsupported[e.key]; ok {
		d.add(e.at, path, []error{ErrUnsupported, ErrUnknownField, ErrSchema}, "not supported by Gantry: %s", hint)
		return
	}
	names := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		names[i] = f.name
		if dist := distance(strings.ToLower(e.key), f.name); dist < bestDist {
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

// join appends a key to a field path: phases.build, env.variables["a.b"].
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

// varName is the shape of an environment variable name; schemas/buildspec.json
// has the same pattern.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// reportName is the shape of a report name (schemas/defs.json#/$defs/name).
var reportName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

var topUnsupported = map[string]string{
	"run-as":   "commands run as the worker's user",
	"proxy":    "configure the proxy in the worker's environment",
	"batch":    "use pipeline stages and actions for build batches",
	"cache":    "caching between builds is not implemented",
	"fleet":    "choose the worker pool in the pipeline file",
	"hooks":    "hooks are not implemented",
	"platform": "choose the worker pool in the pipeline file",
}

func (d *decoder) spec(body ast.Node) *Spec {
	s := &Spec{Version: Version}
	root, ok := d.resolve(body, "", posOf(body))
	if !ok {
		return nil
	}
	at := posOf(root)
	if at.line == 0 {
		at = pos{1, 1}
	}
	d.object(root, "", at, []field{
		{name: "version", required: true, decode: d.version},
		{name: "env", decode: func(e entry, p string) { d.env(e, p, &s.Env) }},
		{name: "phases", required: true, decode: func(e entry, p string) { d.phases(e, p, &s.Phases) }},
		{name: "artifacts", decode: func(e entry, p string) { s.Artifacts = d.artifacts(e, p) }},
		{name: "reports", decode: func(e entry, p string) { s.Reports = d.reports(e, p) }},
	}, topUnsupported)
	return s
}

func (d *decoder) version(e entry, path string) {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return
	}
	text, kind, ok := scalar(n)
	switch {
	case ok && kind == "string" && text == Version:
		return
	case ok && kind == "number":
		if f, err := strconv.ParseFloat(text, 64); err == nil && f == 0.2 {
			return
		}
		d.add(e.at, path, []error{ErrSchema}, "must be %s, got %s", Version, text)
	case ok:
		d.add(e.at, path, []error{ErrSchema}, "must be %s, got %q", Version, text)
	default:
		d.mustBe(e.at, path, Version, n)
	}
}

func (d *decoder) env(e entry, path string, env *Env) {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return
	}
	d.object(n, path, e.at, []field{
		{name: "variables", decode: func(e entry, p string) { env.Variables = d.variables(e, p) }},
		{name: "exported-variables", decode: func(e entry, p string) { env.ExportedVariables = d.exported(e, p) }},
	}, map[string]string{
		"shell":                 "commands run with bash, or sh where bash is missing",
		"parameter-store":       "pass secrets as pipeline variables",
		"secrets-manager":       "pass secrets as pipeline variables",
		"git-credential-helper": "configure git in the install phase",
	})
}

func (d *decoder) variables(e entry, path string) map[string]string {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return nil
	}
	es, ok := d.entries(n, path, e.at)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, v := range es {
		p := join(path, v.key)
		if !varName.MatchString(v.key) {
			d.add(v.at, p, []error{ErrSchema}, "invalid variable name: use letters, digits and _, not starting with a digit, at most 128")
		}
		vn, ok := d.resolve(v.value, p, v.at)
		if !ok {
			continue
		}
		text, _, ok := scalar(vn)
		switch {
		case !ok:
			hint := ""
			if _, null := vn.(*ast.NullNode); null {
				hint = `; write "" for an empty value`
			}
			d.add(v.at, p, []error{ErrSchema}, "must be a string, number or boolean, got %s%s", kindOf(vn), hint)
		case strings.ContainsRune(text, 0):
			d.add(v.at, p, []error{ErrSchema}, "must not contain a NUL character")
		default:
			out[v.key] = text
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) exported(e entry, path string) []string {
	items := d.stringList(e, path, "variable names", false, "")
	seen := map[string]pos{}
	for _, it := range items {
		p := index(path, it.index)
		if !varName.MatchString(it.text) {
			d.add(it.at, p, []error{ErrSchema}, "invalid variable name %q: use letters, digits and _, not starting with a digit, at most 128", it.text)
		}
		if first, dup := seen[it.text]; dup {
			d.add(it.at, p, []error{ErrSchema}, "%s is listed twice (first at line %d)", it.text, first.line)
			continue
		}
		seen[it.text] = it.at
	}
	return texts(items)
}

// item is one string of a list, with its index and position.
type item struct {
	text  string
	index int
	at    pos
}

func texts(items []item) []string {
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.text
	}
	return out
}

// stringList decodes a list of strings. Numbers and booleans are refused
// (a command "true" must be quoted), so the list means the same to every
// YAML reader and to the schema. hint is added to the message for a mapping
// item.
func (d *decoder) stringList(e entry, path, what string, nonEmpty bool, mapHint string) []item {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.mustBe(e.at, path, "a list of "+what, n)
		return nil
	}
	if len(seq.Values) == 0 {
		if nonEmpty {
			d.add(e.at, path, []error{ErrSchema}, "must not be an empty list")
		}
		return nil
	}
	var out []item
	for i, node := range seq.Values {
		p := index(path, i)
		ipos := posOf(node)
		it, ok := d.resolve(node, p, ipos)
		if !ok {
			continue
		}
		text, kind, ok := scalar(it)
		switch {
		case ok && kind == "string":
			if strings.ContainsRune(text, 0) {
				d.add(ipos, p, []error{ErrSchema}, "must not contain a NUL character")
				continue
			}
			out = append(out, item{text: text, index: i, at: ipos})
		case ok:
			d.add(ipos, p, []error{ErrSchema}, "must be a string, got %s; quote it: %q", kindOf(it), text)
		default:
			hint := ""
			if _, isMap := it.(*ast.MappingNode); isMap || isMappingValue(it) {
				hint = mapHint
			}
			d.add(ipos, p, []error{ErrSchema}, "must be a string, got %s%s", kindOf(it), hint)
		}
	}
	return out
}

func isMappingValue(n ast.Node) bool {
	_, ok := n.(*ast.MappingValueNode)
	return ok
}

var phaseUnsupported = map[string]string{
	"runtime-versions": "install runtimes with commands",
	"run-as":           "commands run as the worker's user",
}

func (d *decoder) phases(e entry, path string, ph *Phases) {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return
	}
	count := 0
	decode := func(dst **Phase) func(entry, string) {
		return func(e entry, p string) {
			count++
			*dst = d.phase(e, p)
		}
	}
	ok = d.object(n, path, e.at, []field{
		{name: Install, decode: decode(&ph.Install)},
		{name: PreBuild, decode: decode(&ph.PreBuild)},
		{name: Build, decode: decode(&ph.Build)},
		{name: PostBuild, decode: decode(&ph.PostBuild)},
	}, nil)
	if ok && count == 0 {
		d.add(e.at, path, []error{ErrSchema}, "must define at least one of install, pre_build, build or post_build")
	}
}

const commandHint = `; quote a command that contains ": "`

func (d *decoder) phase(e entry, path string) *Phase {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return nil
	}
	ph := &Phase{OnFailure: Abort}
	d.object(n, path, e.at, []field{
		{name: "commands", required: true, decode: func(e entry, p string) {
			ph.Commands = d.commands(e, p)
		}},
		{name: "finally", decode: func(e entry, p string) {
			ph.Finally = d.commands(e, p)
		}},
		{name: "on-failure", decode: func(e entry, p string) {
			n, ok := d.resolve(e.value, p, e.at)
			if !ok {
				return
			}
			text, kind, ok := scalar(n)
			switch {
			case ok && kind == "string" && (text == string(Abort) || text == string(Continue)):
				ph.OnFailure = OnFailure(text)
			case ok:
				d.add(e.at, p, []error{ErrSchema}, "must be ABORT or CONTINUE, got %q", text)
			default:
				d.mustBe(e.at, p, "ABORT or CONTINUE", n)
			}
		}},
	}, phaseUnsupported)
	return ph
}

func (d *decoder) commands(e entry, path string) []string {
	items := d.stringList(e, path, "commands", true, commandHint)
	for _, it := range items {
		if strings.TrimSpace(it.text) == "" {
			d.add(it.at, index(path, it.index), []error{ErrSchema}, "must not be empty")
		}
	}
	return texts(items)
}

func (d *decoder) artifacts(e entry, path string) *Artifacts {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return nil
	}
	a := &Artifacts{}
	d.object(n, path, e.at, []field{
		{name: "files", required: true, decode: func(e entry, p string) { a.Files = d.globs(e, p) }},
		{name: "base-directory", decode: func(e entry, p string) { a.BaseDirectory = d.baseDirectory(e, p) }},
		{name: "discard-paths", decode: func(e entry, p string) {
			n, ok := d.resolve(e.value, p, e.at)
			if !ok {
				return
			}
			text, kind, ok := scalar(n)
			switch {
			case ok && kind == "boolean":
				a.DiscardPaths = n.(*ast.BoolNode).Value
			case ok && kind == "string" && (text == "yes" || text == "no"):
				a.DiscardPaths = text == "yes"
			case ok:
				d.add(e.at, p, []error{ErrSchema}, "must be yes or no, got %q", text)
			default:
				d.mustBe(e.at, p, "yes or no", n)
			}
		}},
	}, map[string]string{
		"name":                "the pipeline file names output artifacts",
		"secondary-artifacts": "an action has one output artifact; use more actions",
		"exclude-paths":       "list only the files to include",
		"enable-symlinks":     "symlinks are stored as the files they point to",
		"s3-prefix":           "artifacts go to the object store",
	})
	return a
}

func (d *decoder) globs(e entry, path string) []string {
	items := d.stringList(e, path, "file globs", true, "")
	for _, it := range items {
		if msg := GlobProblem(it.text); msg != "" {
			d.add(it.at, index(path, it.index), []error{ErrInvalidPath}, "%s", msg)
		}
	}
	return texts(items)
}

func (d *decoder) baseDirectory(e entry, path string) string {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return ""
	}
	text, kind, ok := scalar(n)
	if !ok || kind != "string" {
		d.mustBe(e.at, path, "a string", n)
		return ""
	}
	if msg := DirProblem(text); msg != "" {
		d.add(e.at, path, []error{ErrInvalidPath}, "%s", msg)
	}
	return text
}

// GlobProblem says what is wrong with a file glob, or returns "" for a valid
// one: a doublestar pattern, relative, without ".." segments.
func GlobProblem(g string) string {
	switch {
	case g == "":
		return "must not be empty"
	case strings.ContainsRune(g, 0):
		return "must not contain a NUL character"
	case strings.HasPrefix(g, "/"):
		return fmt.Sprintf("%q must be relative to the base directory", g)
	case hasDotDot(g):
		return fmt.Sprintf("%q must not contain \"..\"", g)
	case !doublestar.ValidatePattern(g):
		return fmt.Sprintf("%q is not a valid glob pattern", g)
	}
	return ""
}

// DirProblem says what is wrong with a base directory, or returns "" for a
// valid one: relative, without ".." segments.
func DirProblem(dir string) string {
	switch {
	case dir == "":
		return "must not be empty; leave it out to mean the workspace"
	case strings.ContainsRune(dir, 0):
		return "must not contain a NUL character"
	case strings.HasPrefix(dir, "/"):
		return fmt.Sprintf("%q must be relative to the workspace", dir)
	case hasDotDot(dir):
		return fmt.Sprintf("%q must not contain \"..\"", dir)
	}
	return ""
}

func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

func (d *decoder) reports(e entry, path string) map[string]Report {
	n, ok := d.resolve(e.value, path, e.at)
	if !ok {
		return nil
	}
	es, ok := d.entries(n, path, e.at)
	if !ok {
		return nil
	}
	out := map[string]Report{}
	for _, re := range es {
		p := join(path, re.key)
		if !reportName.MatchString(re.key) {
			d.add(re.at, p, []error{ErrSchema}, "invalid report name: use 1-64 letters, digits, - or _, starting with a letter or digit")
		}
		rn, ok := d.resolve(re.value, p, re.at)
		if !ok {
			continue
		}
		r := Report{FileFormat: FileFormatJUnitXML}
		d.object(rn, p, re.at, []field{
			{name: "files", required: true, decode: func(e entry, p string) { r.Files = d.globs(e, p) }},
			{name: "base-directory", decode: func(e entry, p string) { r.BaseDirectory = d.baseDirectory(e, p) }},
			{name: "file-format", decode: func(e entry, p string) {
				n, ok := d.resolve(e.value, p, e.at)
				if !ok {
					return
				}
				text, _, ok := scalar(n)
				switch {
				case ok && text == FileFormatJUnitXML:
				case ok:
					d.add(e.at, p, []error{ErrSchema}, "must be JUNITXML (the only format Gantry reads), got %q", text)
				default:
					d.mustBe(e.at, p, "JUNITXML", n)
				}
			}},
		}, map[string]string{
			"discard-paths": "report files are read where they are",
		})
		out[re.key] = r
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
