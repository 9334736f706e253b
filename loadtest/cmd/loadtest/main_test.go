package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: loadtest noop"},
		{[]string{"foo"}, `unknown benchmark "foo"`},
		{[]string{"noop", "-o", "xml"}, `-o must be json or table, got "xml"`},
		{[]string{"noop", "-runs", "0", "-inflight", "-1"}, "runs must be at least 1, got 0"},
		{[]string{"noop", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", tc.args, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, errOut.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%q: wrote %q to stdout", tc.args, out.String())
		}
	}
}

func TestMissedTargetsExitThree(t *testing.T) {
	var errOut bytes.Buffer
	unmet := []string{"runs_per_sec 299 (goal >= 500)"}
	if code := targetsExit(&errOut, "noop", true, unmet); code != 3 {
		t.Fatalf("enforced missed target: exit %d, want 3", code)
	}
	if !strings.Contains(errOut.String(), "target missed: runs_per_sec 299 (goal >= 500)") {
		t.Fatalf("stderr %q does not name the missed target", errOut.String())
	}
	if code := targetsExit(&errOut, "noop", false, unmet); code != 0 {
		t.Fatalf("-targets=false: exit %d, want 0", code)
	}
	if code := targetsExit(&errOut, "noop", true, nil); code != 0 {
		t.Fatalf("every target met: exit %d, want 0", code)
	}
}
