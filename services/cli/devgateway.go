package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/gateway"
	"github.com/gantry-ci/gantry/services/gateway/auth"
	"github.com/gantry-ci/gantry/services/stack"
)

// devAdminToken names the admin token `gantry dev` makes at each start.
const devAdminToken = "dev-admin"

// startDevGateway serves the HTTP API for `gantry dev` as the gateway
// user, with a token file in the data directory holding a fresh admin
// token, which it prints: there is no anonymous access, even locally.
func startDevGateway(ctx context.Context, g *globals, l *local, listen string) (stop func(), err error) {
	dataDir, err := filepath.Abs(g.dataDir)
	if err != nil {
		return nil, err
	}
	file := defaultTokenFile(dataDir)
	if err := auth.Revoke(file, devAdminToken); err != nil && !errors.Is(err, auth.ErrNoToken) {
		return nil, err
	}
	tok, _, err := auth.Create(file, devAdminToken, []auth.Role{auth.Admin})
	if err != nil {
		return nil, err
	}
	toks, err := auth.Load(file)
	if err != nil {
		return nil, err
	}
	a, _, err := stack.DevAuth(dataDir, access.Gateway)
	if err != nil {
		return nil, err
	}
	conn, err := stack.Open(ctx, stack.Target{Local: l.srv, Auth: a}, "gantry-gateway", false)
	if err != nil {
		return nil, err
	}
	log := g.logger(stack.RoleGateway).With().Str("service", stack.RoleGateway).Logger()
	gopts, closeGW, err := stack.GatewayOptions(conn, log, stack.RoleOptions{Tokens: toks, Insecure: true})
	if err != nil {
		conn.Close()
		return nil, err
	}
	srv, err := gateway.New(gopts)
	if err != nil {
		closeGW()
		conn.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(g.stderr, "%s is taken (%v); the gateway uses a free port\n", listen, err)
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			closeGW()
			conn.Close()
			return nil, err
		}
	}
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(gctx, ln) }()
	fmt.Fprintf(g.stdout, "  HTTP API and UI at http://%s (admin token %s; token file %s)\n", ln.Addr(), tok, file)
	fmt.Fprintf(g.stdout, "    curl -H 'Authorization: Bearer %s' http://%s/api/v1/runs\n", tok, ln.Addr())
	return func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(g.stderr, "gateway:", err)
		}
		closeGW()
		conn.Close()
	}, nil
}
