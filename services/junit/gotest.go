package junit

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// goEvent is one line of `go test -json` (test2json).
type goEvent struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type goCase struct {
	name    string
	action  string
	elapsed float64
	output  strings.Builder
}

type goPkg struct {
	name    string
	cases   map[string]*goCase
	order   []string
	action  string
	elapsed float64
	output  strings.Builder
}

// FromGoTestJSON converts `go test -json` output into a JUnit XML document
// with one <testsuite> per package. A package that fails without a failing
// test (it did not build, or a test binary crashed) becomes one failed case
// carrying the package's output, so the report fails too. Lines that are not
// JSON (a build error printed before the JSON) are kept as package output.
func FromGoTestJSON(r io.Reader, w io.Writer) error {
	pkgs := map[string]*goPkg{}
	var order []string
	pkg := func(name string) *goPkg {
		p, ok := pkgs[name]
		if !ok {
			p = &goPkg{name: name, cases: map[string]*goCase{}}
			pkgs[name] = p
			order = append(order, name)
		}
		return p
	}
	var stray strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev goEvent
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			stray.Write(line)
			stray.WriteByte('\n')
			continue
		}
		if ev.Package == "" {
			if ev.Output != "" {
				stray.WriteString(ev.Output)
			}
			continue
		}
		p := pkg(ev.Package)
		if ev.Test == "" {
			switch ev.Action {
			case "output", "build-output":
				p.output.WriteString(ev.Output)
			case "pass", "fail", "skip":
				p.action, p.elapsed = ev.Action, ev.Elapsed
			}
			continue
		}
		c, ok := p.cases[ev.Test]
		if !ok {
			c = &goCase{name: ev.Test}
			p.cases[ev.Test] = c
			p.order = append(p.order, ev.Test)
		}
		switch ev.Action {
		case "output":
			c.output.WriteString(ev.Output)
		case "pass", "fail", "skip":
			c.action, c.elapsed = ev.Action, ev.Elapsed
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read go test -json: %w", err)
	}
	doc := xmlSuites{}
	for _, name := range order {
		p := pkgs[name]
		s := xmlSuite{Name: name, Time: fmt.Sprintf("%.3f", p.elapsed)}
		failedCase := false
		for _, tn := range p.order {
			c := p.cases[tn]
			tc := xmlCase{Name: tn, Classname: name, Time: fmt.Sprintf("%.3f", c.elapsed)}
			switch c.action {
			case "fail":
				failedCase = true
				tc.Failure = &xmlProblem{Message: "Failed", Text: c.output.String()}
				s.Failures++
			case "skip":
				tc.Skipped = &xmlProblem{Message: firstLine(c.output.String())}
				s.Skipped++
			case "pass":
			default: // started but never ended: the binary died under it
				failedCase = true
				tc.Failure = &xmlProblem{Message: "did not finish", Text: c.output.String()}
				s.Failures++
			}
			s.Cases = append(s.Cases, tc)
		}
		if p.action == "fail" && !failedCase {
			s.Cases = append(s.Cases, xmlCase{Name: "package " + name, Classname: name,
				Failure: &xmlProblem{Message: "package failed (build error or crash)", Text: p.output.String() + stray.String()}})
			s.Failures++
		}
		s.Tests = len(s.Cases)
		doc.Suites = append(doc.Suites, s)
	}
	if len(doc.Suites) == 0 && strings.TrimSpace(stray.String()) != "" {
		doc.Suites = append(doc.Suites, xmlSuite{Name: "go test", Tests: 1, Failures: 1, Cases: []xmlCase{{
			Name: "go test", Failure: &xmlProblem{Message: "go test printed no results", Text: stray.String()}}}})
	}
	slices.SortStableFunc(doc.Suites, func(a, b xmlSuite) int { return strings.Compare(a.Name, b.Name) })
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

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "=== ") {
			return l
		}
	}
	return ""
}

type xmlSuites struct {
	XMLName xml.Name   `xml:"testsuites"`
	Suites  []xmlSuite `xml:"testsuite"`
}

type xmlSuite struct {
	Name     string    `xml:"name,attr"`
	Tests    int       `xml:"tests,attr"`
	Failures int       `xml:"failures,attr"`
	Skipped  int       `xml:"skipped,attr"`
	Time     string    `xml:"time,attr,omitempty"`
	Cases    []xmlCase `xml:"testcase"`
}

type xmlCase struct {
	Name      string      `xml:"name,attr"`
	Classname string      `xml:"classname,attr,omitempty"`
	Time      string      `xml:"time,attr,omitempty"`
	Failure   *xmlProblem `xml:"failure,omitempty"`
	Skipped   *xmlProblem `xml:"skipped,omitempty"`
}

type xmlProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Text    string `xml:",chardata"`
}
