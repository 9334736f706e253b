package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Check is one health check: nil when healthy.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// NATSConnected is healthy while the connection is up and the server
// answers a round trip: a service cut off from NATS does nothing useful.
func NATSConnected(nc *nats.Conn) Check {
	return Check{Name: "nats", Check: func(ctx context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("connection %s", s)
		}
		return nc.FlushWithContext(ctx)
	}}
}

// Handler serves /metrics from set and /healthz from checks: 200 with
// every check "ok", or 503 naming what failed, as JSON.
func Handler(set *Set, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(set.Registry, promhttp.HandlerOpts{Registry: set.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		res := map[string]string{}
		status := http.StatusOK
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				res[c.Name] = err.Error()
				status = http.StatusServiceUnavailable
			} else {
				res[c.Name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"healthy": status == http.StatusOK, "checks": res})
	})
	return mux
}

// Serve serves h on l until ctx ends, then shuts the server down.
func Serve(ctx context.Context, l net.Listener, log zerolog.Logger, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Info().Str("addr", l.Addr().String()).Msg("serving /metrics and /healthz")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("metrics server: %w", err)
	}
}
