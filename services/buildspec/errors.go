package buildspec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Parse returns a *ParseError; each of its problems wraps one
// or more of these, so callers test with errors.Is and never match text.
var (
	// ErrSyntax: the file is not valid UTF-8 or YAML, is empty, holds more
	// than one document, or uses a YAML feature the buildspec does not allow
	// (merge keys, complex keys, custom tags, an undefined alias). The YAML
	// parser stops at the first syntax error, so such a file reports only it.
	ErrSyntax = errors.New("invalid YAML")
	// ErrTooLarge: the file exceeds MaxFileSize, or its value, once aliases
	// are expanded, exceeds MaxNodes.
	ErrTooLarge = errors.New("buildspec too large")
	// ErrSchema: a value has the wrong type or is out of range. The
	// ErrUnknownField and ErrMissingField problems wrap it too.
	ErrSchema = errors.New("does not match the buildspec schema")
	// ErrUnknownField: a mapping has a key the buildspec does not define.
	ErrUnknownField = errors.New("unknown field")
	// ErrUnsupported: the key is a CodeBuild feature Gantry does not
	// implement (runtime-versions, cache, parameter-store, ...). Such problems
	// wrap ErrUnknownField too.
	ErrUnsupported = errors.New("unsupported CodeBuild feature")
	// ErrMissingField: a required field is absent.
	ErrMissingField = errors.New("missing required field")
	// ErrInvalidPath: a file glob or base directory is not a valid relative
	// pattern inside the workspace (absolute, uses "..", or bad glob syntax).
	ErrInvalidPath = errors.New("invalid path or glob")
)

// Problem is one thing wrong with a buildspec, where it is and why.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Path is the field, e.g. "phases.build.commands[2]"; empty for the whole
	// document.
	Path    string
	Message string
	// Errs are the sentinels the problem wraps.
	Errs []error
}

// Error formats the problem as "file:line:column: path: message".
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Unwrap returns the sentinels the problem wraps.
func (p *Problem) Unwrap() []error { return p.Errs }

// ParseError holds every problem found in one buildspec, in file order.
type ParseError struct {
	File     string
	Problems []*Problem
}

// Error prints one problem per line.
func (e *ParseError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so errors.Is and errors.As see each of them.
func (e *ParseError) Unwrap() []error {
	out := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = p
	}
	return out
}
