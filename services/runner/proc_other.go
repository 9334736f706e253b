//go:build !unix

package runner

import (
	"os/exec"
	"syscall"
)

// Builds need process groups; Run refuses to start without them.
const supported = false

type exitStatus struct {
	code     int
	signaled bool
	signal   syscall.Signal
	err      error
}

func setGroup(*exec.Cmd)                   {}
func terminateGroup(int)                   {}
func killGroup(int)                        {}
func waitExit(cmd *exec.Cmd) exitStatus    { return exitStatus{code: -1, err: cmd.Wait()} }
func reap(*exec.Cmd)                       {}
func liveGroups(map[int]bool) map[int]bool { return map[int]bool{} }
