package junit

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

var update = flag.Bool("update", false, "rewrite testdata/gotest.xml")

type counts struct{ total, passed, failed, skipped int }

func countsOf(r *Report) counts { return counts{r.Total, r.Passed, r.Failed, r.Skipped} }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestParseFiles(t *testing.T) {
	for _, tc := range []struct {
		file     string
		counts   counts
		duration float64
		failures []Case
	}{
		{"testdata/surefire.xml", counts{4, 1, 2, 1}, 0.052, []Case{
			{Suite: "com.example.CalculatorTest", Name: "divides", Message: "expected: <2> but was: <3>", Duration: 0.002},
			// An error without a message attribute: its text's first line.
			{Suite: "com.example.CalculatorTest", Name: "overflows", Message: "java.lang.ArithmeticException: / by zero", Duration: 0.010},
		}},
		{"testdata/pytest.xml", counts{3, 2, 1, 0}, 0.120, []Case{
			{Suite: "tests.test_api", Name: "test_post", Message: "assert 500 == 201", Duration: 0.020},
		}},
		// go-junit-report: message="Failed" is a placeholder, so the text's
		// first line is the message; "1,204.500" has a thousands separator;
		// the root has no time, so the suites' times add up.
		{"testdata/go-junit-report.xml", counts{6, 3, 2, 1}, 0.015 + 1204.5, []Case{
			{Suite: "example.com/shop/cart", Name: "TestTotal", Message: "cart_test.go:42: Total() = 9.99, want 10.99", Duration: 0.010},
			{Suite: "example.com/shop/db", Name: "[build failed]", Message: "Build error"},
		}},
		// Nested suites; a case without classname gets its innermost suite.
		{"testdata/nested.xml", counts{5, 3, 1, 1}, 2.5, []Case{
			{Suite: "checkout > cart", Name: "removes an item", Message: "Error: expect(received).toBe(expected)", Duration: 0.3},
		}},
		{"testdata/latin1.xml", counts{1, 0, 1, 0}, 0.1, []Case{
			{Suite: "café", Name: "crème", Message: "naïve", Duration: 0.1},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := ParseFiles(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := countsOf(r); got != tc.counts {
				t.Errorf("counts %+v, want %+v", got, tc.counts)
			}
			if !near(r.Duration, tc.duration) {
				t.Errorf("duration %v, want %v", r.Duration, tc.duration)
			}
			if !reflect.DeepEqual(r.Failures, tc.failures) {
				t.Errorf("failures\n got %+v\nwant %+v", r.Failures, tc.failures)
			}
		})
	}
}

func TestParseFilesAddsUp(t *testing.T) {
	r, err := ParseFiles("testdata/surefire.xml", "testdata/pytest.xml", "testdata/nested.xml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := countsOf(r), (counts{12, 6, 4, 2}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if !near(r.Duration, 0.052+0.120+2.5) || len(r.Failures) != 4 || r.Failures[3].Name != "removes an item" {
		t.Errorf("duration %v failures %+v", r.Duration, r.Failures)
	}
	_, err = ParseFiles("testdata/surefire.xml", "testdata/missing.xml")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "testdata/missing.xml") {
		t.Errorf("missing file: %v", err)
	}
}

// TestNestedDurationWithoutTimes: without time attributes a suite lasts as
// long as its cases and nested suites.
func TestNestedDurationWithoutTimes(t *testing.T) {
	data, err := os.ReadFile("testdata/nested.xml")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(data), ` time="2.5"`, "", 1)
	r, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	// cart 0.5 (its own time) + payment 0.25+0.25 + renders 1.0
	if !near(r.Duration, 2.0) {
		t.Errorf("duration %v, want 2.0", r.Duration)
	}
}

func TestParseEdgeCases(t *testing.T) {
	long := strings.Repeat("é", MaxMessageBytes)
	for _, tc := range []struct {
		name   string
		doc    string
		counts counts
		msg    string
	}{
		{"empty suite", `<testsuite name="x"/>`, counts{}, ""},
		{"empty suites", `<testsuites></testsuites>`, counts{}, ""},
		{"error and failure count once",
			`<testsuite><testcase name="a"><failure message="one"/><error message="two"/></testcase></testsuite>`,
			counts{1, 0, 1, 0}, "one"},
		{"failure beats skipped",
			`<testsuite><testcase name="a"><skipped/><failure message="f"/></testcase></testsuite>`,
			counts{1, 0, 1, 0}, "f"},
		{"flaky failure passes",
			`<testsuite><testcase name="a"><flakyFailure message="once"/><rerunFailure/></testcase></testsuite>`,
			counts{1, 1, 0, 0}, ""},
		{"message falls back to type",
			`<testsuite><testcase name="a"><failure type="AssertionError"/></testcase></testsuite>`,
			counts{1, 0, 1, 0}, "AssertionError"},
		{"multi-line message attribute",
			`<testsuite><testcase name="a"><failure message="&#10;  first&#10;second"/></testcase></testsuite>`,
			counts{1, 0, 1, 0}, "first"},
		{"long message is cut on a rune boundary",
			`<testsuite><testcase name="a"><failure message="` + long + `"/></testcase></testsuite>`,
			counts{1, 0, 1, 0}, long[:MaxMessageBytes] + "…"},
		{"testcase outside a suite, namespaces, bad times",
			`<?xml version="1.0"?>` + "\ufeff" + `<testsuites xmlns="urn:x" time="NaN"><testcase name="a" time="-1"/><testcase name="b" time="x"/></testsuites>`,
			counts{2, 2, 0, 0}, ""},
		{"BOM", "\ufeff<testsuite><testcase name=\"a\"/></testsuite>", counts{1, 1, 0, 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(strings.NewReader(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if got := countsOf(r); got != tc.counts {
				t.Errorf("counts %+v, want %+v", got, tc.counts)
			}
			msg := ""
			if len(r.Failures) > 0 {
				msg = r.Failures[0].Message
			}
			if msg != tc.msg {
				t.Errorf("message %q, want %q", msg, tc.msg)
			}
			if r.Duration != 0 {
				t.Errorf("duration %v", r.Duration)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for doc, want := range map[string]error{
		"<html><body/></html>":               ErrNotJUnit,
		"":                                   ErrNotJUnit,
		"<?xml version='1.0'?><!-- only -->": ErrNotJUnit,
		"not xml":                            ErrNotJUnit,
		"<testsuite><testcase></testsuite>":  ErrSyntax,
		"<testsuite><testcase name='a'>":     ErrSyntax,
		`<?xml version="1.0" encoding="EBCDIC"?><testsuite/>`: ErrSyntax,
	} {
		if _, err := Parse(strings.NewReader(doc)); !errors.Is(err, want) {
			t.Errorf("%q: got %v, want %v", doc, err, want)
		}
	}
}

func TestEvent(t *testing.T) {
	r := &Report{Total: 3, Passed: 1, Failed: 2, Duration: 1.5, Failures: []Case{
		{Suite: "s", Name: "a", Message: "m", Duration: 0.5}, {Name: "b"},
	}}
	ref := events.ActionRef{Run: "r1", Stage: "Test", Action: "unit", Attempt: 1}
	got := r.Event(ref)
	want := events.TestReported{ActionRef: ref, Total: 3, Passed: 1, Failed: 2, Duration: 1.5,
		Failures: []events.TestCase{{Suite: "s", Name: "a", Message: "m", Duration: 0.5}, {Name: "b"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	many := &Report{Failed: 250}
	for range 250 {
		many.Failures = append(many.Failures, Case{Name: "x"})
	}
	if ev := many.Event(ref); len(ev.Failures) != MaxEventFailures || ev.Failed != 250 {
		t.Errorf("%d failures in the event, Failed %d", len(ev.Failures), ev.Failed)
	}
}

// TestFromGoTestJSONCaptured converts real `go test -json` output of the
// module in testdata/gotest (captured in testdata/gotest.json: a package
// that does not build, one whose test panics, one without tests, one with
// passing, failing, skipped and parallel subtests, and one whose TestMain
// fails) and compares with testdata/gotest.xml; go test -update rewrites
// it.
func TestFromGoTestJSONCaptured(t *testing.T) {
	in, err := os.ReadFile("testdata/gotest.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := FromGoTestJSON(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/gotest.xml", out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/gotest.xml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from testdata/gotest.xml:\n%s", out.String())
	}

	r, err := Parse(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := countsOf(r), (counts{11, 4, 6, 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	var failed []string
	for _, f := range r.Failures {
		failed = append(failed, f.Suite+" "+f.Name+": "+f.Message)
	}
	wantFailed := []string{
		`example.com/gotest/broken [build failed]: broken/broken.go:3:28: cannot use "not an int" (untyped string constant) as int value in return statement`,
		"example.com/gotest/crash TestPanics: panic: assignment to entry in nil map [recovered, repanicked]",
		"example.com/gotest/sample TestAddWrong: sample_test.go:15: checking 2+2",
		"example.com/gotest/sample TestTable: a subtest failed",
		`example.com/gotest/sample TestTable/2+3: sample_test.go:30: got 5, want 6 <&> "quoted"`,
		"example.com/gotest/setup [package failed]: setup: cannot connect to the database",
	}
	if !reflect.DeepEqual(failed, wantFailed) {
		t.Errorf("failures\n got %q\nwant %q", failed, wantFailed)
	}
	if !strings.Contains(out.String(), "cannot use &#34;not an int&#34;") {
		t.Errorf("the build failure does not carry the compiler's message")
	}
}

// TestFromGoTestJSONLive runs `go test -json` on testdata/gotest now, so a
// change in test2json's output shows up.
func TestFromGoTestJSONLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command(goBin, "test", "-json", "./...")
	cmd.Dir = "testdata/gotest"
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	in, _ := cmd.Output() // fails on purpose
	var out bytes.Buffer
	if err := FromGoTestJSON(bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	r, err := Parse(&out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := countsOf(r), (counts{11, 4, 6, 1}); got != want {
		t.Errorf("counts %+v, want %+v\n%s", got, want, in)
	}
}

func TestFromGoTestJSONEdgeCases(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		counts counts
		first  string // first failure's name and message
	}{
		{"empty input", "", counts{}, ""},
		{"only stray output", "go: go.mod file not found in current directory\n", counts{1, 0, 1, 0},
			"go test: go: go.mod file not found in current directory"},
		{"test never finished",
			`{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 1s\n"}
{"Action":"fail","Package":"p","Elapsed":1}
`, counts{1, 0, 1, 0}, "TestHang: did not finish"},
		{"pre-1.24 build failure", "# p\n./x.go:3:1: syntax error\n" +
			`{"Action":"output","Package":"p","Output":"FAIL\tp [build failed]\n"}
{"Action":"fail","Package":"p","Elapsed":0}
`, counts{1, 0, 1, 0}, "[package failed]: FAIL\tp [build failed]"},
		{"garbage between events",
			`{"Action":"run","Package":"p","Test":"T"}
{not json
{"Action":"pass","Package":"p","Test":"T","Elapsed":0.5}
{"Action":"pass","Package":"p","Elapsed":0.6}
`, counts{1, 1, 0, 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := FromGoTestJSON(strings.NewReader(tc.in), &out); err != nil {
				t.Fatal(err)
			}
			r, err := Parse(&out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if got := countsOf(r); got != tc.counts {
				t.Errorf("counts %+v, want %+v", got, tc.counts)
			}
			first := ""
			if len(r.Failures) > 0 {
				first = r.Failures[0].Name + ": " + r.Failures[0].Message
			}
			if first != tc.first {
				t.Errorf("first failure %q, want %q", first, tc.first)
			}
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFromGoTestJSONWriteError(t *testing.T) {
	if err := FromGoTestJSON(strings.NewReader(""), failingWriter{}); err == nil {
		t.Fatal("no error")
	}
}
