package pipelinefile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/schemas"
)

// TestPipelineSchemaConventions: schemas/pipeline.json is draft 2020-12 with
// its $id, every mapping is closed (additionalProperties false) and every
// property has the description the docs are built from.
func TestPipelineSchemaConventions(t *testing.T) {
	raw, err := schemas.Read("pipeline.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || doc["$id"] != "https://gantry.dev/schemas/pipeline.json" {
		t.Errorf("$schema = %v, $id = %v", doc["$schema"], doc["$id"])
	}
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		if s["type"] == "object" {
			if s["additionalProperties"] != false {
				t.Errorf("%s: additionalProperties = %v, want false", path, s["additionalProperties"])
			}
			props, _ := s["properties"].(map[string]any)
			pattern, _ := s["patternProperties"].(map[string]any)
			if len(props)+len(pattern) == 0 {
				t.Errorf("%s: an object without properties", path)
			}
		}
		for _, kw := range []string{"properties", "patternProperties", "$defs"} {
			m, _ := s[kw].(map[string]any)
			for name, sub := range m {
				sm, _ := sub.(map[string]any)
				if d, _ := sm["description"].(string); strings.TrimSpace(d) == "" {
					t.Errorf("%s/%s/%s: no description", path, kw, name)
				}
				walk(path+"/"+kw+"/"+name, sm)
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(path+"/items", items)
		}
	}
	walk("#", doc)
}
