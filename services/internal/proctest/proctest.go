// Package proctest helps tests that kill processes check what is left.
package proctest

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Alive reports whether process pid runs. A killed child that nobody
// reaped yet (a zombie) answers signal 0 like a live one, so its state in
// /proc decides.
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err)
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
