package secrets

import "errors"

// Sentinel errors, returned wrapped with the secret's name or reference
// (never its value); test with errors.Is.
var (
	// ErrNotFound: no secret of that name is stored, or the file is missing.
	ErrNotFound = errors.New("secret not found")
	// ErrInvalidName: the name is not a valid secret name.
	ErrInvalidName = errors.New("invalid secret name")
	// ErrInvalidValue: the value is too short to be masked, too large, or
	// holds a NUL byte.
	ErrInvalidValue = errors.New("invalid secret value")
	// ErrFileNotAllowed: a file reference points outside the worker's
	// secrets directories, or the worker has none.
	ErrFileNotAllowed = errors.New("secret file outside the worker's secrets directories")
)
