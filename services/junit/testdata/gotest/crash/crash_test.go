// Package crash has a test that panics, which ends the test binary.
package crash

import "testing"

func TestBefore(t *testing.T) {}

func TestPanics(t *testing.T) {
	var m map[string]int
	m["boom"] = 1
}

func TestNeverReached(t *testing.T) {}
