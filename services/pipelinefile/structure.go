package pipelinefile

import (
	"fmt"

	"github.com/goccy/go-yaml/token"
)

// Structure limits, checked on the tokens before the YAML parser builds a
// tree: goccy/go-yaml's parser takes time quadratic in the nesting depth and
// in the number of entries of one mapping or list, so a small hostile file
// could otherwise keep Parse busy for minutes. A real pipeline nests about
// seven levels deep.
const (
	MaxDepth   = 32
	MaxEntries = 2000
)

// level is one open collection: a block one at a column, or a flow one.
type level struct {
	col     int
	flow    bool
	entries int
}

// checkStructure returns a problem at the first token that nests deeper than
// MaxDepth or adds an entry beyond MaxEntries to its collection. It counts
// from the tokens only, so it is a bound, not a parse: the parser reports
// anything malformed afterwards.
func checkStructure(tokens token.Tokens) (pos token.Position, msg string) {
	var stack []level
	top := func() *level {
		if len(stack) == 0 {
			return nil
		}
		return &stack[len(stack)-1]
	}
	inFlow := func() bool { return top() != nil && top().flow }
	// block enters the block collection whose entries start at col.
	block := func(col int) {
		for len(stack) > 0 && !top().flow && top().col > col {
			stack = stack[:len(stack)-1]
		}
		if t := top(); t != nil && !t.flow && t.col == col {
			t.entries++
			return
		}
		stack = append(stack, level{col: col, entries: 1})
	}
	for _, tk := range tokens {
		if tk == nil || tk.Position == nil {
			continue
		}
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			stack = append(stack, level{flow: true, entries: 1})
		case token.SequenceEndType, token.MappingEndType:
			for len(stack) > 0 {
				flow := top().flow
				stack = stack[:len(stack)-1]
				if flow {
					break
				}
			}
		case token.CollectEntryType:
			if inFlow() {
				top().entries++
			}
		case token.SequenceEntryType:
			if !inFlow() {
				block(tk.Position.Column)
			}
		case token.MappingValueType:
			if !inFlow() && tk.Prev != nil && tk.Prev.Position != nil && tk.Prev.Type != token.CommentType {
				block(tk.Prev.Position.Column)
			}
		default:
			continue
		}
		if len(stack) > MaxDepth {
			return *tk.Position, fmt.Sprintf("values nested more than %d levels deep", MaxDepth)
		}
		if t := top(); t != nil && t.entries > MaxEntries {
			return *tk.Position, fmt.Sprintf("more than %d entries in one mapping or list", MaxEntries)
		}
	}
	return token.Position{}, ""
}
