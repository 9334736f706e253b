// Command loadtest drives Gantry under load and reports what it reached.
//
//	loadtest noop [-runs 1000] [-stages 3] [-concurrency 64] [-inflight 200] [-low-load-runs 200] [-o json|table]
//	              [-cpuprofile file] [-memprofile file] [-trace file] [-pub-sync 5000] [-pub-async 100000]
//	loadtest deploy [-hosts 20] [-runs 5] [-pub-sync 1000] [-execs 200] [-timeout 2m] [-back-to-back]
//
// It exits 1 when a run failed or did not finish, 2 on bad usage, 3 when
// every run succeeded but a target of the report was missed (so `make
// bench` fails on a regression), unless -targets=false.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/rs/zerolog"

	"github.com/gantry-ci/gantry/loadtest/deploy"
	"github.com/gantry-ci/gantry/loadtest/noop"
)

func main() {
	// The deploy benchmark's hooks start this binary as their application.
	deploy.MaybeServe()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, "usage: loadtest noop|deploy [flags]   (loadtest noop -h lists the flags)")
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "noop":
		return runNoop(args[1:], stdout, stderr)
	case "deploy":
		return runDeploy(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "loadtest: unknown benchmark %q (known: noop, deploy)\n", args[0])
		return 2
	}
}

func runNoop(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg noop.Config
	fs.IntVar(&cfg.Runs, "runs", 1000, "runs to request")
	fs.IntVar(&cfg.Stages, "stages", 3, "stages of the pipeline, one no-op action each")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "the worker's task slots")
	fs.IntVar(&cfg.Inflight, "inflight", 200, "most runs requested but not yet ended at once")
	fs.BoolVar(&cfg.TCP, "tcp", false, "connect the services over loopback TCP instead of in process, as `gantry dev` does")
	fs.IntVar(&cfg.LowLoadRuns, "low-load-runs", 200, "runs requested one at a time before the loaded phase; the transition latency targets are measured on them (negative skips)")
	fs.IntVar(&cfg.Requesters, "requesters", 4, "goroutines appending run.requested")
	fs.IntVar(&cfg.PubSync, "pub-sync", 5000, "sync JetStream publishes for the NATS baseline (negative skips)")
	fs.IntVar(&cfg.PubAsync, "pub-async", 100000, "async JetStream publishes for the NATS baseline (negative skips)")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "bound on the runs phase (default 10m)")
	out := fs.String("o", "json", "output: json or table")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the runs phase to this file")
	tracefile := fs.String("trace", "", "write an execution trace of the runs phase to this file")
	memprofile := fs.String("memprofile", "", "write an allocation profile, taken when the runs end, to this file")
	logLevel := fs.String("log-level", "warn", "level of the services' logs on stderr")
	targets := fs.Bool("targets", true, "exit 3 when a target of the report is missed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest noop: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *out != "json" && *out != "table" {
		fmt.Fprintf(stderr, "loadtest noop: -o must be json or table, got %q\n", *out)
		return 2
	}
	// Every size has a flag default, so zero here was asked for: refuse it
	// rather than let the package default it.
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "loadtest noop: %v\n", err)
		return 2
	}
	lvl, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest noop: -log-level: %v\n", err)
		return 2
	}
	cfg.Log = zerolog.New(stderr).Level(lvl).With().Timestamp().Logger()
	for _, o := range []struct {
		path string
		to   *io.Writer
	}{{*cpuprofile, &cfg.CPUProfile}, {*tracefile, &cfg.Trace}, {*memprofile, &cfg.MemProfile}} {
		if o.path == "" {
			continue
		}
		f, err := os.Create(o.path)
		if err != nil {
			fmt.Fprintf(stderr, "loadtest noop: %v\n", err)
			return 1
		}
		defer f.Close()
		*o.to = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := noop.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest noop: %v\n", err)
		return 1
	}
	if *out == "table" {
		err = rep.WriteTable(stdout)
	} else {
		err = rep.WriteJSON(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest noop: %v\n", err)
		return 1
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "loadtest noop: %d of %d runs did not succeed\n", rep.FailedRuns, rep.Runs)
		return 1
	}
	return targetsExit(stderr, "noop", *targets, rep.Unmet())
}

func runDeploy(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest deploy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg deploy.Config
	fs.IntVar(&cfg.Hosts, "hosts", 20, "agents in the deployment group")
	fs.IntVar(&cfg.Runs, "runs", 5, "deployments, one after the other")
	fs.IntVar(&cfg.PubSync, "pub-sync", 1000, "sync JetStream publishes for the NATS baseline (negative skips)")
	fs.IntVar(&cfg.Execs, "execs", 200, "executions of a trivial hook script for the exec baseline (negative skips)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "bound on each deployment")
	fs.BoolVar(&cfg.BackToBack, "back-to-back", false, "start each deployment as soon as the previous ended, without waiting for the deploy service to consume its events")
	logLevel := fs.String("log-level", "warn", "level of the services' and agents' logs on stderr")
	targets := fs.Bool("targets", true, "exit 3 when the report's target is missed")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest deploy: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "loadtest deploy: %v\n", err)
		return 2
	}
	lvl, err := zerolog.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest deploy: -log-level: %v\n", err)
		return 2
	}
	cfg.Log = zerolog.New(stderr).Level(lvl).With().Timestamp().Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := deploy.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest deploy: %v\n", err)
		return 1
	}
	if err := rep.WriteJSON(stdout); err != nil {
		fmt.Fprintf(stderr, "loadtest deploy: %v\n", err)
		return 1
	}
	if !rep.OK() {
		fmt.Fprintf(stderr, "loadtest deploy: %d of %d deployments succeeded\n", rep.RunsSucceeded, rep.Runs)
		return 1
	}
	return targetsExit(stderr, "deploy", *targets, rep.Unmet())
}

// targetsExit reports missed targets on stderr and gives the exit code.
func targetsExit(stderr io.Writer, bench string, enforce bool, unmet []string) int {
	for _, u := range unmet {
		fmt.Fprintf(stderr, "loadtest %s: target missed: %s\n", bench, u)
	}
	if enforce && len(unmet) > 0 {
		return 3
	}
	return 0
}
