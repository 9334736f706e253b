package pipelinefile

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The complete examples of docs/pipeline.md's "Manual approval" and
// "Conditions" sections parse.
func TestGatesDocExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../../docs/pipeline.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	for _, section := range []string{"## Manual approval\n", "## Conditions\n"} {
		i := strings.Index(s, section)
		if i < 0 {
			t.Fatalf("docs/pipeline.md has no section %q", section)
		}
		body := s[i+len(section):]
		if j := strings.Index(body, "\n## "); j >= 0 {
			body = body[:j]
		}
		blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(body, -1)
		if len(blocks) == 0 {
			t.Fatalf("section %q has no example", section)
		}
		for _, b := range blocks {
			if _, err := Parse("pipeline.md", []byte(b[1])); err != nil {
				t.Errorf("the example of %q does not parse: %v", strings.TrimSpace(section), err)
			}
		}
	}
}
