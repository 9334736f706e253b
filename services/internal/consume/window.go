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

// Covers reports whether a subject whose events were all handled up to its
// delivery number d in epoch has missed nothing since: every delivery from
// d up to this span's end reached this process. A zero d proves nothing.
func (s Span) Covers(d uint64, epoch uint32) bool {
	return d != 0 && epoch == s.Epoch && d >= s.Since
}
