package artifact_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events/natsd"
)

// childServerEnv, when set to a directory, makes the test binary run only an
// embedded JetStream server with its data there: it prints the client URL
// and serves until its standard input closes. TestStreamingMemory uses it to
// measure the client's heap without the server's.
const childServerEnv = "GANTRY_ARTIFACT_TEST_NATS_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childServerEnv); dir != "" {
		os.Exit(serveChild(dir))
	}
	os.Exit(m.Run())
}

func serveChild(dir string) int {
	s, err := natsd.Start(natsd.Options{DataDir: dir, Port: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(s.ClientURL())
	io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	return 0
}

// startChildServer runs a JetStream server in a child process for t and
// returns its client URL.
func startChildServer(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childServerEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	url, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v", err)
	}
	return strings.TrimSpace(url)
}
