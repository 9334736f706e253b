package pipelinefile

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Parse returns a *ParseError; each of its problems wraps
// one or more of these, so callers test with errors.Is on the returned error
// and never match text. An invalid name also wraps events.ErrInvalidName.
var (
	// ErrSyntax: the file is not YAML, is empty, or holds more than one
	// document. The YAML parser stops at the first syntax error, so a file
	// with a syntax error reports only that one.
	ErrSyntax = errors.New("invalid YAML")
	// ErrTooLarge: the file, or its value once aliases are expanded, exceeds
	// MaxFileSize or MaxNodes.
	ErrTooLarge = errors.New("pipeline file too large")
	// ErrSchema: the file does not match schemas/pipeline.json (a wrong
	// type, a value out of range, an invalid name). ErrUnknownField and
	// ErrMissingField problems wrap it too.
	ErrSchema = errors.New("does not match the pipeline schema")
	// ErrUnknownField: a mapping has a key the schema does not allow.
	ErrUnknownField = errors.New("unknown field")
	// ErrMissingField: a required field is absent.
	ErrMissingField = errors.New("missing required field")
	// ErrDuplicateName: two stages, or two actions of one stage, share a name.
	ErrDuplicateName = errors.New("duplicate name")
	// ErrDuplicateArtifact: two actions produce an artifact of the same name.
	ErrDuplicateArtifact = errors.New("duplicate artifact")
	// ErrInputNotProduced: an action reads an artifact that no action of an
	// earlier stage, or of an earlier runOrder group of its stage, produces.
	ErrInputNotProduced = errors.New("input artifact not produced earlier")
	// ErrReservedVariable: a variable name starts with GANTRY_, the prefix of
	// the variables Gantry sets itself.
	ErrReservedVariable = errors.New("reserved variable name")
	// ErrMissingConfiguration: an action lacks a configuration key its type
	// needs (a source action needs repository).
	ErrMissingConfiguration = errors.New("missing configuration")
)

// Problem is one thing wrong with a pipeline file, where it is and why.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Path is the field, e.g. "stages[1].actions[0].runOrder"; empty for the
	// whole document.
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

// ParseError holds every problem found in one pipeline file, in file order.
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
