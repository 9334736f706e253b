package runner

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/services/redact"
)

// TestSecretsMasked: a secret's value reaches the commands' environment
// but not the sink, however the commands print it: whole, cut across
// writes, inside a line longer than MaxLineBytes, or one line of a
// multi-line value. The runner's own lines and the failure reason are
// masked too, and an exported variable holding the value is left out.
func TestSecretsMasked(t *testing.T) {
	const token = "tok-3f9a1c77e2"
	const key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n-----END KEY-----"
	src := `version: 0.2
env:
  variables:
    TOKEN: overridden-by-the-secret
  exported-variables: [LEAK, SAFE]
phases:
  build:
    commands:
      - echo "token is $TOKEN"
      - "printf 'split: tok-3f9'; sleep 0.05; printf 'a1c77e2 end\\n'"
      - head -c 65530 /dev/zero | tr '\0' x; printf '%s\n' "$TOKEN"
      - printf '%s\n' "$KEY" | sed -n 2p
      - export LEAK="prefix-$TOKEN"
      - export SAFE=fine
      - test "$TOKEN" = "tok-3f9a1c77e2-not"
`
	res, s, _ := runSpec(t, context.Background(), src, Options{Secrets: map[string]string{"TOKEN": token, "KEY": key}})
	if res.Status != Failed {
		t.Fatalf("status %s: the last command must fail", res.Status)
	}
	var all strings.Builder
	for _, l := range s.lines {
		all.WriteString(l.text + "\n")
	}
	log := all.String()
	for _, leak := range []string{token, "MIIEvQIBADANBgkqhkiG9w0B", "overridden-by-the-secret"} {
		if strings.Contains(log, leak) {
			t.Errorf("%q reached the log:\n%.2000s", leak, log)
		}
	}
	for _, want := range []string{"token is ***\n", "split: *** end\n", "x***\n", "\n***\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if !strings.Contains(log, "Running command: export LEAK=[value hidden]") {
		t.Errorf("an assignment's value was announced:\n%.3000s", strings.ReplaceAll(log, strings.Repeat("x", 100), ""))
	}
	if strings.Contains(res.Reason, token) || !strings.Contains(res.Reason, "***") {
		t.Errorf("reason %q", res.Reason)
	}
	if _, ok := res.ExportedVariables["LEAK"]; ok || res.ExportedVariables["SAFE"] != "fine" {
		t.Errorf("exported %v: LEAK holds the secret and must be left out", res.ExportedVariables)
	}
}

func TestShortSecretRefused(t *testing.T) {
	err := (&Options{Workspace: t.TempDir(), Secrets: map[string]string{"PIN": "123"}}).Validate()
	if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "PIN") || strings.Contains(err.Error(), "123") {
		t.Fatalf("got %v", err)
	}
}

func TestDescribe(t *testing.T) {
	for in, want := range map[string]string{
		"export A=secret":            "export A=[value hidden]",
		"  B=x make":                 "B=[value hidden]",
		"declare -x C=1":             "declare -x C=[value hidden]",
		"echo A=b":                   "echo A=b",
		"make test":                  "make test",
		"export PATH=$PATH:/x\necho": "export PATH=[value hidden]",
	} {
		if got := describe(in); got != want {
			t.Errorf("describe(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzMaskedLines: output masked as a stream and then cut into lines gives
// the same lines however it arrives, and no line holds the secret, even
// where a line is cut at its length limit.
func FuzzMaskedLines(f *testing.F) {
	f.Add("s3cret-value", "a s3cret-value b\ns3cret-\nvalue s3cr", uint8(3), uint8(5))
	f.Add("abcd", "abcdabcdabcd", uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, secret, in string, chunk, limit uint8) {
		lines := func(size int) []string {
			var out []string
			lw := &lineWriter{emit: func(l string) { out = append(out, l) }, max: int(limit)%9 + 4}
			mw := redact.New(secret).NewWriter(lw)
			for s := in; s != ""; {
				n := min(size, len(s))
				mw.Write([]byte(s[:n]))
				s = s[n:]
			}
			mw.Flush()
			lw.flush()
			return out
		}
		whole, cut := lines(len(in)+1), lines(int(chunk)%7+1)
		if strings.Join(whole, "\n") != strings.Join(cut, "\n") || len(whole) != len(cut) {
			t.Fatalf("lines differ with chunking:\n%q\n%q", whole, cut)
		}
		if len(secret) >= redact.MinLen && !strings.Contains(secret, "*") {
			for _, l := range cut {
				if strings.Contains(l, secret) {
					t.Fatalf("line %q holds the secret", l)
				}
			}
		}
	})
}
