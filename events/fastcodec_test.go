package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/schemas"
)

// The fast path (fastcodec.go, validate.go) must accept exactly what the
// schema path accepts: the JSON Schema validator followed by encoding/json
// into the typed payload (Codec.DecodeSchema, which was Decode before). The
// one intended difference is that the fast path refuses a member name given
// twice in the envelope or anywhere in its data, which the schema path
// accepted (it validates the last copy, while encoding/json merges repeated
// maps and objects into the first, so it could decode what it never
// validated). The oracle below is therefore
//
//	accept = DecodeSchema(raw) succeeds && no repeated member name
//
// and the tests check fast accept ⇔ oracle accept, and that on accept both
// decode the same Event.

// runTypes are the types that have the fast path: the run event types.
var runTypes = []string{
	events.TypeRunRequested, events.TypeRunStarted, events.TypeRunSucceeded, events.TypeRunFailed,
	events.TypeStageStarted, events.TypeStageSucceeded, events.TypeStageFailed,
	events.TypeActionDispatched, events.TypeActionStarted, events.TypeActionHeartbeat,
	events.TypeActionSucceeded, events.TypeActionFailed,
	events.TypeArtifactStored, events.TypeLogArchived, events.TypeTestReported,
}

func TestFastPathTypes(t *testing.T) {
	for _, typ := range events.Types {
		if want := slices.Contains(runTypes, typ); events.HasFastPath(typ) != want {
			t.Errorf("HasFastPath(%s) = %v, want %v", typ, !want, want)
		}
	}
	// checkEnvelope relies on every fast type matching the envelope's type
	// pattern instead of checking it.
	re := regexp.MustCompile(`^dev\.gantry\.[a-z]+(\.[a-z_]+){1,2}$`)
	for _, typ := range runTypes {
		if !re.MatchString(typ) {
			t.Errorf("%s does not match the envelope's type pattern", typ)
		}
	}
}

// hasRepeatedName reports a member name given twice in the envelope or in
// any object under its data (extension attributes' values are not looked
// into, as the fast path does not).
func hasRepeatedName(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var value func(check, top bool) (bool, error)
	value = func(check, top bool) (bool, error) {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		dup := false
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return false, err
				}
				k, _ := kt.(string)
				if (check || top) && seen[k] {
					dup = true
				}
				seen[k] = true
				d, err := value(check || (top && k == "data"), false)
				if err != nil {
					return false, err
				}
				dup = dup || d
			}
			_, err = dec.Token()
			return dup, err
		case json.Delim('['):
			for dec.More() {
				d, err := value(check, false)
				if err != nil {
					return false, err
				}
				dup = dup || d
			}
			_, err = dec.Token()
			return dup, err
		}
		return false, nil
	}
	dup, err := value(false, true)
	return err == nil && dup
}

// agree checks the fast path against the oracle on one input and returns
// whether it was accepted.
func agree(t testing.TB, c *events.Codec, raw []byte) bool {
	t.Helper()
	want, werr := c.DecodeSchema(raw)
	oracle := werr == nil && !hasRepeatedName(raw)
	got, ok, gerr := events.DecodeFast(raw)
	if !ok {
		// Not an envelope of a fast type: Decode takes the schema path.
		if werr == nil && events.HasFastPath(want.Type) {
			t.Fatalf("fast path declined a %s the schema path accepts:\n%s", want.Type, raw)
		}
		return werr == nil
	}
	if (gerr == nil) != oracle {
		t.Fatalf("fast path and schema disagree:\n fast:   %v\n schema: %v (repeated name: %v)\n input: %s",
			gerr, werr, hasRepeatedName(raw), raw)
	}
	if gerr != nil {
		if !errors.Is(gerr, events.ErrInvalidEvent) {
			t.Fatalf("fast path error does not wrap ErrInvalidEvent: %v", gerr)
		}
		return false
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast path decoded\n %#v\nschema path decoded\n %#v\ninput: %s", got, want, raw)
	}
	// Encode validates the same way: what Decode accepts, Encode accepts.
	if _, err := c.Encode(got); err != nil && got.Time.UTC().Year() >= 0 && got.Time.UTC().Year() <= 9999 {
		t.Fatalf("decoded but Encode refuses: %v\ninput: %s", err, raw)
	}
	return true
}

// repeated is an object written with one member twice, first with a copy of
// its value, then as the map has it.
type repeated struct {
	m   map[string]any
	key string
}

func (r repeated) MarshalJSON() ([]byte, error) {
	rest, err := json.Marshal(r.m)
	if err != nil {
		return nil, err
	}
	first, err := json.Marshal(map[string]any{r.key: r.m[r.key]})
	if err != nil {
		return nil, err
	}
	if len(rest) == 2 {
		return first, nil
	}
	return append(append(first[:len(first)-1:len(first)-1], ','), rest[1:]...), nil
}

// node is a value in a parsed envelope: the container that holds it and its
// key or index there.
type node struct {
	parent any // map[string]any or *[]any
	key    string
	index  int
}

// nodes lists the envelope's members and every value under its data.
func nodes(doc map[string]any) []node {
	var out []node
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, node{parent: v, key: k})
				walk(v[k])
			}
		case []any:
			for i := range v {
				out = append(out, node{parent: &v, index: i})
				walk(v[i])
			}
		}
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, node{parent: doc, key: k})
	}
	walk(doc["data"])
	return out
}

var (
	longLengths = []int{63, 64, 65, 128, 129, 255, 256, 257, 511, 512, 513, 1024, 1025}
	numbers     = []string{"1.0", "1e2", "1e-400", "-1e-400", "-0", "-0.0", "0.5", "0.000", "1e400",
		"9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
		"1000", "999", "2", "-2.5"}
	strs = []string{"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "a/b", "_x", "x\n",
		"\u017fource", "\u212a", "é", "a.b", "-a", "_", "run/a/stage/b/action/c/attempt/0",
		"run/a/stage/b/action/c/attempt/10", "run/a/stage/b/action/c/attempt/1/", "manual", "Manual",
		"application/json", "1.0", "text/plain", " ", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
)

const mutations = 22

// mutate applies mutation op to the value at node n (chosen by sel) of a
// valid envelope; extra varies it. It returns nil when the mutation does not
// apply.
func mutate(raw []byte, sel int, op int, extra string) []byte {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	ns := nodes(doc)
	if len(ns) == 0 {
		return nil
	}
	n := ns[sel%len(ns)]
	get := func() any {
		if m, ok := n.parent.(map[string]any); ok {
			return m[n.key]
		}
		return (*n.parent.(*[]any))[n.index]
	}
	set := func(v any) {
		if m, ok := n.parent.(map[string]any); ok {
			m[n.key] = v
			return
		}
		(*n.parent.(*[]any))[n.index] = v
	}
	pick := func(list []string) string { return list[len(extra)%len(list)] }
	switch op % mutations {
	case 0: // drop
		if m, ok := n.parent.(map[string]any); ok {
			delete(m, n.key)
		} else {
			p := n.parent.(*[]any)
			*p = slices.Delete(*p, n.index, n.index+1)
			if !rewriteArray(doc, p) {
				return nil
			}
		}
	case 1:
		set("")
	case 2:
		set(json.Number("0"))
	case 3:
		set(json.Number("-1"))
	case 4:
		set(nil)
	case 5:
		set(true)
	case 6:
		set([]any{})
	case 7:
		set(map[string]any{})
	case 8:
		set(extra)
	case 9:
		set("bad name")
	case 10:
		set(strings.Repeat("a", longLengths[len(extra)%len(longLengths)]))
	case 11: // an extra member next to the node
		if m, ok := n.parent.(map[string]any); ok {
			k := extra
			if k == "" {
				k = "attmept"
			}
			if _, exists := m[k]; exists {
				return nil
			}
			m[k] = "x"
		} else {
			return nil
		}
	case 12: // the node's name in another case
		m, ok := n.parent.(map[string]any)
		if !ok {
			return nil
		}
		k := n.key
		if k == "" {
			return nil
		}
		v := strings.ToUpper(k[:1]) + k[1:]
		if len(extra)%2 == 1 {
			v = strings.ToUpper(k)
		}
		if v == k {
			v = strings.ToLower(k)
		}
		if _, exists := m[v]; exists || v == k {
			return nil
		}
		m[v] = m[k]
		if len(extra)%3 != 2 { // sometimes keep both spellings
			delete(m, k)
		}
	case 13:
		if json.Valid([]byte(extra)) && extra != "" && (extra[0] == '-' || extra[0] >= '0' && extra[0] <= '9') {
			set(json.Number(strings.TrimSpace(extra)))
		} else {
			set(json.Number("1.5"))
		}
	case 14:
		set(json.Number(pick(numbers)))
	case 15:
		set(pick(strs))
	case 16:
		s, ok := get().(string)
		if !ok {
			return nil
		}
		set(s + extra)
	case 17: // a repeated member name in the node's object
		m, ok := n.parent.(map[string]any)
		if !ok {
			return nil
		}
		if reflect.ValueOf(m).UnsafePointer() == reflect.ValueOf(doc).UnsafePointer() {
			out, err := json.Marshal(repeated{m: doc, key: n.key})
			if err != nil {
				return nil
			}
			return out
		}
		if !replaceMap(doc, m, repeated{m: m, key: n.key}) {
			return nil
		}
	case 18: // a byte changed
		out, err := json.Marshal(doc)
		if err != nil || len(out) == 0 {
			return nil
		}
		i := (sel * 7919) % len(out)
		if extra == "" {
			return append(out[:i:i], out[i+1:]...)
		}
		out[i] = extra[0]
		return out
	case 19: // the node's value in an array
		set([]any{get()})
	case 20: // an array element repeated
		p, ok := n.parent.(*[]any)
		if !ok {
			return nil
		}
		*p = append(*p, (*p)[n.index])
		if !rewriteArray(doc, p) {
			return nil
		}
	case 21: // upper case a string (sha256, names, kinds)
		s, ok := get().(string)
		if !ok {
			return nil
		}
		set(strings.ToUpper(s))
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil
	}
	return out
}

// rewriteArray stores a changed slice back into whichever container holds
// the original (slices are values in the parsed tree).
func rewriteArray(doc any, p *[]any) bool {
	found := false
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if a, ok := c.([]any); ok && sameBacking(a, p) {
					v[k] = *p
					found = true
					return
				}
				walk(c)
			}
		case []any:
			for i, c := range v {
				if a, ok := c.([]any); ok && sameBacking(a, p) {
					v[i] = *p
					found = true
					return
				}
				walk(c)
			}
		}
	}
	walk(doc)
	return found
}

func sameBacking(a []any, p *[]any) bool {
	return cap(a) > 0 && cap(*p) > 0 && &a[:cap(a)][0] == &(*p)[:cap(*p)][0]
}

// replaceMap replaces the object m wherever it is held by v.
func replaceMap(doc map[string]any, m map[string]any, v any) bool {
	same := func(c any) bool {
		cm, ok := c.(map[string]any)
		return ok && reflect.ValueOf(cm).UnsafePointer() == reflect.ValueOf(m).UnsafePointer()
	}
	found := false
	var walk func(c any)
	walk = func(c any) {
		switch c := c.(type) {
		case map[string]any:
			for k, x := range c {
				if same(x) {
					c[k] = v
					found = true
					return
				}
				walk(x)
			}
		case []any:
			for i, x := range c {
				if same(x) {
					c[i] = v
					found = true
					return
				}
				walk(x)
			}
		}
	}
	walk(doc)
	return found
}

// sampleRaw returns the encoded sample envelope of a run type.
func sampleRaw(t testing.TB, c *events.Codec, typ string) []byte {
	t.Helper()
	raw, err := c.Encode(sampleEvent(t, samples()[typ]))
	if err != nil {
		t.Fatalf("encode sample %s: %v", typ, err)
	}
	return raw
}

// TestFastPathAgreesOnMutations applies every mutation to every value of
// every run type's sample and checks the fast path against the oracle.
func TestFastPathAgreesOnMutations(t *testing.T) {
	c := newCodec(t)
	extras := []string{"", "X", "ab", "-1e-400"}
	if testing.Short() {
		extras = extras[:2]
	}
	var variants []string
	for i := range max(len(longLengths), len(numbers), len(strs)) {
		variants = append(variants, strings.Repeat("x", i))
	}
	for _, typ := range runTypes {
		t.Run(typ, func(t *testing.T) {
			good := sampleRaw(t, c, typ)
			if !agree(t, c, good) {
				t.Fatalf("sample refused")
			}
			var accepted, refused int
			n := len(nodes(mustDoc(t, good)))
			for sel := range n {
				for op := range mutations {
					xs := extras
					if op == 10 || op == 14 || op == 15 {
						// these pick from a list by len(extra): try every entry
						xs = variants
					}
					for _, x := range xs {
						raw := mutate(good, sel, op, x)
						if raw == nil {
							continue
						}
						if agree(t, c, raw) {
							accepted++
						} else {
							refused++
						}
					}
				}
			}
			t.Logf("%d mutants: %d accepted, %d refused", accepted+refused, accepted, refused)
		})
	}
}

func mustDoc(t testing.TB, raw []byte) map[string]any {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// FuzzFastPathAgreesWithSchema starts from the valid sample of every run
// type, applies a mutation chosen by the fuzzer (op) to a value chosen by it
// (sel), varied by extra, and checks fast accept ⇔ oracle accept and equal
// decodes; a second mutation is applied on top when op2 is set, and extra
// itself is also tried as a whole envelope (random bytes).
func FuzzFastPathAgreesWithSchema(f *testing.F) {
	c := newCodec(f)
	goods := make([][]byte, len(runTypes))
	for i, typ := range runTypes {
		goods[i] = sampleRaw(f, c, typ)
	}
	for i := range runTypes {
		for op := range mutations {
			f.Add(uint8(i), uint16(op*3+i), uint8(op), uint8(0), "X")
		}
	}
	f.Add(uint8(0), uint16(0), uint8(0), uint8(0), `{"specversion":"1.0","id":"x","source":"s","type":"dev.gantry.run.started","time":"2026-11-26T09:30:00Z","data":{"run":"r1","run":"r2"}}`)
	f.Fuzz(func(t *testing.T, typ uint8, sel uint16, op, op2 uint8, extra string) {
		agree(t, c, []byte(extra))
		raw := mutate(goods[int(typ)%len(goods)], int(sel), int(op), extra)
		if raw == nil {
			return
		}
		agree(t, c, raw)
		if op2 != 0 {
			if raw2 := mutate(raw, int(sel)/3+int(op2), int(op2), extra); raw2 != nil {
				agree(t, c, raw2)
			}
		}
	})
}

// TestFastPathBoundaries pins the edges of each rule: the value just inside
// and just outside, checked against the schema path as well.
func TestFastPathBoundaries(t *testing.T) {
	c := newCodec(t)
	type tc struct {
		typ  string
		path string // slash-separated, under data unless it starts with "/"
		val  any    // drop when it is del
		want bool
	}
	const del = "\x00del"
	long := func(n int) string { return strings.Repeat("a", n) }
	longRune := func(n int) string { return strings.Repeat("é", n) }
	cases := []tc{
		{events.TypeStageStarted, "attempt", 1, true},
		{events.TypeStageStarted, "attempt", 0, false},
		{events.TypeStageStarted, "attempt", -1, false},
		{events.TypeStageStarted, "attempt", json.Number("1.0"), false}, // schema: integer; encoding/json: no
		{events.TypeStageStarted, "stage", long(64), true},
		{events.TypeStageStarted, "stage", long(65), false},
		{events.TypeStageStarted, "stage", "9-_", true},
		{events.TypeStageStarted, "stage", "_a", false},
		{events.TypeStageStarted, "stage", "a\n", false},
		{events.TypeStageStarted, "stage", nil, false},
		{events.TypeStageStarted, "Stage", "x", false},
		{events.TypeRunFailed, "stage", del, true},
		{events.TypeRunFailed, "stage", "", false},
		{events.TypeRunFailed, "reason", "", false},
		{events.TypeRunFailed, "reason", "x", true},
		{events.TypeActionStarted, "worker", longRune(256), true},
		{events.TypeActionStarted, "worker", longRune(257), false},
		{events.TypeActionStarted, "worker", "", false},
		{events.TypeActionFailed, "worker", "", false},
		{events.TypeActionFailed, "worker", del, true},
		{events.TypeActionHeartbeat, "beat", 0, false},
		{events.TypeActionHeartbeat, "beat", 1, true},
		{events.TypeArtifactStored, "artifact/sha256", strings.Repeat("0", 64), true},
		{events.TypeArtifactStored, "artifact/sha256", strings.Repeat("A", 64), false},
		{events.TypeArtifactStored, "artifact/sha256", strings.Repeat("0", 63), false},
		{events.TypeArtifactStored, "artifact/size", 0, true},
		{events.TypeArtifactStored, "artifact/size", -1, false},
		{events.TypeArtifactStored, "artifact/size", json.Number("9223372036854775807"), true},
		{events.TypeArtifactStored, "artifact/size", json.Number("9223372036854775808"), false},
		{events.TypeArtifactStored, "artifact/key", long(1024), true},
		{events.TypeArtifactStored, "artifact/key", long(1025), false},
		{events.TypeArtifactStored, "artifact/key", "a/b.c_d-e", true},
		{events.TypeArtifactStored, "artifact/key", "/a", false},
		{events.TypeArtifactStored, "artifact/extra", 1, false},
		{events.TypeLogArchived, "truncated", false, true},
		{events.TypeLogArchived, "truncated", del, true},
		{events.TypeLogArchived, "truncated", "true", false},
		{events.TypeLogArchived, "lines", 0, true},
		{events.TypeLogArchived, "lines", -1, false},
		{events.TypeTestReported, "durationSeconds", 0, true},
		{events.TypeTestReported, "durationSeconds", json.Number("-0"), true},
		{events.TypeTestReported, "durationSeconds", json.Number("-1e-400"), false},
		{events.TypeTestReported, "durationSeconds", json.Number("1e400"), false}, // schema yes, float64 no
		{events.TypeTestReported, "failures", []any{}, false},
		{events.TypeTestReported, "failures", del, true},
		{events.TypeTestReported, "failures/1/durationSeconds", 0, false},
		{events.TypeTestReported, "failures/1/durationSeconds", json.Number("1e-400"), true},
		{events.TypeTestReported, "failures/1/durationSeconds", json.Number("-1e-400"), false},
		{events.TypeTestReported, "failures/1/suite", "", false},
		{events.TypeTestReported, "failures/1/name", "", false},
		{events.TypeActionSucceeded, "variables", map[string]any{}, false},
		{events.TypeActionSucceeded, "variables", map[string]any{"_a.b-c": ""}, true},
		{events.TypeActionSucceeded, "variables", map[string]any{"1a": "x"}, false},
		{events.TypeActionSucceeded, "variables", map[string]any{long(128): "x"}, true},
		{events.TypeActionSucceeded, "variables", map[string]any{long(129): "x"}, false},
		{events.TypeActionSucceeded, "variables", map[string]any{"a": 1}, false},
		{events.TypeActionSucceeded, "outputs", []any{}, false},
		{events.TypeActionSucceeded, "outputs", nil, false},
		{events.TypeActionDispatched, "task/id", "run/a/stage/b/action/c/attempt/10", true},
		{events.TypeActionDispatched, "task/id", "run/a/stage/b/action/c/attempt/01", false},
		{events.TypeActionDispatched, "task/id", "run/a/stage/b/action/c/attempt/1/x", false},
		{events.TypeActionDispatched, "task/timeoutSeconds", 0, false},
		{events.TypeActionDispatched, "task/timeoutSeconds", 1, true},
		{events.TypeActionDispatched, "task/outputs", []any{"a", "a"}, false},
		{events.TypeActionDispatched, "task/inputs/0/name", "", false},
		{events.TypeActionDispatched, "task/configuration", map[string]any{}, false},
		{events.TypeRunRequested, "revision", 0, true},
		{events.TypeRunRequested, "revision", -1, false},
		{events.TypeRunRequested, "trigger/kind", "poll", true},
		{events.TypeRunRequested, "trigger/kind", "cron", false},
		{events.TypeRunRequested, "trigger/id", long(512), true},
		{events.TypeRunRequested, "trigger/id", long(513), false},
		{events.TypeRunRequested, "trigger/commit", "", false},
		{events.TypeRunRequested, "trigger/actor", del, true},
		{events.TypeRunRequested, "definition/stages", []any{}, false},
		{events.TypeRunRequested, "definition/stages/0/actions", []any{}, false},
		{events.TypeRunRequested, "definition/stages/0/actions/0/runOrder", 999, true},
		{events.TypeRunRequested, "definition/stages/0/actions/0/runOrder", 1000, false},
		{events.TypeRunRequested, "definition/stages/0/actions/0/runOrder", 0, false},
		{events.TypeRunRequested, "definition/stages/0/actions/0/inputs", []any{"x", "x"}, false},
		{events.TypeRunRequested, "definition/stages/0/actions/0/Name", "x", false},
		{events.TypeRunRequested, "definition/variables", del, true},
		// The envelope.
		{events.TypeRunStarted, "/traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true},
		{events.TypeRunStarted, "/trace-parent", "x", false},
		{events.TypeRunStarted, "/" + long(20), []any{map[string]any{}}, true},
		{events.TypeRunStarted, "/" + long(21), 1, false},
		{events.TypeRunStarted, "/Type", events.TypeRunStarted, false},
		{events.TypeRunStarted, "/\u017fource", "x", false},
		{events.TypeRunStarted, "/subject", "", true},
		{events.TypeRunStarted, "/subject", del, true},
		{events.TypeRunStarted, "/subject", nil, false},
		{events.TypeRunStarted, "/dataschema", "", true},
		{events.TypeRunStarted, "/datacontenttype", "", false},
		{events.TypeRunStarted, "/datacontenttype", del, true},
		{events.TypeRunStarted, "/specversion", "1.0", true},
		{events.TypeRunStarted, "/specversion", json.Number("1.0"), false},
		{events.TypeRunStarted, "/id", longRune(512), true},
		{events.TypeRunStarted, "/id", longRune(513), false},
		{events.TypeRunStarted, "/source", "", false},
		{events.TypeRunStarted, "/time", nil, false},
		{events.TypeRunStarted, "/time", "2026-11-26T09:30:00+14:00", true},
		{events.TypeRunStarted, "/time", "yesterday", false},
		{events.TypeRunStarted, "/data", nil, false},
		{events.TypeRunStarted, "/data", del, false},
	}
	for _, k := range cases {
		t.Run(fmt.Sprintf("%s:%s=%v", k.typ[len("dev.gantry."):], k.path, k.val), func(t *testing.T) {
			doc := mustDoc(t, sampleRaw(t, c, k.typ))
			var target any = doc["data"]
			p := k.path
			if strings.HasPrefix(p, "/") {
				target, p = doc, p[1:]
			}
			keys := strings.Split(p, "/")
			for _, key := range keys[:len(keys)-1] {
				switch v := target.(type) {
				case map[string]any:
					target = v[key]
				case []any:
					i, _ := strconv.Atoi(key)
					target = v[i]
				}
			}
			m, ok := target.(map[string]any)
			if !ok {
				t.Fatalf("no object at %s", k.path)
			}
			if s, ok := k.val.(string); ok && s == del {
				delete(m, keys[len(keys)-1])
			} else {
				m[keys[len(keys)-1]] = k.val
			}
			raw, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := agree(t, c, raw); got != k.want {
				_, err := c.Decode(raw)
				t.Errorf("accepted = %v, want %v (%v)", got, k.want, err)
			}
		})
	}
}

// TestFastPathRefusesRepeatedNames covers the one intended difference from
// the schema path.
func TestFastPathRefusesRepeatedNames(t *testing.T) {
	c := newCodec(t)
	good := string(sampleRaw(t, c, events.TypeActionSucceeded))
	for name, raw := range map[string]string{
		"envelope member": strings.Replace(good, `{`, `{"type":"dev.gantry.run.started",`, 1),
		"data member":     strings.Replace(good, `"data":{`, `"data":{"worker":"w",`, 1),
		// encoding/json merges the two maps: the old path decoded an A the schema (seeing only the second) never checked.
		"map":     strings.Replace(good, `"variables":{`, `"variables":{"A":"x"},"variables":{`, 1),
		"map key": strings.Replace(good, `"variables":{`, `"variables":{"VERSION":"x",`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if raw := []byte(raw); string(raw) == good {
				t.Fatal("edit did not apply")
			}
			_, err := c.Decode([]byte(raw))
			if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), "duplicate property") {
				t.Errorf("Decode error = %v, want a duplicate property", err)
			}
			agree(t, c, []byte(raw))
		})
	}
}

// TestFastPathMessages checks that the fast path names the field the way the
// schema path does.
func TestFastPathMessages(t *testing.T) {
	c := newCodec(t)
	good := string(sampleRaw(t, c, events.TypeActionDispatched))
	for edit, want := range map[[2]string]string{
		{`"attempt":2`, `"attempt":0`}:                       "dev.gantry.action.dispatched: at /task/attempt: minimum: got 0, want 1",
		{`"kind":"build"`, `"kind":"bad kind"`}:              "at /task/kind: 'bad kind' does not match pattern",
		{`"sha256":"`, `"sha256":"X`}:                        "at /task/inputs/0/sha256:",
		{`"timeoutSeconds":1800`, `"timeoutSeconds":"1800"`}: "at /task/timeoutSeconds: got string, want number",
		{`"specversion":"1.0"`, `"specversion":"2.0"`}:       "envelope: at /specversion:",
	} {
		raw := strings.Replace(good, edit[0], edit[1], 1)
		if raw == good {
			t.Fatalf("edit %q did not apply", edit)
		}
		_, err := c.Decode([]byte(raw))
		if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Decode error = %v, want %q", edit[1], err, want)
		}
	}
}

// fastSchemasDigest is the SHA-256 of the schemas the fast path implements
// (envelope.json, defs.json and the run types' schemas, in runTypes order).
// A change to any of them must be made to fastcodec.go and validate.go too;
// then update the digest.
const fastSchemasDigest = "99d8c18a2d12973a1174e3fe7263914bb7200a60a7688759de91c62f810c46a9"

func TestFastPathSchemasUnchanged(t *testing.T) {
	var all []byte
	for _, name := range append([]string{"envelope.json", "defs.json"}, eventSchemaFiles()...) {
		b, err := schemas.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	if got := digest(string(all)); got != fastSchemasDigest {
		t.Errorf("the schemas the fast path implements changed (digest %s): make the same change in fastcodec.go and validate.go, then update fastSchemasDigest", got)
	}
}

func eventSchemaFiles() []string {
	var out []string
	for _, typ := range runTypes {
		out = append(out, "events/"+typ+".json")
	}
	return out
}
