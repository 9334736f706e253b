package pipelinefile

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocExamplesParse: every complete pipeline file in docs/pipeline.md
// (a yaml block starting with name:) parses.
func TestDocExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		body := m[1]
		if !strings.HasPrefix(strings.TrimLeft(body, "# \n"), "name:") && !strings.Contains(body, "\nname:") {
			continue
		}
		n++
		if _, err := Parse("docs-example.yaml", []byte(body)); err != nil {
			t.Errorf("example %d does not parse: %v\n%s", n, err, body)
		}
	}
	t.Logf("%d examples parsed", n)
	if n < 2 {
		t.Fatalf("found %d complete examples", n)
	}
}
