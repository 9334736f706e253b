package yamldoc

import (
	"errors"
	"strings"
	"testing"
)

var (
	errSyntax   = errors.New("syntax")
	errTooLarge = errors.New("too large")
	errSchema   = errors.New("schema")
	errUnknown  = errors.New("unknown")
	errMissing  = errors.New("missing")
	errUnsup    = errors.New("unsupported")
	testErrs    = Sentinels{errSyntax, errTooLarge, errSchema, errUnknown, errMissing, errUnsup}
	testLimits  = Limits{MaxFileSize: 1 << 10, MaxNodes: 50, Noun: "a test file"}
)

func decode(t *testing.T, src string, fields func(d *Decoder) []Field) error {
	t.Helper()
	d := &Decoder{File: "t.yml", Errs: testErrs, RefusedFormat: "refused: %s"}
	if body := d.Load([]byte(src), testLimits); body != nil {
		root, ok := d.Resolve(body, "")
		if ok {
			d.Object(root, "", PosOf(root), fields(d), map[string]string{"old": "use new"})
		}
	}
	return d.Err()
}

func TestDecoder(t *testing.T) {
	str := func(d *Decoder) func(Entry, string) {
		return func(e Entry, p string) {
			if n, ok := d.Resolve(e.Value, p); ok {
				if _, kind, ok := Scalar(n); !ok || kind != "string" {
					d.MustBe(e.At, p, "a string", n)
				}
			}
		}
	}
	fields := func(d *Decoder) []Field {
		return []Field{{Name: "name", Required: true, Decode: str(d)}, {Name: "image", Decode: str(d)}}
	}
	for _, tc := range []struct {
		src  string
		want string // the error text, one problem a line, "" for none
		is   []error
	}{
		{"name: x\n", "", nil},
		{"", "t.yml: the file is empty", []error{errSyntax}},
		{"name: x\n---\nname: y\n", "t.yml:3:1: more than one YAML document; a test file is one document", []error{errSyntax}},
		{"name: \xff\n", "t.yml:1:7: not valid UTF-8", []error{errSyntax}},
		{strings.Repeat("#", 2000), "t.yml: the file is larger than 1024 bytes", []error{errTooLarge}},
		{"a: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nname: x\n",
			"t.yml: more than 50 YAML nodes once aliases are expanded", []error{errTooLarge}},
		{"nmae: x\n", "t.yml:1:1: nmae: unknown field; did you mean name?\nt.yml:1:1: name: missing required field",
			[]error{errMissing, errUnknown, errSchema}},
		{"name: x\nold: 1\nzzz: 2\n", "t.yml:2:1: old: refused: use new\nt.yml:3:1: zzz: unknown field; expected name or image",
			[]error{errUnsup, errUnknown, errSchema}},
		{"name: x\nname: y\n", `t.yml:2:1: mapping key "name" already defined at [1:1]`, []error{errSyntax}},
		{"<<: {a: 1}\nname: x\n", "t.yml:1:1: merge keys (<<) are not supported", []error{errSyntax}},
		{"name: !!int 3\n", "t.yml:1:7: name: YAML tag !!int is not supported (only !!str is)", []error{errSyntax}},
		{"name: *nope\n", "t.yml:1:7: name: alias *nope is not defined before it is used", []error{errSyntax}},
		{"name: [x]\n", "t.yml:1:1: name: must be a string, got a list", []error{errSchema}},
		{"name: !!str 3\n\"a.b\": 1\n", `t.yml:2:1: ["a.b"]: unknown field; expected name or image`, []error{errUnknown}},
	} {
		err := decode(t, tc.src, fields)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q:\ngot:  %s\nwant: %s", tc.src, got, tc.want)
		}
		for _, want := range tc.is {
			if !errors.Is(err, want) {
				t.Errorf("%q: errors.Is(err, %v) = false", tc.src, want)
			}
		}
	}
}

func TestPaths(t *testing.T) {
	if got := Index(Join(Join("", "phases"), "build"), 2); got != "phases.build[2]" {
		t.Errorf("got %q", got)
	}
	if got := Join("env", "a.b"); got != `env["a.b"]` {
		t.Errorf("got %q", got)
	}
	doc := map[string]any{"a": []any{map[string]any{"b-c": 1}}}
	if got := PointerPath(doc, []string{"a", "0", "b-c"}); got != "a[0].b-c" {
		t.Errorf("PointerPath = %q", got)
	}
	if got := OrList([]string{"a", "b", "c"}); got != "a, b or c" {
		t.Errorf("OrList = %q", got)
	}
	if got := Distance("kitten", "sitting"); got != 3 {
		t.Errorf("Distance = %d", got)
	}
	if got := InvalidUTF8([]byte("ab\ncé\xff")); got != (Pos{Line: 2, Col: 3}) {
		t.Errorf("InvalidUTF8 = %v", got)
	}
}
