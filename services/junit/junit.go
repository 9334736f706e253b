// Package junit reads JUnit XML test reports into totals and the list of
// failed tests, the content of a dev.gantry.test.reported event, and turns
// `go test -json` output into JUnit XML.
//
// Parse reads the dialects test tools actually write: a <testsuites> root
// or a single <testsuite> root, suites nested in suites, <failure>, <error>
// and <skipped> children of <testcase>, and time attributes (Maven
// Surefire, pytest, go-junit-report, Gradle, Jest and others). Counts come
// from the <testcase> elements, not from the tests/failures attributes,
// which tools fill in inconsistently. Surefire's flakyFailure and
// rerunFailure elements describe failed attempts of a test that passed in
// the end, so they do not fail it.
package junit

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/events"
)

// Sentinel errors, wrapped with detail; test with errors.Is.
var (
	// ErrSyntax: the input is not well-formed XML.
	ErrSyntax = errors.New("invalid XML")
	// ErrNotJUnit: the XML's root is not <testsuites> or <testsuite>.
	ErrNotJUnit = errors.New("not a JUnit XML report")
)

// Limits.
const (
	// MaxMessageBytes bounds a failure message; longer ones are cut.
	MaxMessageBytes = 1024
	// MaxEventFailures bounds the failures Report.Event carries, so the
	// event stays small; the counts are always complete.
	MaxEventFailures = 100
)

// Report is the sum of one or more JUnit files.
type Report struct {
	Total   int
	Passed  int
	Failed  int // failures plus errors
	Skipped int
	// Duration is in seconds: the time attribute of each top-level suite
	// (or of the <testsuites> root), else the sum of its tests' times.
	Duration float64
	// Failures are the failed tests, in file order.
	Failures []Case
}

// Case is one failed test. It has the fields of events.TestCase, in the
// same order, so events.TestCase(c) converts it.
type Case struct {
	// Suite is the test's classname, or the enclosing suite's name when it
	// has none.
	Suite string
	Name  string
	// Message is the failure's message attribute, or the first line of its
	// text when the attribute is empty or go-junit-report's placeholder
	// "Failed".
	Message  string
	Duration float64
}

// Add adds another report's counts and failures to r.
func (r *Report) Add(o *Report) {
	r.Total += o.Total
	r.Passed += o.Passed
	r.Failed += o.Failed
	r.Skipped += o.Skipped
	r.Duration += o.Duration
	r.Failures = append(r.Failures, o.Failures...)
}

// Event is the report as a dev.gantry.test.reported payload for the given
// action attempt, with at most MaxEventFailures failures.
func (r *Report) Event(ref events.ActionRef) events.TestReported {
	ev := events.TestReported{
		ActionRef: ref,
		Total:     r.Total,
		Passed:    r.Passed,
		Failed:    r.Failed,
		Skipped:   r.Skipped,
		Duration:  r.Duration,
	}
	for i, c := range r.Failures {
		if i == MaxEventFailures {
			break
		}
		tc := events.TestCase(c)
		// Names come from the test files: cut them to the schema's bound
		// rather than make the report unpublishable.
		tc.Suite, tc.Name = events.Truncate(tc.Suite, events.MaxTestName), events.Truncate(tc.Name, events.MaxTestName)
		ev.Failures = append(ev.Failures, tc)
	}
	return ev
}

// ParseFiles parses and adds up JUnit files. An error names the file.
func ParseFiles(paths ...string) (*Report, error) {
	total := &Report{}
	for _, p := range paths {
		r, err := parseFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		total.Add(r)
	}
	return total, nil
}

func parseFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// suite is an open <testsuite> while parsing.
type suite struct {
	name     string
	time     float64
	hasTime  bool
	sum      float64 // tests' times and nested suites' durations
	topLevel bool
}

func (s *suite) duration() float64 {
	if s.hasTime {
		return s.time
	}
	return s.sum
}

// testcase is an open <testcase> while parsing.
type testcase struct {
	classname, name string
	time            float64
	failed, skipped bool
	message         string
}

// Parse reads one JUnit XML document. It returns ErrSyntax for XML that is
// not well formed and ErrNotJUnit for another kind of document.
func Parse(r io.Reader) (*Report, error) {
	d := xml.NewDecoder(skipBOM(r))
	d.CharsetReader = charsetReader
	rep := &Report{}
	var (
		root     string
		rootTime float64
		hasRoot  bool // a <testsuites> root with a time attribute
		suites   []*suite
		tc       *testcase
		topSum   float64
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if root == "" {
				root = name
				switch name {
				case "testsuites":
					rootTime, hasRoot = timeAttr(t)
					continue
				case "testsuite":
				default:
					return nil, fmt.Errorf("%w: root element is <%s>", ErrNotJUnit, name)
				}
			}
			switch {
			case name == "testsuite" && tc == nil:
				s := &suite{name: attr(t, "name"), topLevel: len(suites) == 0}
				s.time, s.hasTime = timeAttr(t)
				suites = append(suites, s)
			case name == "testcase" && tc == nil:
				tc = &testcase{classname: attr(t, "classname"), name: attr(t, "name")}
				tc.time, _ = timeAttr(t)
			case tc != nil && (name == "failure" || name == "error"):
				var f struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
					Text    string `xml:",chardata"`
				}
				if err := d.DecodeElement(&f, &t); err != nil {
					return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
				}
				if !tc.failed {
					tc.failed = true
					tc.message = failureMessage(f.Message, f.Type, f.Text)
				}
			case tc != nil && name == "skipped":
				tc.skipped = true
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
				}
			default:
				// properties, system-out, flakyFailure, unknown elements:
				// nothing to count inside.
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
				}
			}
		case xml.EndElement:
			switch {
			case t.Name.Local == "testcase" && tc != nil:
				rep.Total++
				switch {
				case tc.failed:
					rep.Failed++
					s := tc.classname
					if s == "" && len(suites) > 0 {
						s = suites[len(suites)-1].name
					}
					rep.Failures = append(rep.Failures, Case{Suite: s, Name: tc.name, Message: tc.message, Duration: tc.time})
				case tc.skipped:
					rep.Skipped++
				default:
					rep.Passed++
				}
				if len(suites) > 0 {
					suites[len(suites)-1].sum += tc.time
				} else {
					topSum += tc.time
				}
				tc = nil
			case t.Name.Local == "testsuite" && tc == nil && len(suites) > 0:
				s := suites[len(suites)-1]
				suites = suites[:len(suites)-1]
				if len(suites) > 0 {
					suites[len(suites)-1].sum += s.duration()
				} else {
					topSum += s.duration()
				}
			}
		}
	}
	if root == "" {
		return nil, fmt.Errorf("%w: no root element", ErrNotJUnit)
	}
	rep.Duration = topSum
	if hasRoot {
		rep.Duration = rootTime
	}
	return rep, nil
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// timeAttr reads a time attribute in seconds; "1,234.5" (Surefire's
// thousands separator) is 1234.5. A missing, malformed, negative or
// non-finite time is 0, false.
func timeAttr(t xml.StartElement) (float64, bool) {
	v := strings.TrimSpace(strings.ReplaceAll(attr(t, "time"), ",", ""))
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// failureMessage picks the most useful one-line message of a failure.
func failureMessage(message, typ, text string) string {
	msg := strings.TrimSpace(message)
	if msg == "" || msg == "Failed" {
		if line := firstLine(text); line != "" {
			msg = line
		}
	}
	if msg == "" {
		msg = strings.TrimSpace(typ)
	}
	msg = firstLine(msg)
	if len(msg) > MaxMessageBytes {
		cut := MaxMessageBytes
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func firstLine(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	return br
}

// charsetReader lets the decoder read the encodings test tools declare
// besides UTF-8: US-ASCII and ISO-8859-1.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		return &latin1Reader{r: bufio.NewReader(input)}, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

// latin1Reader decodes ISO-8859-1 to UTF-8.
type latin1Reader struct {
	r       *bufio.Reader
	pending []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(l.pending) > 0 {
			c := copy(p[n:], l.pending)
			n += c
			l.pending = l.pending[c:]
			continue
		}
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b < utf8.RuneSelf {
			p[n] = b
			n++
			continue
		}
		l.pending = utf8.AppendRune(nil, rune(b))
	}
	return n, nil
}
