package consume

import "testing"

// TestWindow: an unbroken run of delivery numbers keeps its start; a gap
// (another conductor took those deliveries) starts a new one, and numbering
// that goes back (the consumer was recreated) a new epoch, so a run last
// seen before either is read again.
func TestWindow(t *testing.T) {
	var w Window
	for _, tc := range []struct {
		n     uint64
		since uint64
		epoch uint32
	}{
		{5, 5, 0}, // the first delivery this process sees
		{6, 5, 0},
		{7, 5, 0},
		{9, 9, 0}, // 8 went elsewhere
		{10, 9, 0},
		{3, 3, 1}, // numbering restarted
		{4, 3, 1},
		{4, 4, 2}, // a repeat is no continuation
	} {
		if got := w.See(tc.n); got != (Span{tc.since, tc.epoch}) {
			t.Errorf("see(%d) = %+v, want since %d epoch %d", tc.n, got, tc.since, tc.epoch)
		}
	}
	s := Span{Since: 9, Epoch: 1}
	for _, tc := range []struct {
		dseq  uint64
		epoch uint32
		want  bool
	}{
		{9, 1, true}, {12, 1, true}, {8, 1, false}, {0, 1, false}, {12, 0, false},
	} {
		if got := s.Covers(Position{tc.dseq, tc.epoch}); got != tc.want {
			t.Errorf("span %+v covers(%d, %d) = %v", s, tc.dseq, tc.epoch, got)
		}
	}
}
