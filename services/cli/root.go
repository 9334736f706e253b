// Package cli is the gantry command line: cobra commands that call the
// services' packages. Every read command takes -o json.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/logging"
	"github.com/gantry-ci/gantry/services/stack"
)

// ExitError carries a process exit code through cobra without printing a
// second message (run watch exits 1 when the run failed, say).
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit %d", e.Code) }

// globals are the flags every command shares.
type globals struct {
	natsURL string
	dataDir string
	creds   string
	auth    stack.Auth
	// replicas and placement size the streams a provisioning command creates.
	replicas     int
	placeCluster string
	placeTags    []string
	// passwordFile holds the NATS password (--nats-password-file).
	passwordFile string
	output       string
	logFormat    string
	logLevel     string
	stdout       io.Writer
	stderr       io.Writer

	// notifyRules is the rules file of the notifier `gantry dev` runs.
	notifyRules string
}

func (g *globals) target() stack.Target {
	t := stack.Target{URL: g.natsURL, DataDir: g.dataDir, Creds: g.creds, Auth: g.auth}
	t.Streams.Replicas = g.replicas
	if g.placeCluster != "" || len(g.placeTags) > 0 {
		t.Streams.Placement = &jetstream.Placement{Cluster: g.placeCluster, Tags: g.placeTags}
	}
	return t
}

func (g *globals) open(ctx context.Context, name string, provision bool) (*stack.Conn, error) {
	t := g.target()
	if g.passwordFile != "" && t.Auth.Password == "" {
		// A file, as `gantry nats config` writes and systemd's
		// LoadCredential hands over, keeps the password out of the
		// process's environment and command line.
		b, err := os.ReadFile(g.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("NATS password file: %w", err)
		}
		t.Auth.Password = strings.TrimSpace(string(b))
	}
	return stack.Open(ctx, t, name, provision)
}

func (g *globals) logger(role string) zerolog.Logger {
	return logging.New(role, logging.Options{Format: g.logFormat, Level: g.logLevel, Out: g.stderr})
}

func (g *globals) json() bool { return g.output == "json" }

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	var ee ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		fmt.Fprintln(stderr, "gantry:", err)
		return 1
	}
	return 0
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "gantry",
		Short: "Event-driven CI/CD: pipelines, build and test fleets, deployments, on NATS JetStream",
		Long: `Gantry runs pipelines of source, build and test stages on fleets of workers that
trade CloudEvents on NATS JetStream. Every fact about a run is an event in the
log; everything else is folded from it.

Start here:
  gantry dev                      run everything locally on an embedded NATS server
  gantry demo                     run the example pipeline once and print a summary
  gantry pipeline apply -f FILE   add or update a pipeline
  gantry run start PIPELINE       start a run, then: gantry run watch RUN

Without --nats (or NATS_URL), commands use the server a running 'gantry dev'
announced in --data-dir, or open the data directory themselves.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.natsURL, "nats", os.Getenv("NATS_URL"), "NATS server URL (env NATS_URL); empty means the embedded data directory")
	pf.StringVar(&g.dataDir, "data-dir", envOr("GANTRY_DATA_DIR", ".gantry"), "data directory of the embedded server (env GANTRY_DATA_DIR)")
	pf.StringVar(&g.creds, "creds", os.Getenv("NATS_CREDS"), "NATS credentials file (env NATS_CREDS)")
	pf.StringVar(&g.auth.User, "nats-user", os.Getenv("NATS_USER"), "NATS user, one per role (env NATS_USER; see gantry nats config)")
	pf.StringVar(&g.auth.Password, "nats-password", os.Getenv("NATS_PASSWORD"), "NATS user's password (env NATS_PASSWORD; prefer the variable)")
	pf.StringVar(&g.passwordFile, "nats-password-file", os.Getenv("NATS_PASSWORD_FILE"), "file holding the NATS user's password (env NATS_PASSWORD_FILE)")
	pf.StringVar(&g.auth.CAFile, "tls-ca", os.Getenv("NATS_CA"), "CA certificate that signed the NATS server's (env NATS_CA)")
	pf.StringVar(&g.auth.CertFile, "tls-cert", os.Getenv("NATS_CERT"), "client certificate, where the server verifies clients (env NATS_CERT)")
	pf.StringVar(&g.auth.KeyFile, "tls-key", os.Getenv("NATS_KEY"), "client certificate's key (env NATS_KEY)")
	pf.IntVar(&g.replicas, "replicas", envInt("GANTRY_REPLICAS"), "replicas of the streams and buckets Gantry creates (env GANTRY_REPLICAS); 0: 1 on one server, 3 on a cluster; existing streams are never shrunk")
	pf.StringVar(&g.placeCluster, "placement-cluster", os.Getenv("GANTRY_PLACEMENT_CLUSTER"), "JetStream cluster to place new streams and buckets on (env GANTRY_PLACEMENT_CLUSTER)")
	pf.StringSliceVar(&g.placeTags, "placement-tags", nil, "server tags new streams and buckets must be placed on (comma-separated)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format of read commands: table or json")
	pf.StringVar(&g.logFormat, "log-format", "auto", "service log format: auto (pretty on a terminal), pretty or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "service log level: debug, info, warn, error")
	root.AddCommand(
		pipelineCmd(g), runCmd(g), logsCmd(g), eventsCmd(g), artifactCmd(g), stateCmd(g),
		devCmd(g), demoCmd(g), junitCmd(g), secretCmd(g), natsCmd(g),
	)
	root.AddCommand(gatewayCmd(g), tokenCmd(g))
	root.AddCommand(stageCmd(g))
	root.AddCommand(roleCmds(g)...)
	root.AddCommand(deployCmds(g)...)
	root.AddCommand(triggerCmd(g))
	root.AddCommand(approveCmds(g)...)
	root.AddCommand(notifyCmd(g))
	return root
}

// envInt is the integer in environment variable k, or 0.
func envInt(k string) int {
	n, _ := strconv.Atoi(os.Getenv(k))
	return n
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
