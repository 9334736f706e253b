package deploy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"
)

// The environment that turns the benchmark's own binary into the tiny
// application its ApplicationStart hook starts in the background.
const (
	// EnvHTTPPort, when set at start-up, makes MaybeServe serve /healthz on
	// 127.0.0.1 at that port instead of returning.
	EnvHTTPPort = "GANTRY_BENCH_HTTP_PORT"
	// EnvParentPID is the benchmark's process ID: the server exits soon
	// after that process is gone.
	EnvParentPID = "GANTRY_BENCH_PARENT_PID"
)

// serverMaxLife bounds a server whose parent never goes away.
const serverMaxLife = 30 * time.Minute

// MaybeServe returns at once unless EnvHTTPPort is set; then it serves
// /healthz (200, "ok") until the process named by EnvParentPID is gone, 30
// minutes pass or it is killed, and exits. Call it first thing in main (and
// in TestMain of a test that runs the benchmark).
func MaybeServe() {
	port := os.Getenv(EnvHTTPPort)
	if port == "" {
		return
	}
	if err := serve(port, os.Getenv(EnvParentPID)); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest deploy server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serve(port, parent string) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), serverMaxLife)
	defer cancel()
	if pid, err := strconv.Atoi(parent); err == nil && pid > 0 {
		go func() {
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
						cancel()
						return
					}
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
