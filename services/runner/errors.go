package runner

import "errors"

// Sentinel errors, returned wrapped with detail; test with errors.Is.
var (
	// ErrInvalidOptions: Run's Options are unusable (Validate lists why).
	ErrInvalidOptions = errors.New("invalid runner options")
	// ErrInvalidSpec: the spec is nil, has no phase, or exports a variable
	// whose name is not a shell identifier. Parsed specs never are.
	ErrInvalidSpec = errors.New("invalid buildspec")
	// ErrNoShell: neither bash nor sh is on the worker's PATH.
	ErrNoShell = errors.New("no shell: neither bash nor sh found")
	// ErrUnsupported: the platform cannot run builds (process groups are
	// needed).
	ErrUnsupported = errors.New("builds are not supported on this platform")
	// ErrOutsideWorkspace: a base directory or a matched file resolves,
	// through "..", an absolute path or a symlink, to a place outside the
	// workspace.
	ErrOutsideWorkspace = errors.New("path is outside the workspace")
	// ErrNoFiles: the globs matched no file.
	ErrNoFiles = errors.New("no files matched")
	// ErrDuplicateName: with discard-paths, two different files would have
	// the same name in the archive.
	ErrDuplicateName = errors.New("two files with the same name in the archive")
	// ErrInvalidGlob: a glob or base directory is not a valid relative
	// pattern (see buildspec.GlobProblem).
	ErrInvalidGlob = errors.New("invalid glob")
)
