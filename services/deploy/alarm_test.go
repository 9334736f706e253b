package deploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

// TestParseAlarm: every refused alarm has a reason that says what was
// wrong; none reads "<nil>", as the reason of an alarm naming an invalid
// group did.
func TestParseAlarm(t *testing.T) {
	for _, tc := range []struct {
		name, subject, data string
		want                string // "" means accepted
	}{
		{"good", "gantry.alarms.web", `{"group":"web","name":"error-rate"}`, ""},
		{"not json", "gantry.alarms.web", `{`, "unreadable alarm"},
		{"no group", "gantry.alarms.web", `{"name":"x"}`, `alarm group ""`},
		{"invalid group", "gantry.alarms.web", `{"group":"a b"}`, `alarm group "a b"`},
		{"other group's subject", "gantry.alarms.web", `{"group":"db"}`, `raised on gantry.alarms.web, not gantry.alarms.db`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseAlarm(tc.subject, []byte(tc.data))
			if tc.want == "" {
				if err != nil || a.Group != "web" {
					t.Fatalf("parseAlarm = %+v, %v; want group web", a, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %s", tc.data)
			}
			if !errors.Is(err, events.ErrInvalidEvent) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "<nil>") {
				t.Errorf("reason %q: want ErrInvalidEvent naming %q, never <nil>", err, tc.want)
			}
		})
	}
}
