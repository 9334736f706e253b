package appspec

import (
	"errors"

	"github.com/gantry-ci/gantry/services/internal/yamldoc"
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

// Problem is one thing wrong with an appspec, where it is and why: "file:line:column:
// path: message". It wraps the sentinels in its Errs.
type Problem = yamldoc.Problem

// ParseError holds every problem found in one appspec, in file order.
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
