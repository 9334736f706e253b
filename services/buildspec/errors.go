package buildspec

import (
	"errors"

	"github.com/gantry-ci/gantry/services/internal/yamldoc"
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

// Problem is one thing wrong with a buildspec, where it is and why: "file:line:column:
// path: message". It wraps the sentinels in its Errs.
type Problem = yamldoc.Problem

// ParseError holds every problem found in one buildspec, in file order.
type ParseError = yamldoc.ParseError

// sentinels are the errors the shared YAML checks wrap.
var sentinels = yamldoc.Sentinels{
	Syntax:       ErrSyntax,
	TooLarge:     ErrTooLarge,
	Schema:       ErrSchema,
	UnknownField: ErrUnknownField,
	MissingField: ErrMissingField,
	Unsupported:  ErrUnsupported,
}
