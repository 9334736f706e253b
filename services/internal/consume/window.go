package consume

// Window tracks which deliveries of a durable consumer shared by several
// processes reached this one. The server numbers every delivery of a
// consumer (redeliveries too) and hands first deliveries out in stream
// order, so while one process receives every number, no other process took
// a message in between: a process that handled a subject's event at
// delivery d, and has received every delivery since, has seen every event
// of that subject stored since (it may fold the next one without asking
// the server whether it missed one). Only the goroutine that receives the
// messages, in order, may call See.
type Window struct {
	last uint64
	span Span
}

// Span is an unbroken run of delivery numbers: from Since on, in numbering
// Epoch, which moves when the numbering goes back (the consumer was
// recreated), so that older numbers prove nothing.
type Span struct {
	Since uint64
	Epoch uint32
}

// See records delivery number n and returns the unbroken run that ends
// with it.
func (w *Window) See(n uint64) Span {
	if n <= w.last {
		w.span.Epoch++
	}
	if n != w.last+1 || w.span.Since == 0 {
		w.span.Since = n
	}
	w.last = n
	return w.span
}

// Position is a delivery number in its epoch; the zero Position is none.
type Position struct {
	N     uint64
	Epoch uint32
}

// At is delivery number n of this span's epoch.
func (s Span) At(n uint64) Position { return Position{N: n, Epoch: s.Epoch} }

// Covers reports whether every delivery from p up to this span's end
// reached this process: a subject whose events were all handled up to
// delivery p has missed nothing since. The zero Position proves nothing.
func (s Span) Covers(p Position) bool {
	return p.N != 0 && p.Epoch == s.Epoch && p.N >= s.Since
}
