package events_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events"
)

// TestEventSizeBound checks that an event over MaxEventBytes, though every
// field is within its own bound, is refused by Encode and by Decode with
// ErrTooLarge: an event the bus cannot carry must fail once, with a reason,
// not on every redelivery of what produced it.
func TestEventSizeBound(t *testing.T) {
	c := newCodec(t)
	p := samples()[events.TypeRunRequested].(events.RunRequested)
	def := p.Definition
	def.Stages = append([]events.StageDef(nil), def.Stages...)
	st := def.Stages[0]
	st.Actions = append([]events.ActionDef(nil), st.Actions...)
	a := st.Actions[0]
	fill := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = strings.Repeat("x", events.MaxConfigurationValue)
		}
		return m
	}
	a.Configuration = fill(events.MaxEventBytes/events.MaxConfigurationValue - 1)
	st.Actions[0] = a
	def.Stages[0] = st
	p.Definition = def
	under := sampleEvent(t, p)
	raw, err := c.Encode(under)
	if err != nil {
		t.Fatalf("Encode of a %d-byte event: %v", len(raw), err)
	}
	if _, err := c.Decode(raw); err != nil {
		t.Fatalf("Decode of a %d-byte event: %v", len(raw), err)
	}

	a.Configuration = fill(events.MaxEventBytes/events.MaxConfigurationValue + 1)
	st.Actions[0] = a
	p.Definition.Stages[0] = st
	over, err := events.New(under.ID, under.Source, under.Subject, under.Time, p)
	if err == nil {
		_, err = c.Encode(over)
	}
	if !errors.Is(err, events.ErrInvalidEvent) || !errors.Is(err, events.ErrTooLarge) {
		t.Fatalf("Encode of an oversized event: error = %v, want ErrInvalidEvent and ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(events.MaxEventBytes)) {
		t.Errorf("error %q does not name the limit", err)
	}
	big := append(bytes.Clone(raw[:len(raw)-1]), []byte(`,"pad":"`+strings.Repeat("y", events.MaxEventBytes)+`"}`)...)
	if _, err := c.Decode(big); !errors.Is(err, events.ErrTooLarge) {
		t.Fatalf("Decode of a %d-byte envelope: error = %v, want ErrTooLarge", len(big), err)
	}
}

func TestTruncateReason(t *testing.T) {
	for _, tc := range []struct {
		in      string
		wantLen int
		cut     bool
	}{
		{"short", 5, false},
		{strings.Repeat("a", events.MaxReason), events.MaxReason, false},
		{strings.Repeat("a", events.MaxReason+1), events.MaxReason, true},
		{strings.Repeat("é", 3*events.MaxReason), events.MaxReason, true},
	} {
		got := events.TruncateReason(tc.in)
		if n := len([]rune(got)); n != tc.wantLen {
			t.Errorf("TruncateReason(%d runes) has %d runes, want %d", len([]rune(tc.in)), n, tc.wantLen)
		}
		if strings.HasSuffix(got, "…") != tc.cut {
			t.Errorf("TruncateReason(%d runes) cut = %v, want %v", len([]rune(tc.in)), !tc.cut, tc.cut)
		}
	}
}
