package yamldoc

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a file, where it is and why. It wraps the
// sentinels in Errs, so callers test with errors.Is and never match text.
type Problem struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Path is the field, e.g. "phases.build.commands[2]"; empty for the
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

// ParseError holds every problem found in one file, in file order.
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

// SortProblems puts problems in file order (line, then column), keeping the
// order they were found in otherwise.
func SortProblems(problems []*Problem) {
	sort.SliceStable(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// Sentinels are the errors a Decoder's problems wrap; each parser has its
// own, so that errors.Is(err, buildspec.ErrSchema) stays specific.
type Sentinels struct {
	// Syntax: invalid UTF-8 or YAML, an empty file, more than one document,
	// a YAML feature the format refuses.
	Syntax error
	// TooLarge: the file or its alias-expanded value is over the limits.
	TooLarge error
	// Schema: a value of the wrong type or out of range; wrapped by every
	// unknown-field and missing-field problem too.
	Schema error
	// UnknownField: a mapping key the format does not define.
	UnknownField error
	// MissingField: a required field is absent.
	MissingField error
	// Unsupported: a known key the format refuses (wraps UnknownField too).
	Unsupported error
}
