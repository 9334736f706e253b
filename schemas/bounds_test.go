package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/schemas"
)

// TestDocumentBounds pins each size bound of the documents that come from
// outside (triggers, pipeline files, buildspecs, appspecs): the value at the
// bound passes, one past it is refused with a message naming the limit. An
// unbounded field let an 8 MB trigger through (issue 7).
func TestDocumentBounds(t *testing.T) {
	v := newValidator(t)
	long := func(n int) string { return strings.Repeat("a", n) }
	vars := func(n int, val string) map[string]any {
		m := map[string]any{}
		for i := range n {
			m[fmt.Sprintf("V%d", i)] = val
		}
		return m
	}
	list := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	trigger := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"id": "manual/1", "pipeline": "hello", "kind": "manual"}
		mod(m)
		return m
	}
	action := func(mod func(m map[string]any)) map[string]any {
		a := map[string]any{"name": "build", "type": "build"}
		mod(a)
		return map[string]any{"name": "hello", "stages": []any{map[string]any{"name": "Build", "actions": []any{a}}}}
	}
	pipeline := func(mod func(m map[string]any)) map[string]any {
		p := action(func(map[string]any) {})
		mod(p)
		return p
	}
	phase := func(cmds []any) map[string]any {
		return map[string]any{"version": 0.2, "phases": map[string]any{"build": map[string]any{"commands": cmds}}}
	}
	env := func(vars map[string]any) map[string]any {
		b := phase([]any{"true"})
		b["env"] = map[string]any{"variables": vars}
		return b
	}
	hooks := func(n int) map[string]any {
		return map[string]any{"version": 0.0, "os": "linux", "hooks": map[string]any{
			"ApplicationStart": list(n, func(int) any { return map[string]any{"location": "start.sh"} })}}
	}
	cases := []struct {
		name, schema string
		doc          any
		want         string // "" accepts
	}{
		{"trigger variables 100", "trigger", trigger(func(m map[string]any) { m["variables"] = vars(100, "x") }), ""},
		{"trigger variables 101", "trigger", trigger(func(m map[string]any) { m["variables"] = vars(101, "x") }), "maxProperties: got 101, want 100"},
		{"trigger value 4096", "trigger", trigger(func(m map[string]any) { m["variables"] = vars(1, long(4096)) }), ""},
		{"trigger value 4097", "trigger", trigger(func(m map[string]any) { m["variables"] = vars(1, long(4097)) }), "maxLength: got 4,097, want 4,096"},
		{"trigger name 128", "trigger", trigger(func(m map[string]any) { m["variables"] = map[string]any{"A" + long(127): "x"} }), ""},
		{"trigger name 129", "trigger", trigger(func(m map[string]any) { m["variables"] = map[string]any{"A" + long(128): "x"} }), "maxLength: got 129, want 128"},
		{"trigger name pattern", "trigger", trigger(func(m map[string]any) { m["variables"] = map[string]any{"1x": "x"} }), "does not match pattern"},
		{"trigger id 257", "trigger", trigger(func(m map[string]any) { m["id"] = long(257) }), "maxLength: got 257, want 256"},
		{"pipeline stages 500", "pipeline", pipeline(func(p map[string]any) {
			p["stages"] = list(500, func(i int) any {
				return map[string]any{"name": fmt.Sprintf("S%d", i), "actions": []any{map[string]any{"name": "a", "type": "build"}}}
			})
		}), ""},
		{"pipeline stages 501", "pipeline", pipeline(func(p map[string]any) {
			p["stages"] = list(501, func(i int) any {
				return map[string]any{"name": fmt.Sprintf("S%d", i), "actions": []any{map[string]any{"name": "a", "type": "build"}}}
			})
		}), "maxItems: got 501, want 500"},
		{"pipeline actions 101", "pipeline", pipeline(func(p map[string]any) {
			p["stages"].([]any)[0].(map[string]any)["actions"] = list(101, func(i int) any { return map[string]any{"name": fmt.Sprintf("a%d", i), "type": "build"} })
		}), "maxItems: got 101, want 100"},
		{"pipeline variables 101", "pipeline", pipeline(func(p map[string]any) { p["variables"] = vars(101, "x") }), "maxProperties: got 101, want 100"},
		{"pipeline outputs 101", "pipeline", action(func(a map[string]any) { a["outputs"] = list(101, func(i int) any { return fmt.Sprintf("o%d", i) }) }), "maxItems: got 101, want 100"},
		{"pipeline inputs 101", "pipeline", action(func(a map[string]any) { a["inputs"] = list(101, func(i int) any { return fmt.Sprintf("o%d", i) }) }), "maxItems: got 101, want 100"},
		{"pipeline configuration 101", "pipeline", action(func(a map[string]any) { a["configuration"] = vars(101, "x") }), "maxProperties: got 101, want 100"},
		{"buildspec commands 1000", "buildspec", phase(list(1000, func(int) any { return "true" })), ""},
		{"buildspec commands 1001", "buildspec", phase(list(1001, func(int) any { return "true" })), "maxItems: got 1,001, want 1,000"},
		{"buildspec command 65537", "buildspec", phase([]any{long(65537)}), "maxLength: got 65,537, want 65,536"},
		{"buildspec env 101", "buildspec", env(vars(101, "x")), "maxProperties: got 101, want 100"},
		{"buildspec env value 4097", "buildspec", env(vars(1, long(4097))), "maxLength: got 4,097, want 4,096"},
		{"appspec hooks 100", "appspec", hooks(100), ""},
		{"appspec hooks 101", "appspec", hooks(101), "maxItems: got 101, want 100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			err = v.ValidateJSON(tc.schema, raw)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, schemas.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}
