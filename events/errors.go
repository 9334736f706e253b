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
