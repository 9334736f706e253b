package events

import (
	"encoding/json"
	"strings"
	"testing"
)

var validJSONCases = []string{
	``, ` `, `{}`, `[]`, ` {} `, `{`, `}`, `[`, `]`, `{]`, `[}`, `{}{}`, `{} x`, `{}` + "\x00",
	`0`, `-0`, `01`, `-`, `-a`, `1.`, `1.5`, `.5`, `1e`, `1e5`, `1E+5`, `1e-05`, `1.5e3`, `-1.0E-2`, `1e+`, `1ee5`, `+1`, `0x10`, `1 2`,
	`true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `nullnull`,
	`""`, `"a"`, `"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\u00e9"`, `"\u00E9"`, `"\u00g9"`, `"\u12"`, `"\x"`, `"\'"`, `"` + "\x01" + `"`, `"` + "\x7f" + `"`,
	`"` + "\xff\xfe" + `"`, `"` + "é" + `"`, `"abc`, `"\`, `"\u`,
	`{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":[1,{"b":null}],"c":"d"}`, `{"a":1}}`,
	`[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[[[]]]`, `[[[]]`, ` [ 1 , 2 ] `, "[\t1\n,\r2]", "[\v1]",
	`{"specversion":"1.0","id":"x","data":{"run":"r","attempt":1}}`,
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	cases := append([]string{}, validJSONCases...)
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		cases = append(cases, strings.Repeat("[", depth)+strings.Repeat("]", depth),
			strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth))
	}
	for _, c := range cases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			name := c
			if len(name) > 40 {
				name = name[:40] + "…"
			}
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", name, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range validJSONCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	ev := []byte(`{"specversion":"1.0","id":"run/01a215e8-2fb7-7328-990a-9d9505b7ea83/stage/Build/1/action/build/1/started","source":"/gantry/worker","type":"dev.gantry.action.started","subject":"01a215e8-2fb7-7328-990a-9d9505b7ea83","time":"2026-11-26T03:31:07.123456789Z","datacontenttype":"application/json","data":{"run":"01a215e8-2fb7-7328-990a-9d9505b7ea83","stage":"Build","action":"build","attempt":1,"worker":"w-1"}}`)
	for _, c := range []struct {
		name  string
		valid func([]byte) bool
	}{{"gantry", validJSON}, {"encoding-json", json.Valid}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(ev)))
			for b.Loop() {
				if !c.valid(ev) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
