//go:build unix

package runner

import (
	"os/exec"
	"syscall"
)

const supported = true

// exitStatus is how a command's shell ended.
type exitStatus struct {
	code     int // the exit code, 128+n for signal n, -1 if unknown
	signaled bool
	signal   syscall.Signal
	err      error // waiting failed
}

// setGroup makes the command the leader of a new process group, so that the
// group, children and grandchildren, can be signalled together.
func setGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminateGroup asks every process of the group to stop: SIGTERM, and
// SIGCONT so that a stopped process runs to receive it.
func terminateGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	_ = syscall.Kill(-pgid, syscall.SIGCONT)
}

// killGroup kills every process of the group.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

func statusFromWait(ws syscall.WaitStatus) exitStatus {
	switch {
	case ws.Exited():
		return exitStatus{code: ws.ExitStatus()}
	case ws.Signaled():
		return exitStatus{code: 128 + int(ws.Signal()), signaled: true, signal: ws.Signal()}
	}
	return exitStatus{code: -1}
}

// reapNow waits for and reaps the process, for platforms (or failures)
// where it cannot be left unreaped.
func reapNow(cmd *exec.Cmd) exitStatus {
	err := cmd.Wait()
	if cmd.ProcessState == nil {
		return exitStatus{code: -1, err: err}
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		return statusFromWait(ws)
	}
	return exitStatus{code: cmd.ProcessState.ExitCode()}
}
