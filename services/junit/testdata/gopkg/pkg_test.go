package gopkg

import "testing"

func TestPasses(t *testing.T) {}

func TestFails(t *testing.T) { t.Fatal("wanted 2, got 3") }

func TestSkips(t *testing.T) { t.Skip("needs a database") }

func TestParent(t *testing.T) {
	t.Run("child", func(t *testing.T) {})
}
