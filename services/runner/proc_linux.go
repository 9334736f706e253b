//go:build linux

package runner

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waitExit waits until the command's shell exits but does not reap it: the
// zombie keeps its process ID, and so its process group ID, reserved until
// reap, so that signalling the group later can never hit an unrelated group
// that happened to get the same number.
func waitExit(cmd *exec.Cmd) exitStatus {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return reapNow(cmd)
		}
	}
	code, status := sigchld(&info)
	switch code {
	case cldExited:
		return exitStatus{code: status}
	case cldKilled, cldDumped:
		return exitStatus{code: 128 + status, signaled: true, signal: syscall.Signal(status)}
	}
	return exitStatus{code: -1}
}

// si_code values of SIGCHLD (<asm-generic/siginfo.h>).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// sigchld reads si_code and si_status of a SIGCHLD siginfo, which
// x/sys/unix leaves in padding: the union follows si_signo, si_errno and
// si_code, aligned to a pointer, and starts with si_pid, si_uid, si_status.
func sigchld(info *unix.Siginfo) (code, status int) {
	raw := (*[unsafe.Sizeof(unix.Siginfo{})]byte)(unsafe.Pointer(info))
	off := 12
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	status = int(*(*int32)(unsafe.Pointer(&raw[off+8])))
	return int(info.Code), status
}

// reap collects a zombie left by waitExit.
func reap(cmd *exec.Cmd) { _ = cmd.Wait() }

// liveGroups returns which of the process groups still have a process that
// is not a zombie, reading /proc.
func liveGroups(pgids map[int]bool) map[int]bool {
	live := map[int]bool{}
	if len(pgids) == 0 {
		return live
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return liveGroupsByKill(pgids)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces and ')'.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(data[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		pgrp, err := strconv.Atoi(string(f[2]))
		if err == nil && pgids[pgrp] {
			live[pgrp] = true
		}
	}
	return live
}

func liveGroupsByKill(pgids map[int]bool) map[int]bool {
	live := map[int]bool{}
	for p := range pgids {
		if syscall.Kill(-p, 0) == nil {
			live[p] = true
		}
	}
	return live
}
