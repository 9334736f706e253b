package schemas_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-ci/gantry/schemas"
)

func newValidator(t *testing.T) *schemas.Validator {
	t.Helper()
	v, err := schemas.New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// TestEverySchemaCompiles compiles every embedded schema by validating a
// document against it: a validation failure is fine, a compile error is not.
func TestEverySchemaCompiles(t *testing.T) {
	v := newValidator(t)
	names := schemas.Names()
	for _, want := range []string{"envelope.json", "defs.json"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() = %v, want it to include %s", names, want)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			doc := readSchema(t, name)
			if got := doc["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v, want draft 2020-12", got)
			}
			if got, want := doc["$id"], schemas.Base+name; got != want {
				t.Errorf("$id = %v, want %s", got, want)
			}
			err := v.Validate(strings.TrimSuffix(name, ".json"), map[string]any{})
			if err != nil && !errors.Is(err, schemas.ErrInvalid) {
				t.Errorf("compile: %v", err)
			}
		})
	}
}

func readSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := schemas.Read(name)
	if err != nil {
		t.Fatalf("Read(%s): %v", name, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("%s is not a JSON object: %v", name, err)
	}
	return doc
}

// TestEventSchemaConventions checks what the catalogue and the validator rely
// on: titles equal to the type, a one-sentence description, closed objects,
// documented properties and $refs that name an existing definition.
func TestEventSchemaConventions(t *testing.T) {
	var events int
	for _, name := range schemas.Names() {
		rest, ok := strings.CutPrefix(name, "events/")
		if !ok && name != "defs.json" {
			continue // document schemas are checked by their owners
		}
		doc := readSchema(t, name)
		if ok {
			events++
			typ := strings.TrimSuffix(rest, ".json")
			if doc["title"] != typ {
				t.Errorf("%s: title = %v, want %s", name, doc["title"], typ)
			}
			desc, _ := doc["description"].(string)
			if desc == "" || !strings.HasSuffix(desc, ".") || strings.Contains(strings.TrimSuffix(desc, "."), ". ") {
				t.Errorf("%s: description %q is not one sentence", name, desc)
			}
			if doc["type"] != "object" {
				t.Errorf("%s: type = %v, want object", name, doc["type"])
			}
		}
		for _, p := range walkSchema(doc, "") {
			t.Errorf("%s: %s", name, p)
		}
		for _, ref := range refs(doc) {
			if err := resolves(t, ref); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	if events == 0 {
		t.Fatal("no schemas under events/")
	}
}

// walkSchema reports objects that accept unknown properties, required
// properties that are not declared and properties without a description.
func walkSchema(s map[string]any, at string) []string {
	var out []string
	if props, ok := s["properties"].(map[string]any); ok {
		if s["additionalProperties"] != false {
			out = append(out, fmt.Sprintf("%s: object with properties must set additionalProperties: false", orRoot(at)))
		}
		for _, r := range asSlice(s["required"]) {
			if _, ok := props[r.(string)]; !ok {
				out = append(out, fmt.Sprintf("%s: required %q is not a property", orRoot(at), r))
			}
		}
		for name, p := range props {
			p := p.(map[string]any)
			if d, _ := p["description"].(string); d == "" {
				out = append(out, fmt.Sprintf("%s/properties/%s: no description", at, name))
			}
		}
	}
	for k, v := range s {
		switch v := v.(type) {
		case map[string]any:
			out = append(out, walkSchema(v, at+"/"+k)...)
		case []any:
			for i, x := range v {
				if m, ok := x.(map[string]any); ok {
					out = append(out, walkSchema(m, fmt.Sprintf("%s/%s/%d", at, k, i))...)
				}
			}
		}
	}
	return out
}

func orRoot(at string) string {
	if at == "" {
		return "/"
	}
	return at
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func refs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			} else {
				out = append(out, refs(x)...)
			}
		}
	case []any:
		for _, x := range v {
			out = append(out, refs(x)...)
		}
	}
	return out
}

// resolves checks that a $ref is absolute under Base and names a definition
// that exists, so that tools reading one file can follow it.
func resolves(t *testing.T, ref string) error {
	file, frag, _ := strings.Cut(ref, "#")
	name, ok := strings.CutPrefix(file, schemas.Base)
	if !ok {
		return fmt.Errorf("$ref %q is not absolute under %s", ref, schemas.Base)
	}
	var cur any = readSchema(t, name)
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if tok == "" {
			continue
		}
		m, _ := cur.(map[string]any)
		if cur = m[tok]; cur == nil {
			return fmt.Errorf("$ref %q points at nothing", ref)
		}
	}
	return nil
}

// envelope wraps a payload in a valid envelope of the type.
func envelope(typ, data string) string {
	return `{"specversion":"1.0","id":"run/r1/x","source":"/gantry/test","type":"` + typ +
		`","subject":"r1","time":"2026-11-26T09:30:00Z","datacontenttype":"application/json","data":` + data + `}`
}

const (
	sha      = `"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
	artifact = `{"name":"app","key":"webshop/r1/app","sha256":` + sha + `,"size":1024}`
	task     = `{"id":"run/r1/stage/Build/action/compile/attempt/1","pipeline":"webshop","run":"r1","stage":"Build","action":"compile","attempt":1,"kind":"build","pool":"default"`
	def      = `{"name":"webshop","stages":[{"name":"Build","actions":[{"name":"compile","type":"build","pool":"default","runOrder":1}]}]}`
	trigger  = `{"id":"manual/1","kind":"manual"}`
)

func TestValidateEvent(t *testing.T) {
	v := newValidator(t)
	cases := []struct {
		name string
		raw  string
		want error    // nil, ErrInvalid or ErrUnknownSchema
		text []string // substrings of the error
	}{
		{name: "run.started", raw: envelope("dev.gantry.run.started", `{"run":"0193a5b2-7c1e-7d2f-9a3b-4c5d6e7f8091"}`)},
		{name: "run.requested minimal", raw: envelope("dev.gantry.run.requested", `{"pipeline":"webshop","run":"r1","revision":0,"definition":`+def+`,"trigger":`+trigger+`}`)},
		{name: "action.dispatched full", raw: envelope("dev.gantry.action.dispatched", `{"task":`+task+`,"configuration":{"buildspec":"b.yml"},"inputs":[`+artifact+`],"outputs":["app"],"variables":{"GOOS":"linux"},"timeoutSeconds":60}}`)},
		{name: "artifact.stored", raw: envelope("dev.gantry.artifact.stored", `{"run":"r1","stage":"Build","action":"compile","attempt":1,"artifact":`+artifact+`}`)},
		{name: "test.reported", raw: envelope("dev.gantry.test.reported", `{"run":"r1","stage":"Test","action":"unit","attempt":1,"total":2,"passed":1,"failed":1,"skipped":0,"durationSeconds":0.5,"failures":[{"name":"TestX"}]}`)},
		{name: "extension attribute", raw: strings.Replace(envelope("dev.gantry.run.started", `{"run":"r1"}`), `{`, `{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",`, 1)},

		{name: "not JSON", raw: `{"specversion"`, want: schemas.ErrInvalid, text: []string{"envelope: not JSON"}},
		{name: "not an object", raw: `[1]`, want: schemas.ErrInvalid, text: []string{"envelope: at /: got array, want object"}},
		{name: "no id", raw: strings.Replace(envelope("dev.gantry.run.started", `{"run":"r1"}`), `"id":"run/r1/x",`, ``, 1), want: schemas.ErrInvalid, text: []string{"envelope: at /: missing property 'id'"}},
		{name: "wrong specversion", raw: strings.Replace(envelope("dev.gantry.run.started", `{"run":"r1"}`), `"1.0"`, `"0.3"`, 1), want: schemas.ErrInvalid, text: []string{"at /specversion:"}},
		{name: "type outside dev.gantry", raw: envelope("com.example.thing", `{}`), want: schemas.ErrInvalid, text: []string{"at /type:"}},
		{name: "data not an object", raw: envelope("dev.gantry.run.started", `"r1"`), want: schemas.ErrInvalid, text: []string{"envelope: at /data: got string, want object"}},
		{name: "unknown type", raw: envelope("dev.gantry.run.exploded", `{}`), want: schemas.ErrUnknownSchema, text: []string{"dev.gantry.run.exploded"}},

		{name: "missing run", raw: envelope("dev.gantry.run.started", `{}`), want: schemas.ErrInvalid, text: []string{"dev.gantry.run.started: at /: missing property 'run'"}},
		{name: "misspelt property", raw: envelope("dev.gantry.run.started", `{"run":"r1","rnu":"r1"}`), want: schemas.ErrInvalid, text: []string{"at /: additional properties 'rnu' not allowed"}},
		{name: "run not a subject token", raw: envelope("dev.gantry.run.started", `{"run":"r1.x"}`), want: schemas.ErrInvalid, text: []string{"at /run: 'r1.x' does not match pattern"}},
		{name: "attempt zero", raw: envelope("dev.gantry.stage.started", `{"run":"r1","stage":"Build","attempt":0}`), want: schemas.ErrInvalid, text: []string{"at /attempt: minimum: got 0, want 1"}},
		{name: "attempt fractional", raw: envelope("dev.gantry.stage.started", `{"run":"r1","stage":"Build","attempt":1.5}`), want: schemas.ErrInvalid, text: []string{"at /attempt: got number, want integer"}},
		{name: "stage name too long", raw: envelope("dev.gantry.stage.started", `{"run":"r1","stage":"`+strings.Repeat("s", 65)+`","attempt":1}`), want: schemas.ErrInvalid, text: []string{"at /stage:"}},
		{name: "stage name of 64", raw: envelope("dev.gantry.stage.started", `{"run":"r1","stage":"`+strings.Repeat("s", 64)+`","attempt":1}`)},
		{name: "stage name starts with dash", raw: envelope("dev.gantry.stage.started", `{"run":"r1","stage":"-b","attempt":1}`), want: schemas.ErrInvalid, text: []string{"at /stage:"}},
		{name: "empty reason", raw: envelope("dev.gantry.run.failed", `{"run":"r1","reason":""}`), want: schemas.ErrInvalid, text: []string{"at /reason: minLength: got 0, want 1"}},
		{name: "several violations", raw: envelope("dev.gantry.action.started", `{"run":"r1","stage":"b","action":"a","attempt":0,"worker":""}`), want: schemas.ErrInvalid, text: []string{"at /attempt:", "at /worker:"}},
		{name: "uppercase sha256", raw: envelope("dev.gantry.artifact.stored", `{"run":"r1","stage":"b","action":"a","attempt":1,"artifact":`+strings.Replace(artifact, sha, strings.ToUpper(sha), 1)+`}`), want: schemas.ErrInvalid, text: []string{"at /artifact/sha256:"}},
		{name: "negative size", raw: envelope("dev.gantry.artifact.stored", `{"run":"r1","stage":"b","action":"a","attempt":1,"artifact":`+strings.Replace(artifact, `1024`, `-1`, 1)+`}`), want: schemas.ErrInvalid, text: []string{"at /artifact/size: minimum: got -1, want 0"}},
		{name: "nested action name", raw: envelope("dev.gantry.run.requested", `{"pipeline":"webshop","run":"r1","revision":3,"definition":`+strings.Replace(def, `"compile"`, `"com pile"`, 1)+`,"trigger":`+trigger+`}`), want: schemas.ErrInvalid, text: []string{"at /definition/stages/0/actions/0/name:"}},
		{name: "no stages", raw: envelope("dev.gantry.run.requested", `{"pipeline":"webshop","run":"r1","revision":3,"definition":{"name":"webshop","stages":[]},"trigger":`+trigger+`}`), want: schemas.ErrInvalid, text: []string{"at /definition/stages: minItems: got 0, want 1"}},
		{name: "unknown trigger kind", raw: envelope("dev.gantry.run.requested", `{"pipeline":"webshop","run":"r1","revision":3,"definition":`+def+`,"trigger":{"id":"x","kind":"cron"}}`), want: schemas.ErrInvalid, text: []string{"at /trigger/kind:"}},
		{name: "empty variables", raw: envelope("dev.gantry.run.requested", `{"pipeline":"webshop","run":"r1","revision":3,"definition":`+def+`,"trigger":`+trigger+`,"variables":{}}`), want: schemas.ErrInvalid, text: []string{"at /variables: minProperties: got 0, want 1"}},
		{name: "variable name", raw: envelope("dev.gantry.run.requested", `{"pipeline":"webshop","run":"r1","revision":3,"definition":`+def+`,"trigger":`+trigger+`,"variables":{"1X":"y"}}`), want: schemas.ErrInvalid, text: []string{"at /variables: additional properties '1X' not allowed"}},
		{name: "duplicate output", raw: envelope("dev.gantry.action.dispatched", `{"task":`+task+`,"outputs":["app","app"]}}`), want: schemas.ErrInvalid, text: []string{"at /task/outputs:"}},
		{name: "task id shape", raw: envelope("dev.gantry.action.dispatched", `{"task":`+strings.Replace(task, `attempt/1"`, `attempt/01"`, 1)+`}}`), want: schemas.ErrInvalid, text: []string{"at /task/id:"}},
		{name: "task input without digest", raw: envelope("dev.gantry.action.dispatched", `{"task":`+task+`,"inputs":[{"name":"app","key":"webshop/r1/app","size":1}]}}`), want: schemas.ErrInvalid, text: []string{"at /task/inputs/0: missing property 'sha256'"}},
		{name: "zero timeout", raw: envelope("dev.gantry.action.dispatched", `{"task":`+task+`,"timeoutSeconds":0}}`), want: schemas.ErrInvalid, text: []string{"at /task/timeoutSeconds: minimum: got 0, want 1"}},
		{name: "failure without name", raw: envelope("dev.gantry.test.reported", `{"run":"r1","stage":"Test","action":"unit","attempt":1,"total":1,"passed":0,"failed":1,"skipped":0,"durationSeconds":0.5,"failures":[{"suite":"s"}]}`), want: schemas.ErrInvalid, text: []string{"at /failures/0: missing property 'name'"}},
		{name: "heartbeat zero", raw: envelope("dev.gantry.action.heartbeat", `{"run":"r1","stage":"b","action":"a","attempt":1,"worker":"w","beat":0}`), want: schemas.ErrInvalid, text: []string{"at /beat: minimum: got 0, want 1"}},
		{name: "log lines negative", raw: envelope("dev.gantry.log.archived", `{"run":"r1","stage":"b","action":"a","attempt":1,"key":"webshop/r1/logs/b/a/1.log","sha256":`+sha+`,"size":0,"lines":-1}`), want: schemas.ErrInvalid, text: []string{"at /lines: minimum: got -1, want 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.ValidateEvent([]byte(tc.raw))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ValidateEvent: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ValidateEvent error = %v, want %v", err, tc.want)
			}
			for _, s := range tc.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestUnknownSchema(t *testing.T) {
	v := newValidator(t)
	if err := v.Validate("nope", map[string]any{}); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Errorf("Validate(nope) = %v, want ErrUnknownSchema", err)
	}
	if _, err := schemas.Read("events/nope.json"); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Errorf("Read(events/nope.json) = %v, want ErrUnknownSchema", err)
	}
	if err := v.ValidateJSON("events/dev.gantry.run.started", []byte(`{"run":`)); !errors.Is(err, schemas.ErrInvalid) {
		t.Errorf("ValidateJSON of broken JSON = %v, want ErrInvalid", err)
	}
}

// TestDetails checks the per-violation pointers that parsers map back to lines.
func TestDetails(t *testing.T) {
	v := newValidator(t)
	doc := map[string]any{"run": "r1", "stage": "b", "action": "a", "attempt": json.Number("0"), "worker": "w",
		"artifact": map[string]any{"name": "app", "key": "k", "sha256": "XYZ", "size": json.Number("1")}}
	ds, err := v.Details("events/dev.gantry.artifact.stored", doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, "/"+strings.Join(d.Pointer, "/"))
	}
	slices.Sort(got)
	want := []string{"/", "/artifact/sha256", "/attempt"} // worker is not a property of artifact.stored
	if !slices.Equal(got, want) {
		t.Errorf("pointers = %v, want %v (details %+v)", got, want, ds)
	}
}

// TestConcurrentValidation runs first compiles from many goroutines; with
// -race it guards the lazy compile cache.
func TestConcurrentValidation(t *testing.T) {
	v := newValidator(t)
	types := []string{"dev.gantry.run.started", "dev.gantry.run.succeeded", "dev.gantry.stage.started"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			typ := types[i%len(types)]
			if err := v.ValidateEvent([]byte(envelope(typ, `{}`))); !errors.Is(err, schemas.ErrInvalid) {
				errs <- fmt.Errorf("%s: %v", typ, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
