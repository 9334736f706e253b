package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/gantry-ci/gantry/services/worker"
)

func logsCmd(g *globals) *cobra.Command {
	var follow bool
	c := &cobra.Command{
		Use:   "logs RUN [STAGE/ACTION | ACTION]",
		Short: "Print a run's action logs; -f follows them live until the run ends",
		Long: `Print the output of a run's actions. Ended actions are read from their
archive in the object store; with -f, output is streamed live from the log
stream until the run ends.`,
		Example: `  gantry logs 0197... build/compile
  gantry logs 0197... -f`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			runID := args[0]
			filter := ""
			if len(args) == 2 {
				filter = args[1]
			}
			if follow {
				return followLogs(cmd.Context(), g, conn.Bus.JetStream(), runID, filter)
			}
			st, err := foldRun(cmd.Context(), conn, runID)
			if err != nil {
				return err
			}
			store, err := conn.Bus.JetStream().ObjectStore(cmd.Context(), events.BucketArtifacts)
			if err != nil {
				return err
			}
			s := artifact.NewStore(conn.Bus.JetStream(), store)
			found := false
			for _, stg := range st.Stages {
				for _, a := range stg.Actions {
					if !matches(filter, stg.Name, a.Name) || a.Log == nil {
						continue
					}
					found = true
					if err := printArchived(cmd.Context(), g, s, stg.Name, a); err != nil {
						return err
					}
				}
			}
			if !found {
				return fmt.Errorf("no archived log for %q in run %s yet; follow live output with -f", filter, runID)
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "stream output live until the run ends")
	return c
}

func matches(filter, stage, action string) bool {
	return filter == "" || filter == action || filter == stage+"/"+action || filter == stage
}

func printArchived(ctx context.Context, g *globals, s *artifact.Store, stage string, a run.Action) error {
	r, _, err := s.Open(ctx, a.Log.Key)
	if err != nil {
		return fmt.Errorf("open log of %s/%s: %w", stage, a.Name, err)
	}
	defer r.Close()
	if g.json() {
		b, _ := io.ReadAll(r)
		return g.printJSON(map[string]any{"stage": stage, "action": a.Name, "attempt": a.Attempt, "log": string(b)})
	}
	fmt.Fprintf(g.stdout, "==> %s/%s (attempt %d) <==\n", stage, a.Name, a.Attempt)
	_, err = io.Copy(g.stdout, r)
	return err
}

// followLogs streams the run's live log subjects from the start until the
// run's events say it ended.
func followLogs(ctx context.Context, g *globals, js jetstream.JetStream, runID, filter string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	subj := "gantry.logs." + runID + ".>"
	cons, err := js.OrderedConsumer(ctx, events.StreamLogs, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return err
	}
	// End when the run ends: watch its events beside the logs.
	go func() {
		evc, err := js.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"gantry.events.*." + runID}})
		if err != nil {
			return
		}
		it, err := evc.Messages()
		if err != nil {
			return
		}
		defer it.Stop()
		context.AfterFunc(ctx, it.Stop)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			var env events.Envelope
			if json.Unmarshal(m.Data(), &env) == nil && (env.Type == events.TypeRunSucceeded || env.Type == events.TypeRunFailed) {
				// Let the last lines arrive, then stop.
				cancelAfterDrain(ctx, cancel)
				return
			}
		}
	}()
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	context.AfterFunc(ctx, it.Stop)
	for {
		m, err := it.Next()
		if err != nil {
			return nil
		}
		parts := strings.SplitN(m.Subject(), ".", 5)
		if len(parts) != 5 {
			continue
		}
		stage, action := parts[3], parts[4]
		if !matches(filter, stage, action) {
			continue
		}
		phase := m.Headers().Get(worker.HeaderPhase)
		if g.json() {
			b, _ := json.Marshal(map[string]string{"stage": stage, "action": action, "phase": phase, "line": string(m.Data())})
			fmt.Fprintln(g.stdout, string(b))
			continue
		}
		fmt.Fprintf(g.stdout, "%s/%s [%s] %s\n", stage, action, phase, m.Data())
	}
}

func cancelAfterDrain(ctx context.Context, cancel context.CancelFunc) {
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		cancel()
	}()
}
