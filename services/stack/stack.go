// Package stack connects Gantry's programs to NATS: to a server named by URL,
// to the server a running `gantry dev` announced in its data directory, or
// to an embedded server it starts on the data directory itself (offline
// use of the CLI). It also composes the service roles for `gantry dev`.
package stack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
	"github.com/gantry-ci/gantry/events/natsd"
	"github.com/gantry-ci/gantry/schemas"
	"github.com/gantry-ci/gantry/services/access"
)

// Target says where NATS is.
type Target struct {
	// URL of a NATS server; empty means the data directory.
	URL string
	// DataDir of the embedded server.
	DataDir string
	// Creds, if set, is a NATS credentials file.
	Creds string
	// Auth is the user and TLS material to connect with. Empty, and the
	// server is a `gantry dev` announced in DataDir, the dev server's
	// admin credentials are used.
	Auth Auth
	// Streams sizes what Open provisions: replicas (zero: 1 on one server,
	// 3 on a cluster) and placement.
	Streams bus.Config
	// Local, if set, is a server in this process (`gantry dev`): Open
	// connects to it in process, without a socket, and ignores URL.
	Local *natsd.Server
}

// Conn is an open connection with the pieces every command needs.
type Conn struct {
	Bus       *bus.Bus
	Validator *schemas.Validator
	// Embedded is the server this process started, if any.
	Embedded *natsd.Server
	closers  []func()
}

// Close closes the connection and stops an embedded server.
func (c *Conn) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// URLFile is where `gantry dev` announces its server inside the data directory.
func URLFile(dataDir string) string { return filepath.Join(dataDir, "nats.url") }

// JetStreamDir is the embedded server's store inside the data directory.
func JetStreamDir(dataDir string) string { return filepath.Join(dataDir, "jetstream") }

// Open connects as name. With provision set it creates the streams and
// buckets (services do; read commands do not need to).
func Open(ctx context.Context, t Target, name string, provision bool) (*Conn, error) {
	c := &Conn{}
	url := t.URL
	auth := t.Auth
	var local []nats.Option
	if t.Local != nil {
		url, local = t.Local.ClientURL(), []nats.Option{t.Local.InProcess()}
	}
	if url == "" {
		if b, err := os.ReadFile(URLFile(t.DataDir)); err == nil {
			announced := strings.TrimSpace(string(b))
			if auth == (Auth{}) {
				// The dev server's data directory holds its users; a
				// local CLI acts as its admin.
				if a, ok, err := DevAuth(t.DataDir, access.Admin); err != nil {
					return nil, err
				} else if ok {
					auth = a
				}
			}
			probe := append([]nats.Option{nats.Name(name), nats.Timeout(time.Second)}, auth.Options()...)
			if nc, err := nats.Connect(announced, probe...); err == nil {
				nc.Close()
				url = announced
			}
		}
	}
	if url == "" {
		if t.DataDir == "" {
			return nil, errors.New("no NATS server: pass --nats URL, set NATS_URL, or give a --data-dir")
		}
		// A data directory `gantry dev` ran in keeps its state in the
		// GANTRY account: open it with dev's configuration, as its admin,
		// or the streams would look empty.
		nopts := natsd.Options{DataDir: JetStreamDir(t.DataDir), Port: -1}
		auth = Auth{}
		if a, ok, err := DevAuth(t.DataDir, access.Admin); err != nil {
			return nil, err
		} else if ok {
			nopts.ConfigFile, auth = DevServerConfig(t.DataDir), a
		}
		srv, err := natsd.Start(nopts)
		if err != nil {
			return nil, err
		}
		c.Embedded = srv
		c.closers = append(c.closers, srv.Shutdown)
		url = srv.ClientURL()
	}
	opts := append(auth.Options(), local...)
	if t.Creds != "" {
		opts = append(opts, nats.UserCredentials(t.Creds))
	}
	nc, err := bus.Connect(url, name, opts...)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.closers = append(c.closers, func() { _ = nc.Drain(); nc.Close() })
	codec, err := events.NewCodec()
	if err != nil {
		c.Close()
		return nil, err
	}
	v, err := schemas.New()
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Validator = v
	b, err := bus.New(nc, codec)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Bus = b
	// Only admin may create streams and buckets; other users find them
	// made (`gantry nats provision`, or `gantry dev`).
	if provision && auth.mayProvision() {
		err = b.Provision(ctx, t.Streams)
	} else {
		err = b.Open(ctx)
		if err != nil && c.Embedded != nil {
			// A fresh data directory: provision it so reads find empty streams.
			err = b.Provision(ctx, t.Streams)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
