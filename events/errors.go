package events

import "errors"

var (
	// ErrInvalidEvent is returned (wrapped with detail) when an envelope or its
	// payload does not match its schema or cannot be decoded.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrUnknownType is returned when an envelope names a type Gantry does not know.
	ErrUnknownType = errors.New("unknown event type")
	// ErrInvalidName is returned when a pipeline, stage, action or artifact name
	// cannot be used in a subject or an event ID.
	ErrInvalidName = errors.New("invalid name")
	// ErrTooLarge is returned, wrapped together with ErrInvalidEvent, when an
	// encoded event is larger than MaxEventBytes.
	ErrTooLarge = errors.New("event too large")
)

// MaxEventBytes bounds an encoded event (envelope and payload). It is below
// NATS's default max_payload (1 MiB) less room for headers, so an event
// Encode accepts can always be published, and a run's projection (which
// holds its definition) fits in a KV value.
const MaxEventBytes = 1<<20 - 64<<10
