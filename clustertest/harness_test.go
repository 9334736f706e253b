package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/rs/zerolog"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/devcert"
	"github.com/gantry-ci/gantry/services/stack"
)

// natsImage is the project's nats-server image, built by `make images`
// (deploy/docker/build-images.sh); the tests build it when it is missing.
const natsImage = "gantry-nats:dev"

func TestMain(m *testing.M) {
	// No reaper container (it would have to be pulled): every test removes
	// its own containers and network. Mapped ports are dialled on loopback.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	os.Exit(m.Run())
}

// cluster is three gantry-nats containers in one JetStream cluster on a
// network of their own, each publishing its client port on 127.0.0.1 only.
type cluster struct {
	t     *testing.T
	nodes map[string]testcontainers.Container // by server name
	urls  []string                            // tls://127.0.0.1:<mapped>
	auth  stack.Auth                          // admin over TLS
}

// needImages skips t without a Docker engine and builds the images when
// they are missing (the same script as `make images`).
func needImages(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster fault tests start containers: skipped with -short")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
	if exec.Command("docker", "image", "inspect", natsImage).Run() == nil {
		return
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s missing: building the project's images with deploy/docker/build-images.sh", natsImage)
	cmd := exec.Command("sh", "deploy/docker/build-images.sh")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build images: %v\n%s", err, out)
	}
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	needImages(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	names := []string{"nats1", "nats2", "nats3"}
	certs, err := devcert.Create(filepath.Join(dir, "tls"), names...)
	if err != nil {
		t.Fatal(err)
	}
	spec := access.Spec{}
	cfg := access.Defaults()
	cfg.Listen, cfg.Monitor, cfg.StoreDir = "0.0.0.0:4222", "", "/data"
	cfg.ClusterName, cfg.ClusterListen = "gantry", "0.0.0.0:6222"
	for _, n := range names {
		cfg.Routes = append(cfg.Routes, "nats-route://"+n+":6222")
	}
	cfg, err = access.WithEnvPasswords(cfg, spec)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, u := range cfg.Users {
		env[u.PasswordEnv] = randomHex(t)
	}
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatalf("container network: %v", err)
	}
	testcontainers.CleanupNetwork(t, nw)

	c := &cluster{t: t, nodes: map[string]testcontainers.Container{},
		auth: stack.Auth{User: access.Admin, Password: env[access.PasswordEnv(access.Admin)], CAFile: certs.CA}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, name := range names {
		node := cfg
		node.ServerName = name
		text, err := node.Render()
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			req := testcontainers.ContainerRequest{
				Image:          natsImage,
				Name:           fmt.Sprintf("gantry-clustertest-%s-%s", name, randomHex(t)[:8]),
				Networks:       []string{nw.Name},
				NetworkAliases: map[string][]string{nw.Name: {name}},
				Env:            env,
				ExposedPorts:   []string{"4222/tcp"},
				Files: []testcontainers.ContainerFile{
					{Reader: strings.NewReader(text), ContainerFilePath: "/etc/nats/nats-server.conf", FileMode: 0o644},
					{HostFilePath: certs.CA, ContainerFilePath: "/etc/gantry/tls/ca.pem", FileMode: 0o644},
					{HostFilePath: certs.ServerCert, ContainerFilePath: "/etc/gantry/tls/server.pem", FileMode: 0o644},
					// A throwaway key of this test only, readable by the image's user.
					{HostFilePath: certs.ServerKey, ContainerFilePath: "/etc/gantry/tls/server-key.pem", FileMode: 0o644},
				},
				HostConfigModifier: func(hc *container.HostConfig) {
					hc.PortBindings = mobynet.PortMap{mobynet.MustParsePort("4222/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
				},
				WaitingFor: wait.ForLog("Server is ready").WithStartupTimeout(time.Minute),
			}
			ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
			testcontainers.CleanupContainer(t, ctr)
			if err != nil {
				errs <- fmt.Errorf("start %s: %w", name, err)
				return
			}
			mu.Lock()
			c.nodes[name] = ctr
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, name := range names {
		port, err := c.nodes[name].MappedPort(ctx, "4222/tcp")
		if err != nil {
			t.Fatal(err)
		}
		c.urls = append(c.urls, fmt.Sprintf("tls://127.0.0.1:%s", port.Port()))
	}
	// Provision (as admin) once the cluster has a meta leader: R3.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		octx, ocancel := context.WithTimeout(ctx, 20*time.Second)
		conn, err := c.open(octx, "provision", true)
		ocancel()
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("provision the container cluster: %v", err)
		}
	}
	return c
}

// dumpLogs logs the tail of every node's output, for a failed test.
func (c *cluster) dumpLogs() {
	for name, n := range c.nodes {
		r, err := n.Logs(context.Background())
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(r)
		r.Close()
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		c.t.Logf("%s:\n%s", name, strings.Join(lines, "\n"))
	}
}

// open connects to all three nodes (the client fails over between them).
func (c *cluster) open(ctx context.Context, name string, provision bool) (*stack.Conn, error) {
	return stack.Open(ctx, stack.Target{URL: strings.Join(c.urls, ","), Auth: c.auth}, name, provision)
}

// mustOpen is open for a test: the connection closes when t ends.
func (c *cluster) mustOpen(name string) *bus.Bus {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := c.open(ctx, name, false)
	if err != nil {
		c.t.Fatalf("connect %s: %v", name, err)
	}
	c.t.Cleanup(conn.Close)
	return conn.Bus
}

// kill stops a node at once (SIGKILL), as a crash would.
func (c *cluster) kill(name string) {
	c.t.Helper()
	zero := time.Duration(0)
	if err := c.nodes[name].Stop(context.Background(), &zero); err != nil {
		c.t.Fatalf("kill %s: %v", name, err)
	}
	c.t.Logf("killed %s", name)
}

// start starts a killed node again; it rejoins and catches up.
func (c *cluster) start(name string) {
	c.t.Helper()
	if err := c.nodes[name].Start(context.Background()); err != nil {
		c.t.Fatalf("restart %s: %v", name, err)
	}
}

// eventsLeader is the server leading the GANTRY_EVENTS stream's group.
func eventsLeader(ctx context.Context, b *bus.Bus) (string, error) {
	s, err := b.JetStream().Stream(ctx, events.StreamEvents)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", events.StreamEvents)
	}
	if info.Config.Replicas != 3 {
		return "", fmt.Errorf("stream %s has %d replicas, want 3", events.StreamEvents, info.Config.Replicas)
	}
	return info.Cluster.Leader, nil
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func quiet() zerolog.Logger { return zerolog.Nop() }
