package events

import "unicode/utf8"

// TruncateReason cuts a reason to at most MaxReason characters, ending a
// cut one with "…", so that text built from errors or joined from several
// failures always fits the schema (a reason that did not fit would make the
// event that reports a failure itself unpublishable).
func TruncateReason(s string) string { return Truncate(s, MaxReason) }

// Truncate cuts s to at most n characters (runes, as JSON Schema counts
// them), the last being "…" when it cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) && count < n-1 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return s[:i] + "…"
}
