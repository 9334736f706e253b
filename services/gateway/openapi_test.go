package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gantry-ci/gantry/schemas"
)

var methods = []string{"get", "put", "post", "delete", "patch"}

// apiDoc is the OpenAPI document, for checking routes and responses.
type apiDoc struct {
	doc map[string]any
	// mux maps a request to its documented path pattern.
	mux *http.ServeMux
	mu  sync.Mutex
	c   *jsonschema.Compiler
	got map[string]*jsonschema.Schema
}

const docURL = "https://gantry.dev/schemas/openapi.json"

func loadDoc(t *testing.T) *apiDoc {
	t.Helper()
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemas.OpenAPI()))
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	d := &apiDoc{doc: raw.(map[string]any), mux: http.NewServeMux(), c: jsonschema.NewCompiler(), got: map[string]*jsonschema.Schema{}}
	d.c.DefaultDraft(jsonschema.Draft2020)
	if err := d.c.AddResource(docURL, raw); err != nil {
		t.Fatal(err)
	}
	for path, item := range d.paths() {
		for m := range item.(map[string]any) {
			if slices.Contains(methods, m) {
				d.mux.HandleFunc(strings.ToUpper(m)+" "+path, func(http.ResponseWriter, *http.Request) {})
			}
		}
	}
	return d
}

func (d *apiDoc) paths() map[string]any { return d.doc["paths"].(map[string]any) }

// operations lists "METHOD path" of every documented operation.
func (d *apiDoc) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for path, item := range d.paths() {
		for m, op := range item.(map[string]any) {
			if slices.Contains(methods, m) {
				out[strings.ToUpper(m)+" "+path] = op.(map[string]any)
			}
		}
	}
	return out
}

func pointer(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~", "~0"), "/", "~1")
	}
	return "#/" + strings.Join(parts, "/")
}

// check validates a JSON response against the schema the document gives
// its operation and status; a status the document does not list fails.
func (d *apiDoc) check(t *testing.T, method, path string, r response) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	_, pattern := d.mux.Handler(req)
	if pattern == "" {
		return // not an API route (the UI, or the JSON 404 of unknown paths)
	}
	_, docPath, _ := strings.Cut(pattern, " ")
	status := strconv.Itoa(r.status)
	op := d.operations()[pattern]
	resp, ok := op["responses"].(map[string]any)[status].(map[string]any)
	if !ok {
		t.Errorf("%s %s answered %d, which the document does not list for %s: %s", method, path, r.status, pattern, r.body)
		return
	}
	ptr := pointer("paths", docPath, strings.ToLower(method), "responses", status)
	if ref, ok := resp["$ref"].(string); ok {
		ptr = ref
		name := ref[strings.LastIndex(ref, "/")+1:]
		resp = d.doc["components"].(map[string]any)["responses"].(map[string]any)[name].(map[string]any)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		return
	}
	if c, _ := resp["content"].(map[string]any); c["application/json"] == nil {
		t.Errorf("%s %s %d: JSON, which the document does not list", method, path, r.status)
		return
	}
	loc := docURL + ptr + "/content/application~1json/schema"
	d.mu.Lock()
	s, ok := d.got[loc]
	if !ok {
		var err error
		if s, err = d.c.Compile(loc); err != nil {
			d.mu.Unlock()
			t.Fatalf("compile %s: %v", loc, err)
		}
		d.got[loc] = s
	}
	d.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Errorf("%s %s: body is not JSON: %v", method, path, err)
		return
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("%s %s %d does not match the document: %v\n%s", method, path, r.status, err, r.body)
	}
}

// TestOpenAPIMatchesRoutes: the document and the server have the same
// routes (method and path) with the same roles, and the server serves the
// document.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := loadDoc(t)
	if d.doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", d.doc["openapi"])
	}
	e := newEnv(t)
	ops := d.operations()
	served := map[string]bool{}
	for _, r := range e.srv.Routes() {
		key := r.Method + " " + r.Path
		served[key] = true
		op, ok := ops[key]
		if !ok {
			t.Errorf("route %s is not in schemas/openapi.json", key)
			continue
		}
		role := string(r.Role)
		if role == "" {
			role = "none"
		}
		if op["x-gantry-role"] != role {
			t.Errorf("%s: document says role %v, the server %s", key, op["x-gantry-role"], role)
		}
		if role != "none" {
			resps := op["responses"].(map[string]any)
			if resps["401"] == nil || resps["403"] == nil {
				t.Errorf("%s: 401 and 403 undocumented", key)
			}
		}
	}
	for key := range ops {
		if !served[key] {
			t.Errorf("schemas/openapi.json has %s, which the server does not serve", key)
		}
	}
	// Every $ref resolves: compile each response schema once.
	for key, op := range ops {
		_, path, _ := strings.Cut(key, " ")
		for status, resp := range op["responses"].(map[string]any) {
			if c, ok := resp.(map[string]any)["content"].(map[string]any); ok && c["application/json"] != nil {
				loc := docURL + pointer("paths", path, strings.ToLower(strings.Fields(key)[0]), "responses", status) + "/content/application~1json/schema"
				if _, err := d.c.Compile(loc); err != nil {
					t.Errorf("%s %s: %v", key, status, err)
				}
			}
		}
	}
	r := e.do("GET", "/openapi.json", "", nil)
	if r.status != 200 || !bytes.Equal(r.body, schemas.OpenAPI()) {
		t.Errorf("GET /openapi.json: %d, %d bytes", r.status, len(r.body))
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Error(err)
	}
}
