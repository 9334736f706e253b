package appspec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Parse returns a *ParseError; each of its problems wraps one
// or more of these, so callers test with errors.Is and never match text.
var (
	// ErrSyntax: the file is not valid UTF-8 or YAML, is empty, holds more
	// than one document, or uses a YAML feature the appspec does not allow
	// (merge keys, complex keys, custom tags, an undefined alias). The YAML
	// parser stops at the first syntax error, so such a file reports only it.
	ErrSyntax = errors.New("invalid YAML")
	// ErrTooLarge: the file exceeds MaxFileSize, or its value, once aliases
	// are expanded, exceeds MaxNodes.
	ErrTooLarge = errors.New("appspec too large")
	// ErrSchema: a value has the wrong type or is out of range. The
	// ErrUnknownField, ErrMissingField and ErrInvalidPath problems wrap it
	// too.
	ErrSchema = errors.New("does not match the appspec schema")
	// ErrUnknownField: a mapping has a key the appspec does not define.
	ErrUnknownField = errors.New("unknown field")
	// ErrUnsupported: the key is a CodeDeploy feature Gantry does not
	// implement (permissions, load balancer traffic hooks, ...) or a
	// lifecycle event that cannot run scripts. Such problems wrap
	// ErrUnknownField too.
	ErrUnsupported = errors.New("unsupported CodeDeploy feature")
	// ErrMissingField: a required field is absent.
	ErrMissingField = errors.New("missing required field")
	// ErrInvalidPath: a path is not where it must be: a hook location or
	// file source outside the bundle (absolute, or using ".."), or a file
	// destination that is not absolute.
	ErrInvalidPath = errors.New("invalid path")
)

// Problem is one thing wrong with an appspec, where it is and why.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Path is the field, e.g. "hooks.AfterInstall[0].location"; empty for
	// the whole document.
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

// ParseError holds every problem found in one appspec, in file order.
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
