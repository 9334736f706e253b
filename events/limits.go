package events

// Size limits of what travels on the bus. Every one is below NATS's default
// max_payload (1 MiB), so what passes them can always be published, and the
// streams refuse anything larger (MaxMsgSize), so a message too large to
// handle never reaches a consumer that would retry it forever (issue 7).
const (
	// MaxMessageBytes is the MaxMsgSize of the streams (data and headers).
	MaxMessageBytes = 1 << 20
	// MaxEventBytes bounds an encoded event (envelope and payload); the
	// rest of MaxMessageBytes is left for headers.
	MaxEventBytes = MaxMessageBytes - 64<<10
	// MaxTriggerBytes bounds an encoded trigger: 100 variables of 4 KiB
	// fit, and the run.requested it becomes still has room for the
	// definition.
	MaxTriggerBytes = 512 << 10
	// MaxDeadLetterBytes bounds the copy of a refused message kept in the
	// dead-letter stream: a larger one keeps its first MaxDeadLetterBytes,
	// with its size in a header.
	MaxDeadLetterBytes = 64 << 10
)
