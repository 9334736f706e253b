package events_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

// FuzzDecode feeds Decode arbitrary bytes, seeded with a valid event of every
// type and with near misses. Decode must never panic and must refuse with
// ErrInvalidEvent (or ErrUnknownType); what it accepts must encode again, both
// as it came and rebuilt from the typed payload, and decode to an equal
// payload, so consumers never act on an event they could not republish.
func FuzzDecode(f *testing.F) {
	c := newCodec(f)
	for _, typ := range events.Types {
		raw, err := c.Encode(sampleEvent(f, samples()[typ]))
		if err != nil {
			f.Fatalf("encode sample %s: %v", typ, err)
		}
		f.Add(raw)
	}
	for _, s := range []string{
		``,
		`null`,
		`[]`,
		`{}`,
		`"dev.gantry.run.started"`,
		`{"specversion":"1.0"}`,
		`{"specversion":"1.0","id":"run/r1/started","source":"/gantry/pipeline","type":"dev.gantry.run.started","time":"2026-11-26T09:30:00Z","data":{"run":"r1"}}`,
		`{"specversion":"1.0","id":"run/r1/started","source":"/gantry/pipeline","type":"dev.gantry.run.started","time":"2026-11-26T09:30:00Z","data":{"run":"r1","Run":"r2"}}`,
		`{"specversion":"1.0","id":"run/r1/started","source":"/gantry/pipeline","type":"dev.gantry.run.started","time":"2026-11-26T09:30:00+14:00","data":{"run":"r1"},"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`,
		`{"specversion":"1.0","id":"x","source":"s","type":"dev.gantry.run.nope","time":"2026-11-26T09:30:00Z","data":{}}`,
		`{"specversion":"1.0","id":"x","source":"s","type":"dev.gantry.action.started","time":"2026-11-26T09:30:00Z","data":{"run":"r1","stage":"b","action":"a","attempt":1.0,"worker":"w"}}`,
		`{"specversion":"1.0","id":"x","source":"s","type":"dev.gantry.test.reported","time":"2026-11-26T09:30:00Z","data":{"run":"r1","stage":"b","action":"a","attempt":1,"total":1e400,"passed":0,"failed":0,"skipped":0,"durationSeconds":1e400}}`,
		`{"specversion":"1.0","id":"x","source":"s","type":"dev.gantry.run.started","time":"2026-11-26T09:30:00Z","data":{"run":"r1"}} trailing`,
		"\xff\xfe{\"specversion\":\"1.0\"}",
		// encoding/json matches keys case-insensitively: a second spelling
		// must not replace the attribute that was validated.
		`{"specversion":"1.0","id":"run/r1/started","source":"/gantry/pipeline","type":"dev.gantry.run.started","time":"2026-11-26T09:30:00Z","dAtAContenttYpe":"text/plain","data":{"run":"r1"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := c.Decode(raw)
		if err != nil {
			if !errors.Is(err, events.ErrInvalidEvent) && !errors.Is(err, events.ErrUnknownType) {
				t.Fatalf("Decode error wraps neither ErrInvalidEvent nor ErrUnknownType: %v", err)
			}
			return
		}
		if e.Payload == nil || e.Payload.EventType() != e.Type {
			t.Fatalf("Decode of a %s gave payload %#v", e.Type, e.Payload)
		}
		if y := e.Time.UTC().Year(); y < 0 || y > 9999 {
			// events.New moves the time to UTC, where an offset can carry
			// year 0000 or 9999 out of RFC 3339's range; not a payload matter.
			t.Skipf("time %s leaves RFC 3339's years in UTC", e.Time)
		}
		if err := roundTrip(c, e); err != nil {
			t.Fatalf("Decode accepted %s but %v", raw, err)
		}
		// Decode validated the bytes it received; check that what it decoded
		// from them is what it validated.
		var env map[string]json.RawMessage
		if err := json.Unmarshal(raw, &env); err == nil {
			var typ string
			_ = json.Unmarshal(env["type"], &typ)
			if typ != e.Type {
				t.Fatalf("validated type %q but decoded type %q", typ, e.Type)
			}
		}
	})
}
