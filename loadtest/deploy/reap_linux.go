package deploy

import (
	"errors"
	"syscall"
	"time"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// becomeSubreaper makes the servers the hooks start in the background (and
// so orphan) children of this process rather than of PID 1, which in a
// container often reaps nobody: reapChildren can then collect them.
func becomeSubreaper() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
}

// reapChildren waits, up to a bound, for every child process that has been
// killed, so that none stays a zombie. Call it only when no os/exec command
// of this process is running.
func reapChildren(within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil: // ECHILD: no child left
			return
		case pid > 0:
			continue
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
