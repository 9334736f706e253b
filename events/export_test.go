package events

// Test hooks for the fast path's equivalence tests (package events_test).

// DecodeSchema decodes by the JSON Schema validator alone, as Decode did
// before the fast path.
func (c *Codec) DecodeSchema(raw []byte) (Event, error) { return c.decodeSchema(raw) }

// DecodeFast runs the fast path; ok is false when raw is not an envelope of a
// fast type.
func DecodeFast(raw []byte) (e Event, ok bool, err error) { return decodeFast(raw) }

// HasFastPath reports whether a type has the fast path.
func HasFastPath(t string) bool { return fastShapes[t] != nil }
