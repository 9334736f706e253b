// Package redact hides secret values in text: a Masker replaces every
// occurrence of a secret with "***", in a whole string or, through a
// Writer, in a stream cut into arbitrary chunks. It is pure (no I/O of its
// own), so the build runner and the worker's log stream share it.
//
// # Matching
//
// At each position the longest secret that starts there is replaced, and
// scanning resumes after it; where none starts, the byte is kept. A value
// that holds several lines is also matched line by line (each line of at
// least MinLen bytes, a trailing \r dropped), so that a PEM key printed by
// a tool that re-wraps or indents it is still hidden line by line, and a
// value read from a file with a trailing newline is hidden where it is used
// without one.
//
// A Writer gives the same output as String for the same bytes however
// they are chunked: it holds back the end of the stream only while that
// end could still be the start of a secret (at most the longest secret's
// length minus one byte), and releases it on Flush.
//
// What it cannot do: a value shorter than MinLen would hide ordinary words
// and tells little anyway, so New ignores it (callers refuse such secrets
// before they are used); a transformed value (base64, URL-encoded, reversed)
// is not recognised; and a value that itself begins or ends with '*' may be
// spelt again by the characters next to its mask.
package redact

import (
	"bytes"
	"io"
	"slices"
	"strings"
)

// Mask replaces each secret occurrence.
const Mask = "***"

// MinLen is the shortest value a Masker hides; shorter values are ignored.
const MinLen = 4

// Masker holds the patterns to hide. The zero value and nil hide nothing.
type Masker struct {
	// byFirst indexes patterns by their first byte, longest first.
	byFirst map[byte][][]byte
	maxLen  int
}

// New returns a Masker for the values; values shorter than MinLen are
// ignored (see TooShort).
func New(values ...string) *Masker {
	m := &Masker{byFirst: map[byte][][]byte{}}
	seen := map[string]bool{}
	add := func(p string) {
		if len(p) < MinLen || seen[p] {
			return
		}
		seen[p] = true
		m.byFirst[p[0]] = append(m.byFirst[p[0]], []byte(p))
		m.maxLen = max(m.maxLen, len(p))
	}
	for _, v := range values {
		add(v)
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.Split(v, "\n") {
				add(strings.TrimSuffix(line, "\r"))
			}
		}
	}
	for _, ps := range m.byFirst {
		slices.SortFunc(ps, func(a, b []byte) int { return len(b) - len(a) })
	}
	return m
}

// TooShort reports whether a value is too short to be masked.
func TooShort(v string) bool { return len(v) < MinLen }

// Empty reports whether m hides nothing.
func (m *Masker) Empty() bool { return m == nil || m.maxLen == 0 }

// String returns s with every secret replaced by Mask.
func (m *Masker) String(s string) string {
	if m.Empty() {
		return s
	}
	var out bytes.Buffer
	m.scan(&out, []byte(s), true)
	return out.String()
}

// Contains reports whether s holds one of the secrets.
func (m *Masker) Contains(s string) bool { return m.String(s) != s }

// scan writes the masked form of buf to out and returns how many bytes of
// buf it consumed. Unless final, it stops at the first position where a
// secret could start but buf ends before it can tell.
func (m *Masker) scan(out *bytes.Buffer, buf []byte, final bool) int {
	plain := 0 // start of the bytes kept as they are, not yet written
	i := 0
	for i < len(buf) {
		ps := m.byFirst[buf[i]]
		if len(ps) == 0 {
			i++
			continue
		}
		rest := buf[i:]
		if !final && m.undecided(ps, rest) {
			break
		}
		n := 0
		for _, p := range ps { // longest first
			if bytes.HasPrefix(rest, p) {
				n = len(p)
				break
			}
		}
		if n == 0 {
			i++
			continue
		}
		out.Write(buf[plain:i])
		out.WriteString(Mask)
		i += n
		plain = i
	}
	out.Write(buf[plain:i])
	return i
}

// undecided reports whether rest is a proper prefix of a pattern longer
// than it: more input could still make that pattern match here, and it
// would win over any shorter one that matches now.
func (m *Masker) undecided(ps [][]byte, rest []byte) bool {
	for _, p := range ps {
		if len(p) <= len(rest) {
			return false // sorted longest first: no longer pattern is left
		}
		if bytes.HasPrefix(p, rest) {
			return true
		}
	}
	return false
}

// Writer masks a stream: what it writes to the underlying writer is String
// of everything written to it, once Flush was called.
type Writer struct {
	m   *Masker
	w   io.Writer
	buf []byte
	out bytes.Buffer
}

// NewWriter returns a Writer that masks m's secrets on their way to w.
func (m *Masker) NewWriter(w io.Writer) *Writer { return &Writer{m: m, w: w} }

// Write masks what it can tell and holds back the rest, at most the
// longest secret's length minus one byte. It returns len(p) unless the
// underlying writer failed.
func (w *Writer) Write(p []byte) (int, error) {
	if w.m.Empty() {
		return w.w.Write(p)
	}
	w.buf = append(w.buf, p...)
	if err := w.drain(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out what was held back: the stream has ended, so it can no
// longer be the start of a secret.
func (w *Writer) Flush() error {
	if w.m.Empty() {
		return nil
	}
	return w.drain(true)
}

func (w *Writer) drain(final bool) error {
	w.out.Reset()
	n := w.m.scan(&w.out, w.buf, final)
	w.buf = append(w.buf[:0], w.buf[n:]...)
	if w.out.Len() == 0 {
		return nil
	}
	_, err := w.w.Write(w.out.Bytes())
	return err
}
