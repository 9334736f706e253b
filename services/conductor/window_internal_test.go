package conductor

import (
	"slices"
	"testing"
)

// TestEcho: a conductor's own appends are recognised once, in order; an
// echo that went to another conductor is forgotten when a later one comes.
func TestEcho(t *testing.T) {
	en := &entry{own: []uint64{10, 11, 14}}
	for _, tc := range []struct {
		seq  uint64
		want bool
		left []uint64
	}{
		{9, false, []uint64{10, 11, 14}}, // someone else's, older
		{10, true, []uint64{11, 14}},
		{10, false, []uint64{11, 14}}, // a redelivery of an echo already seen
		{14, true, nil},               // 11 came back elsewhere
		{15, false, nil},
	} {
		if got := en.echo(tc.seq); got != tc.want || !slices.Equal(en.own, tc.left) {
			t.Errorf("echo(%d) = %v leaving %v, want %v leaving %v", tc.seq, got, en.own, tc.want, tc.left)
		}
	}
}
