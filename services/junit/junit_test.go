package junit_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/services/junit"
)

func TestParseFiles(t *testing.T) {
	cases := []struct {
		file                           string
		total, passed, failed, skipped int
		firstFailure, firstMessage     string
	}{
		{"testdata/surefire.xml", 4, 1, 2, 1, "divides", "expected: <2> but was: <3>"},
		{"testdata/pytest.xml", 3, 2, 1, 0, "test_post", "assert 500 == 201"},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			r, err := junit.ParseFiles(c.file)
			if err != nil {
				t.Fatal(err)
			}
			if r.Total != c.total || r.Passed != c.passed || r.Failed != c.failed || r.Skipped != c.skipped {
				t.Fatalf("got %d/%d/%d/%d, want %d/%d/%d/%d", r.Total, r.Passed, r.Failed, r.Skipped, c.total, c.passed, c.failed, c.skipped)
			}
			if r.Failures[0].Name != c.firstFailure || r.Failures[0].Message != c.firstMessage {
				t.Fatalf("first failure %+v", r.Failures[0])
			}
			if r.Duration <= 0 {
				t.Fatal("no duration")
			}
		})
	}
	both, err := junit.ParseFiles("testdata/surefire.xml", "testdata/pytest.xml")
	if err != nil || both.Total != 7 || both.Failed != 3 {
		t.Fatalf("two files: %+v %v", both, err)
	}
	// An error element without a message uses its text's first line.
	if m := both.Failures[1].Message; m != "java.lang.ArithmeticException: / by zero" {
		t.Fatalf("error message %q", m)
	}
}

func TestParseRefusesWhatIsNotJUnit(t *testing.T) {
	for _, doc := range []string{"<html><body/></html>", "not xml", ""} {
		var r junit.Report
		if err := r.Parse("x.xml", strings.NewReader(doc)); !errors.Is(err, junit.ErrNotJUnit) {
			t.Fatalf("%q: %v", doc, err)
		}
	}
}

// Real `go test -json` output of a package with a pass, a failure, a skip
// and a subtest converts into a report with the same counts.
func TestFromGoTestJSON(t *testing.T) {
	cmd := exec.Command("go", "test", "-json", "./...")
	cmd.Dir = "testdata/gopkg"
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	out, _ := cmd.Output() // the package fails on purpose
	var x bytes.Buffer
	if err := junit.FromGoTestJSON(bytes.NewReader(out), &x); err != nil {
		t.Fatal(err)
	}
	var r junit.Report
	if err := r.Parse("go.xml", &x); err != nil {
		t.Fatalf("%v\n%s", err, x.String())
	}
	if r.Total != 5 || r.Failed != 1 || r.Skipped != 1 || r.Passed != 3 {
		t.Fatalf("report %+v from\n%s", r, out)
	}
	if r.Failures[0].Name != "TestFails" {
		t.Fatalf("failure %+v", r.Failures[0])
	}
}

// A package that does not compile fails the report.
func TestFromGoTestJSONBuildFailure(t *testing.T) {
	in := `# example.com/broken
./x.go:3:1: syntax error: non-declaration statement outside function body
{"Time":"2026-11-26T10:00:00Z","Action":"start","Package":"example.com/broken"}
{"Time":"2026-11-26T10:00:00Z","Action":"output","Package":"example.com/broken","Output":"FAIL\texample.com/broken [build failed]\n"}
{"Time":"2026-11-26T10:00:00Z","Action":"fail","Package":"example.com/broken","Elapsed":0}
`
	var x bytes.Buffer
	if err := junit.FromGoTestJSON(strings.NewReader(in), &x); err != nil {
		t.Fatal(err)
	}
	doc := x.String()
	var r junit.Report
	if err := r.Parse("x", &x); err != nil {
		t.Fatal(err)
	}
	if r.Failed != 1 || !strings.Contains(doc, "syntax error") {
		t.Fatalf("report %+v\n%s", r, doc)
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/surefire.xml", "testdata/pytest.xml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("<testsuite><testcase name='a'><failure/></testcase></testsuite>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r junit.Report
		if err := r.Parse("f", bytes.NewReader(data)); err != nil {
			return
		}
		if r.Passed+r.Failed+r.Skipped != r.Total || len(r.Failures) > r.Failed || r.Total < 0 {
			t.Fatalf("inconsistent report %+v", r)
		}
	})
}
