package sample

import (
	"fmt"
	"testing"
)

func TestAdd(t *testing.T) {
	if Add(1, 2) != 3 {
		t.Fatal("1+2 != 3")
	}
}

func TestAddWrong(t *testing.T) {
	t.Log("checking 2+2")
	if got := Add(2, 2); got != 5 {
		t.Errorf("Add(2, 2) = %d, want 5", got)
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("needs a database")
}

func TestTable(t *testing.T) {
	for _, tc := range []struct{ a, b, want int }{{1, 1, 2}, {2, 3, 6}} {
		t.Run(fmt.Sprintf("%d+%d", tc.a, tc.b), func(t *testing.T) {
			t.Parallel()
			if got := Add(tc.a, tc.b); got != tc.want {
				t.Errorf("got %d, want %d <&> \"quoted\"", got, tc.want)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	fmt.Println("plain stdout from a passing test")
}
