//go:build unix && !linux

package runner

import (
	"os/exec"
	"syscall"
)

// waitExit waits for and reaps the command's shell. Outside Linux the
// process group ID is not kept reserved after the shell exits.
func waitExit(cmd *exec.Cmd) exitStatus { return reapNow(cmd) }

func reap(*exec.Cmd) {}

// liveGroups returns which of the process groups still have a process
// (zombies included, which only makes the grace period wait longer).
func liveGroups(pgids map[int]bool) map[int]bool {
	live := map[int]bool{}
	for p := range pgids {
		if syscall.Kill(-p, 0) == nil {
			live[p] = true
		}
	}
	return live
}
