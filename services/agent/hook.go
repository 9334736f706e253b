package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// errTimeout is returned by runScript when a hook ran past its timeout.
var errTimeout = errors.New("timed out")

// runScript runs one hook script in its own process group, output to out (a
// file, so that background processes the script leaves behind do not keep
// a pipe open). On timeout or ctx done the whole group is killed. A script
// that is not executable runs with /bin/sh. With as set the script runs as
// that user, with its HOME, USER and LOGNAME; nil runs it as the agent.
func runScript(ctx context.Context, script, dir string, env []string, as *hookUser, timeout time.Duration, out *os.File) (int, error) {
	fi, err := os.Stat(script)
	if err != nil {
		return -1, fmt.Errorf("script %s: %w", script, err)
	}
	var cmd *exec.Cmd
	if fi.Mode()&0o111 != 0 {
		cmd = exec.Command(script)
	} else {
		cmd = exec.Command("/bin/sh", script)
	}
	cmd.Dir = dir
	// Exactly env: a nil Env would make exec pass the agent's own
	// environment (NATS_CREDS among it) to the hook.
	cmd.Env = append([]string{}, env...)
	cmd.Stdin = nil
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if as != nil {
		cmd.SysProcAttr.Credential = as.Cred
		cmd.Env = as.environ(env)
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start %s: %w", script, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	kill := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	select {
	case err := <-done:
		if err == nil {
			return 0, nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), fmt.Errorf("exited with status %d", ee.ExitCode())
		}
		return -1, err
	case <-timer.C:
		kill()
		<-done
		return -1, fmt.Errorf("%w after %s; its process group was killed", errTimeout, timeout)
	case <-ctx.Done():
		kill()
		<-done
		return -1, ctx.Err()
	}
}

// tail returns the last n bytes of a file, from a line start when it can.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	if off > 0 {
		for i, c := range b {
			if c == '\n' {
				b = b[i+1:]
				break
			}
		}
	}
	return string(b)
}
