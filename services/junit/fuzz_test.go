package junit

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics, and a report it returns is consistent.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.xml")
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`<testsuite><testcase name="a"><failure/></testcase><testsuite><testcase/></testsuite></testsuite>`))
	f.Add([]byte(`<testsuites time="1e308"><testsuite time="1e308"/><testsuite time="1e308"/></testsuites>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		checkReport(t, r)
	})
}

func checkReport(t *testing.T, r *Report) {
	t.Helper()
	if r.Total != r.Passed+r.Failed+r.Skipped || r.Total < 0 || len(r.Failures) != r.Failed {
		t.Fatalf("inconsistent counts %+v", r)
	}
	if r.Duration < 0 || math.IsNaN(r.Duration) {
		t.Fatalf("duration %v", r.Duration)
	}
	for _, c := range r.Failures {
		if len(c.Message) > MaxMessageBytes+len("…") {
			t.Fatalf("message of %d bytes", len(c.Message))
		}
	}
}

// FuzzFromGoTestJSON: whatever go test -json output (or garbage) comes in,
// the converter writes JUnit XML that Parse reads back.
func FuzzFromGoTestJSON(f *testing.F) {
	if data, err := os.ReadFile("testdata/gotest.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("{\"Action\":\"output\",\"Package\":\"p\",\"Test\":\"T\",\"Output\":\"\\u001b[31mred\\u0000 ]]> <x>\\n\"}\n{\"Action\":\"fail\",\"Package\":\"p\",\"Test\":\"T\"}\n"))
	f.Add([]byte("not json at all\n\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if err := FromGoTestJSON(bytes.NewReader(data), &out); err != nil {
			t.Fatalf("convert: %v", err)
		}
		r, err := Parse(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out.String())
		}
		checkReport(t, r)
	})
}
