package redact

import (
	"bytes"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"none", nil, "hello", "hello"},
		{"one", []string{"s3cret"}, "token=s3cret;", "token=***;"},
		{"every occurrence", []string{"abcd"}, "abcdabcd xabcd", "****** x***"},
		{"longest wins", []string{"abcd", "abcdefgh"}, "abcdefgh abcdefg", "*** ***efg"},
		{"overlap keeps scanning after a match", []string{"abab"}, "ababab", "***ab"},
		{"short values are not masked", []string{"abc", ""}, "abc", "abc"},
		{"multi-line value whole", []string{"line-one\nline-two\n"}, "x line-one\nline-two\n y", "x *** y"},
		{"multi-line value line by line", []string{"line-one\r\nline-two"}, "  line-two\n  line-one\n", "  ***\n  ***\n"},
		{"trailing newline of a file secret", []string{"tok3n\n"}, "url=https://u:tok3n@h", "url=https://u:***@h"},
		{"unicode", []string{"pässwörd"}, "[pässwörd]", "[***]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(tc.secrets...)
			if got := m.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := chunked(t, m, tc.in, 1); got != tc.want {
				t.Errorf("byte by byte: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNilMasker(t *testing.T) {
	var m *Masker
	if !m.Empty() || m.String("abcd") != "abcd" || m.Contains("abcd") {
		t.Fatal("a nil Masker must hide nothing")
	}
	var b bytes.Buffer
	w := m.NewWriter(&b)
	w.Write([]byte("abcd"))
	w.Flush()
	if b.String() != "abcd" {
		t.Fatalf("got %q", b.String())
	}
}

// TestWriterSplitSecret: a secret cut by a write boundary is still masked,
// and nothing of it leaves before the Writer can tell.
func TestWriterSplitSecret(t *testing.T) {
	m := New("hunter22")
	var b bytes.Buffer
	w := m.NewWriter(&b)
	w.Write([]byte("password: hunt"))
	if b.String() != "password: " {
		t.Fatalf("after the first half: %q (the start of the secret must be held back)", b.String())
	}
	w.Write([]byte("er22\nnext hun"))
	if b.String() != "password: ***\nnext " {
		t.Fatalf("after the second half: %q", b.String())
	}
	w.Write([]byte("gry\n"))
	w.Flush()
	if b.String() != "password: ***\nnext hungry\n" {
		t.Fatalf("at the end: %q", b.String())
	}
}

// TestWriterHoldsOnlyPossiblePrefixes: output that cannot start a secret
// is not delayed, so live logs stay live.
func TestWriterHoldsOnlyPossiblePrefixes(t *testing.T) {
	m := New("0123456789abcdef")
	var b bytes.Buffer
	w := m.NewWriter(&b)
	w.Write([]byte("building...\n"))
	if b.String() != "building...\n" {
		t.Fatalf("plain output was held back: %q", b.String())
	}
}

func chunked(t *testing.T, m *Masker, in string, size int) string {
	t.Helper()
	var b bytes.Buffer
	w := m.NewWriter(&b)
	for s := in; s != ""; {
		n := min(size, len(s))
		if k, err := w.Write([]byte(s[:n])); k != n || err != nil {
			t.Fatalf("Write = %d, %v", k, err)
		}
		s = s[n:]
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// FuzzWriter: however the stream is chunked, the Writer's output is the
// one-shot String, and no secret (of at least MinLen bytes, without '*',
// which the mask itself could spell) survives in it.
func FuzzWriter(f *testing.F) {
	f.Add("s3cret", "other-secret", "a s3cret and other-secret and s3c", uint8(3), uint8(5))
	f.Add("abab", "ababab", "abababababab", uint8(1), uint8(2))
	f.Add("multi\nline", "x", "multi\nline multi line", uint8(7), uint8(1))
	f.Fuzz(func(t *testing.T, s1, s2, in string, c1, c2 uint8) {
		m := New(s1, s2)
		want := m.String(in)
		var b bytes.Buffer
		w := m.NewWriter(&b)
		sizes := []int{int(c1)%17 + 1, int(c2)%17 + 1}
		for i, s := 0, in; s != ""; i++ {
			n := min(sizes[i%2], len(s))
			w.Write([]byte(s[:n]))
			s = s[n:]
		}
		w.Flush()
		if b.String() != want {
			t.Fatalf("chunked %q != String %q", b.String(), want)
		}
		for _, s := range []string{s1, s2} {
			if len(s) >= MinLen && !strings.Contains(s, "*") && strings.Contains(want, s) {
				t.Fatalf("secret %q survives in %q", s, want)
			}
		}
	})
}
