package pipelinefile

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/gantry-ci/gantry/services/internal/yamldoc"
)

// seg is one step of a field path: a mapping key or a list index.
type seg struct {
	key     string
	index   int
	isIndex bool
}

// fieldPath names a value in the document, e.g. stages[1].actions[0].runOrder.
type fieldPath []seg

func (p fieldPath) key(k string) fieldPath {
	return append(p[:len(p):len(p)], seg{key: k})
}

func (p fieldPath) idx(i int) fieldPath {
	return append(p[:len(p):len(p)], seg{index: i, isIndex: true})
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// String formats the path the way users write it: keys joined by dots,
// indexes in brackets, and keys that are not identifiers quoted in brackets
// (configuration["docker.image"]).
func (p fieldPath) String() string {
	var b strings.Builder
	for _, s := range p {
		switch {
		case s.isIndex:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case plainKey.MatchString(s.key):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			b.WriteString("[" + strconv.Quote(s.key) + "]")
		}
	}
	return b.String()
}

// pointerPath turns a JSON pointer from the schema validator into a path,
// using the document to tell list indexes from mapping keys.
func pointerPath(doc any, ptr []string) fieldPath {
	var p fieldPath
	cur := doc
	for _, tok := range ptr {
		switch v := cur.(type) {
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return p.key(tok)
			}
			p = p.idx(i)
			cur = v[i]
		case map[string]any:
			p = p.key(tok)
			cur = v[tok]
		default:
			p = p.key(tok)
			cur = nil
		}
	}
	return p
}

// lookup returns the value at a path of the document, or nil.
func lookup(doc any, p fieldPath) any {
	cur := doc
	for _, s := range p {
		switch v := cur.(type) {
		case []any:
			if !s.isIndex || s.index >= len(v) {
				return nil
			}
			cur = v[s.index]
		case map[string]any:
			if s.isIndex {
				return nil
			}
			cur = v[s.key]
		default:
			return nil
		}
	}
	return cur
}

// locator finds where a path is written in the YAML source. It follows
// anchors, aliases and merge keys (<<), so a value that came from an anchor is
// reported where the anchor wrote it.
type locator struct {
	root    ast.Node
	anchors map[string][]*ast.AnchorNode
}

func newLocator(root ast.Node) *locator {
	l := &locator{root: root, anchors: map[string][]*ast.AnchorNode{}}
	if root != nil {
		ast.Walk(anchorCollector(l.anchors), root)
	}
	return l
}

type anchorCollector map[string][]*ast.AnchorNode

func (c anchorCollector) Visit(n ast.Node) ast.Visitor {
	if a, ok := n.(*ast.AnchorNode); ok && a.Name != nil {
		name := a.Name.GetToken().Value
		c[name] = append(c[name], a)
	}
	return c
}

// position returns the line and column of the path: for a mapping entry the
// position of its key, for a list item the position of the item. When the
// path leads nowhere (a value the schema sees but the source spells
// differently) it returns the deepest position found.
func (l *locator) position(p fieldPath) token.Position {
	_, pos := l.find(p)
	return pos
}

// find returns the node at the path (nil if not found) and the position to
// report for it.
func (l *locator) find(p fieldPath) (ast.Node, token.Position) {
	n := l.root
	pos := nodePos(n)
	if n == nil {
		return nil, token.Position{Line: 1, Column: 1}
	}
	for depth, s := range p {
		n = l.deref(n)
		if n == nil {
			return nil, pos
		}
		if s.isIndex {
			seq, ok := n.(*ast.SequenceNode)
			if !ok || s.index >= len(seq.Values) {
				return nil, pos
			}
			n = seq.Values[s.index]
			pos = nodePos(n)
			continue
		}
		mv := l.entry(n, s.key, 0)
		if mv == nil {
			return nil, pos
		}
		if depth == len(p)-1 {
			return mv.Value, nodePos(mv.Key)
		}
		n = mv.Value
		pos = nodePos(mv.Key)
	}
	return n, pos
}

// deref strips anchors and tags and resolves aliases.
func (l *locator) deref(n ast.Node) ast.Node {
	for i := 0; n != nil && i < 64; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			n = l.alias(v)
		default:
			return n
		}
	}
	return nil
}

// alias returns the value of the last anchor of the alias's name written
// before it.
func (l *locator) alias(a *ast.AliasNode) ast.Node {
	if a.Value == nil {
		return nil
	}
	at := nodeOffset(a)
	var found *ast.AnchorNode
	for _, an := range l.anchors[a.Value.GetToken().Value] {
		if nodeOffset(an) < at {
			found = an
		}
	}
	if found == nil {
		return nil
	}
	return found.Value
}

// entry finds a mapping's entry for key, looking into merged mappings (<<)
// when the mapping itself does not have it.
func (l *locator) entry(n ast.Node, key string, depth int) *ast.MappingValueNode {
	if depth > 16 {
		return nil
	}
	values, ok := yamldoc.MappingValues(n)
	if !ok {
		return nil
	}
	for _, mv := range values {
		if _, merge := mv.Key.(*ast.MergeKeyNode); !merge && keyString(mv.Key) == key {
			return mv
		}
	}
	for _, mv := range values {
		if _, merge := mv.Key.(*ast.MergeKeyNode); !merge {
			continue
		}
		src := l.deref(mv.Value)
		if seq, ok := src.(*ast.SequenceNode); ok {
			for _, item := range seq.Values {
				if found := l.entry(l.deref(item), key, depth+1); found != nil {
					return found
				}
			}
			continue
		}
		if found := l.entry(src, key, depth+1); found != nil {
			return found
		}
	}
	return nil
}

// keyString is the text of a mapping key as the decoder sees it.
func keyString(n ast.Node) string {
	switch k := n.(type) {
	case *ast.StringNode:
		return k.Value
	case *ast.MappingKeyNode:
		return keyString(k.Value)
	case *ast.TagNode:
		return keyString(k.Value)
	case *ast.AnchorNode:
		return keyString(k.Value)
	case nil:
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// nodePos is where a node starts: the first key of a block mapping, the
// opening token of anything else.
func nodePos(n ast.Node) token.Position {
	if n == nil {
		return token.Position{Line: 1, Column: 1}
	}
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 && m.Values[0].Key != nil {
		return nodePos(m.Values[0].Key)
	}
	if mv, ok := n.(*ast.MappingValueNode); ok && mv.Key != nil {
		return nodePos(mv.Key)
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return token.Position{Line: 1, Column: 1}
	}
	return *tk.Position
}

func nodeOffset(n ast.Node) int {
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Offset
}
