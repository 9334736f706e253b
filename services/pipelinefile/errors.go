package pipelinefile

import (
	"errors"

	"github.com/gantry-ci/gantry/services/internal/yamldoc"
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
	// ErrBadDependency: a stage's dependsOn names an unknown stage, the stage
	// itself, or closes a cycle.
	ErrBadDependency = errors.New("invalid stage dependency")
	// ErrReservedVariable: a variable name starts with GANTRY_, the prefix of
	// the variables Gantry sets itself.
	ErrReservedVariable = errors.New("reserved variable name")
	// ErrMissingConfiguration: an action lacks a configuration key its type
	// needs (a source action needs repository).
	ErrMissingConfiguration = errors.New("missing configuration")
)

// Problem is one thing wrong with a pipeline file, where it is and why:
// "file:line:column: path: message", the path such as
// "stages[1].actions[0].runOrder". It wraps the sentinels in its Errs.
type Problem = yamldoc.Problem

// ParseError holds every problem found in one pipeline file, in file order.
type ParseError = yamldoc.ParseError

// ErrBadTrigger: a trigger cannot work as written: a glob that does not
// parse, a poll interval out of range, a poll without a source action, or
// a trigger that hears neither webhooks nor polls.
var ErrBadTrigger = errors.New("bad trigger")
