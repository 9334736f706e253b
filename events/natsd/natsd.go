// Package natsd runs an embedded nats-server with JetStream: the default
// engine of `gantry dev`, `gantry demo`, offline CLI commands and tests.
package natsd

import (
	"errors"
	"fmt"
	"github.com/nats-io/nats.go"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure the embedded server.
type Options struct {
	// DataDir holds JetStream's file store. Required.
	DataDir string
	// Host and Port to listen on; Port -1 picks a free port, 0 means 4222.
	Host string
	Port int
	// ServerName names the server in logs and cluster views.
	ServerName string
	// Logs sends the server's own log to stderr.
	Logs bool
	// ConfigFile, when set, is a nats-server configuration (accounts,
	// users and their permissions, TLS) to run with, as `gantry dev`
	// writes from services/access. DataDir, Host, Port and ServerName
	// still apply over it.
	ConfigFile string
	// Cluster, when its Name is set, joins the server to a JetStream
	// cluster: a node listening for routes on Cluster.Host:Cluster.Port
	// and dialling Routes (nats-route://host:port of the other nodes).
	Cluster Cluster
}

// Cluster configures the route listener of a clustered server.
type Cluster struct {
	Name   string
	Host   string
	Port   int
	Routes []string
}

// ErrNotReady is returned when the server does not accept connections in time.
var ErrNotReady = errors.New("embedded nats-server not ready")

// Server is a running embedded nats-server.
type Server struct {
	ns *server.Server
}

// Start starts the server and waits until it accepts connections.
func Start(o Options) (*Server, error) {
	if o.DataDir == "" {
		return nil, fmt.Errorf("embedded nats-server: data directory is required")
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	name := o.ServerName
	if name == "" {
		name = "gantry-embedded"
	}
	opts := &server.Options{}
	if o.ConfigFile != "" {
		var err error
		if opts, err = server.ProcessConfigFile(o.ConfigFile); err != nil {
			return nil, fmt.Errorf("embedded nats-server configuration: %w", err)
		}
	}
	opts.ServerName = name
	opts.Host = host
	opts.Port = o.Port
	opts.JetStream = true
	opts.StoreDir = o.DataDir
	opts.NoSigs = true
	opts.MaxPayload = 8 << 20
	opts.JetStreamMaxMemory = 256 << 20
	// The write-ahead files are fsynced at this interval; tests and the
	// dev loop do not need per-message fsync.
	opts.SyncInterval = 2 * time.Minute
	// The embedded server serves no monitoring endpoint.
	opts.HTTPHost, opts.HTTPPort = "", 0
	if o.Cluster.Name != "" {
		routes, err := parseRoutes(o.Cluster.Routes)
		if err != nil {
			return nil, err
		}
		opts.Cluster.Name = o.Cluster.Name
		opts.Cluster.Host = o.Cluster.Host
		if opts.Cluster.Host == "" {
			opts.Cluster.Host = host
		}
		opts.Cluster.Port = o.Cluster.Port
		opts.Routes = routes
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server in %s: %w", o.DataDir, err)
	}
	if o.Logs {
		ns.ConfigureLogger()
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("%w: data directory %s", ErrNotReady, o.DataDir)
	}
	return &Server{ns: ns}, nil
}

func parseRoutes(rs []string) ([]*url.URL, error) {
	var out []*url.URL
	for _, r := range rs {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("embedded nats-server: route %q: %w", r, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// JetStreamReady reports whether the server's JetStream is up; in a
// cluster, that its meta group has a leader.
func (s *Server) JetStreamReady() bool {
	return s.ns.JetStreamEnabled() && s.ns.JetStreamIsCurrent()
}

// Shutdown stops the server and waits for it to finish.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// InProcess is a connection option that connects to this server in
// process, through a pipe instead of a loopback socket: the services of
// `gantry dev` run in the server's process, and a round trip without the
// socket's system calls takes about half the time (loadtest noop: a stage
// transition, five round trips, p50 1.4 ms over loopback, 0.8 ms in
// process).
func (s *Server) InProcess() nats.Option { return nats.InProcessServer(s.ns) }
