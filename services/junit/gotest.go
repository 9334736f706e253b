package junit

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// goEvent is one line of `go test -json` (cmd/test2json).
type goEvent struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
	// ImportPath names the package of build-output and build-fail events
	// (Go 1.24+), e.g. "example.com/p [example.com/p.test]".
	ImportPath string
	// FailedBuild is set on a package's fail event when it did not build.
	FailedBuild string
}

type goTest struct {
	name    string
	action  string // pass, fail, skip; empty while it runs
	elapsed float64
	output  []string
}

type goPackage struct {
	name        string
	start       time.Time
	action      string
	elapsed     float64
	failedBuild string
	output      strings.Builder
	tests       map[string]*goTest
	order       []string
}

// Names of the synthetic test cases for a package that fails without a
// failing test.
const (
	// BuildFailedCase: the package or its tests did not compile.
	BuildFailedCase = "[build failed]"
	// PackageFailedCase: the test binary failed outside any test (TestMain,
	// init, a crash between tests).
	PackageFailedCase = "[package failed]"
)

// FromGoTestJSON converts `go test -json` output into a JUnit XML document:
// one <testsuite> per package that has tests or failed, sorted by package,
// one <testcase> per test and subtest in the order they started, with
// classname the package. A failed test's message is its first line of
// output; a skipped test's message is its skip reason. A test that started
// but never finished (the binary crashed or timed out) fails with "did not
// finish". A package that fails without a failing test becomes one failed
// case, BuildFailedCase (carrying the compiler's output) or
// PackageFailedCase (carrying the package's output), so the report fails
// too. Lines that are not test2json events (a build error printed to the
// same stream) count as output of the run; if no package reported at all,
// the document holds one failed case named "go test" with them.
func FromGoTestJSON(r io.Reader, w io.Writer) error {
	pkgs := map[string]*goPackage{}
	buildOutput := map[string]*strings.Builder{}
	var stray strings.Builder
	pkg := func(name string) *goPackage {
		p, ok := pkgs[name]
		if !ok {
			p = &goPackage{name: name, tests: map[string]*goTest{}}
			pkgs[name] = p
		}
		return p
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev goEvent
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			stray.Write(line)
			stray.WriteByte('\n')
			continue
		}
		if ev.Action == "build-output" || ev.Action == "build-fail" {
			b := buildOutput[ev.ImportPath]
			if b == nil {
				b = &strings.Builder{}
				buildOutput[ev.ImportPath] = b
			}
			b.WriteString(ev.Output)
			continue
		}
		if ev.Package == "" {
			stray.WriteString(ev.Output)
			continue
		}
		p := pkg(ev.Package)
		if p.start.IsZero() {
			p.start = ev.Time
		}
		if ev.Test == "" {
			switch ev.Action {
			case "output":
				p.output.WriteString(ev.Output)
			case "pass", "fail", "skip":
				p.action, p.elapsed, p.failedBuild = ev.Action, ev.Elapsed, ev.FailedBuild
			}
			continue
		}
		t, ok := p.tests[ev.Test]
		if !ok {
			t = &goTest{name: ev.Test}
			p.tests[ev.Test] = t
			p.order = append(p.order, ev.Test)
		}
		switch ev.Action {
		case "output":
			t.output = append(t.output, ev.Output)
		case "pass", "fail", "skip":
			t.action, t.elapsed = ev.Action, ev.Elapsed
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read go test -json: %w", err)
	}

	doc := xmlSuites{}
	for _, name := range slices.Sorted(maps.Keys(pkgs)) {
		p := pkgs[name]
		s := xmlSuite{Name: name, Time: seconds(p.elapsed), secs: p.elapsed}
		if !p.start.IsZero() {
			s.Timestamp = p.start.UTC().Format("2006-01-02T15:04:05")
		}
		failedTest := false
		for _, tn := range p.order {
			t := p.tests[tn]
			c := xmlCase{Name: tn, Classname: name, Time: seconds(t.elapsed)}
			switch t.action {
			case "pass":
			case "skip":
				c.Skipped = &xmlResult{Message: messageOf(t.output, "skipped")}
				s.Skipped++
			case "fail":
				def := "Failed"
				if subtestFailed(p, tn) {
					def = "a subtest failed"
				}
				c.Failure = &xmlResult{Message: messageOf(t.output, def), Text: textOf(t.output)}
				s.Failures++
				failedTest = true
			default:
				if p.action == "pass" {
					continue // a stray event; the package passed
				}
				c.Failure = &xmlResult{Message: "did not finish", Text: textOf(t.output)}
				s.Failures++
				failedTest = true
			}
			s.Cases = append(s.Cases, c)
		}
		if p.action == "fail" && !failedTest {
			c := xmlCase{Name: PackageFailedCase, Classname: name, Time: seconds(p.elapsed)}
			text := p.output.String()
			msg := messageOf([]string{text + stray.String()}, "Failed")
			if b := buildOutput[p.failedBuild]; p.failedBuild != "" || b != nil {
				c.Name = BuildFailedCase
				if b != nil {
					// The compiler's first error, after its "# package" line.
					msg = messageOf([]string{dropComments(b.String())}, msg)
					text = b.String() + text
				}
			}
			text += stray.String()
			c.Failure = &xmlResult{Message: msg, Text: text}
			s.Cases = append(s.Cases, c)
			s.Failures++
		}
		if len(s.Cases) == 0 {
			continue // no test files, or no tests matched
		}
		s.Tests = len(s.Cases)
		doc.add(s)
	}
	if len(doc.Suites) == 0 && strings.TrimSpace(stray.String()) != "" {
		text := stray.String()
		doc.add(xmlSuite{Name: "go test", Tests: 1, Failures: 1, Cases: []xmlCase{{
			Name: "go test", Failure: &xmlResult{Message: messageOf([]string{text}, "go test reported no package"), Text: text}}}})
	}
	doc.Time = seconds(doc.time)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write JUnit XML: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// framework reports whether a line of test output is the testing package's
// own (=== RUN, --- FAIL: and the like) rather than the test's.
func framework(line string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- FAIL", "--- SKIP", "--- BENCH"} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// messageOf is the first line of output that is the test's own, or def.
func messageOf(output []string, def string) string {
	for _, chunk := range output {
		for line := range strings.SplitSeq(chunk, "\n") {
			trimmed := strings.TrimSpace(line)
			if trimmed != "" && !framework(trimmed) {
				return trimmed
			}
		}
	}
	return def
}

// subtestFailed reports whether a subtest of test failed.
func subtestFailed(p *goPackage, test string) bool {
	for name, t := range p.tests {
		if strings.HasPrefix(name, test+"/") && t.action == "fail" {
			return true
		}
	}
	return false
}

// dropComments removes the "# package" lines of compiler output.
func dropComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(line, "# ") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// textOf is the output without the === lines.
func textOf(output []string) string {
	var b strings.Builder
	for _, chunk := range output {
		if !strings.HasPrefix(chunk, "=== ") {
			b.WriteString(chunk)
		}
	}
	return b.String()
}

type xmlSuites struct {
	XMLName  xml.Name   `xml:"testsuites"`
	Tests    int        `xml:"tests,attr"`
	Failures int        `xml:"failures,attr"`
	Errors   int        `xml:"errors,attr"`
	Skipped  int        `xml:"skipped,attr"`
	Time     string     `xml:"time,attr"`
	Suites   []xmlSuite `xml:"testsuite"`
	time     float64
}

func (d *xmlSuites) add(s xmlSuite) {
	d.Tests += s.Tests
	d.Failures += s.Failures
	d.Skipped += s.Skipped
	d.time += s.secs
	d.Suites = append(d.Suites, s)
}

type xmlSuite struct {
	Name      string    `xml:"name,attr"`
	Tests     int       `xml:"tests,attr"`
	Failures  int       `xml:"failures,attr"`
	Errors    int       `xml:"errors,attr"`
	Skipped   int       `xml:"skipped,attr"`
	Time      string    `xml:"time,attr,omitempty"`
	Timestamp string    `xml:"timestamp,attr,omitempty"`
	Cases     []xmlCase `xml:"testcase"`
	secs      float64
}

type xmlCase struct {
	Name      string     `xml:"name,attr"`
	Classname string     `xml:"classname,attr,omitempty"`
	Time      string     `xml:"time,attr,omitempty"`
	Failure   *xmlResult `xml:"failure,omitempty"`
	Skipped   *xmlResult `xml:"skipped,omitempty"`
}

type xmlResult struct {
	Message string `xml:"message,attr,omitempty"`
	Text    string `xml:",chardata"`
}
