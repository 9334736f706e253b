// Package junit reads JUnit XML test reports (the format Maven Surefire,
// pytest, go-junit-report and most test runners write) into totals and the
// list of failures that a test action reports, and converts `go test -json`
// output into JUnit XML.
package junit

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gantry-ci/gantry/events"
)

// ErrNotJUnit is returned for XML whose root is neither <testsuites> nor
// <testsuite>.
var ErrNotJUnit = errors.New("not a JUnit XML report")

// MaxFailures bounds the failures a report keeps by name; counts stay exact.
const MaxFailures = 200

// Report is the sum of one or more JUnit files.
type Report struct {
	Total    int
	Passed   int
	Failed   int // failures and errors
	Skipped  int
	Duration float64 // seconds
	Failures []events.TestCase
}

// Event turns the report into the test.reported payload of an action.
func (r Report) Event(ref events.ActionRef) events.TestReported {
	return events.TestReported{ActionRef: ref, Total: r.Total, Passed: r.Passed, Failed: r.Failed,
		Skipped: r.Skipped, Duration: r.Duration, Failures: r.Failures}
}

type suites struct {
	XMLName xml.Name
	Suites  []suite `xml:"testsuite"`
	// a <testsuite> root has its cases and nested suites here
	Name  string     `xml:"name,attr"`
	Cases []testcase `xml:"testcase"`
}

type suite struct {
	Name   string     `xml:"name,attr"`
	Cases  []testcase `xml:"testcase"`
	Suites []suite    `xml:"testsuite"`
}

type testcase struct {
	Name      string    `xml:"name,attr"`
	Classname string    `xml:"classname,attr"`
	Time      string    `xml:"time,attr"`
	Failures  []problem `xml:"failure"`
	Errors    []problem `xml:"error"`
	Skipped   *problem  `xml:"skipped"`
}

type problem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// Parse reads one JUnit document and adds it to the report.
func (r *Report) Parse(name string, rd io.Reader) error {
	var doc suites
	dec := xml.NewDecoder(rd)
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w: %v", name, ErrNotJUnit, err)
	}
	switch doc.XMLName.Local {
	case "testsuites":
		for _, s := range doc.Suites {
			r.addSuite(s)
		}
	case "testsuite":
		r.addSuite(suite{Name: doc.Name, Cases: doc.Cases, Suites: doc.Suites})
	default:
		return fmt.Errorf("%s: %w: root element <%s>", name, ErrNotJUnit, doc.XMLName.Local)
	}
	return nil
}

func (r *Report) addSuite(s suite) {
	for _, c := range s.Cases {
		r.Total++
		if d, err := strconv.ParseFloat(strings.TrimSpace(c.Time), 64); err == nil && d > 0 {
			r.Duration += d
		}
		probs := append(append([]problem(nil), c.Failures...), c.Errors...)
		switch {
		case len(probs) > 0:
			r.Failed++
			if len(r.Failures) < MaxFailures {
				suiteName := s.Name
				if suiteName == "" {
					suiteName = c.Classname
				}
				d, _ := strconv.ParseFloat(strings.TrimSpace(c.Time), 64)
				r.Failures = append(r.Failures, events.TestCase{Suite: suiteName, Name: c.Name, Message: message(probs[0]), Duration: max(d, 0)})
			}
		case c.Skipped != nil:
			r.Skipped++
		default:
			r.Passed++
		}
	}
	for _, n := range s.Suites {
		r.addSuite(n)
	}
}

// message is the failure's message attribute, or the first non-empty line
// of its text, bounded.
func message(p problem) string {
	m := strings.TrimSpace(p.Message)
	if m == "" {
		for _, l := range strings.Split(p.Text, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				m = l
				break
			}
		}
	}
	if m == "" {
		m = p.Type
	}
	if len(m) > 500 {
		m = m[:500] + "…"
	}
	return m
}

// ParseFiles reads every file into one report.
func ParseFiles(paths ...string) (Report, error) {
	var r Report
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return r, fmt.Errorf("open report: %w", err)
		}
		err = r.Parse(p, f)
		f.Close()
		if err != nil {
			return r, err
		}
	}
	return r, nil
}
