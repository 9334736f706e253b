package cli

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/pipelinefile"
	"github.com/gantry-ci/gantry/services/source"
)

func pipelineCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Short: "Add, list and show pipelines"}
	var files []string
	apply := &cobra.Command{
		Use:   "apply -f FILE [-f FILE...]",
		Short: "Validate pipeline files and store them as the pipelines' current revision",
		Long: `Validate pipeline files and store each as its pipeline's next revision.
Every problem is reported at once with file:line:column and the field, and
nothing is stored unless every file is valid. Runs already under way keep the
revision they started with.`,
		Example: "  gantry pipeline apply -f examples/hello/pipeline.yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("give at least one pipeline file with -f FILE")
			}
			var defs []events.Definition
			var errs []error
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				d, err := pipelinefile.Parse(f, data)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				defs = append(defs, d)
			}
			if err := errors.Join(errs...); err != nil {
				return fmt.Errorf("nothing applied:\n%w", err)
			}
			c, err := g.open(cmd.Context(), "gantry-cli", true)
			if err != nil {
				return err
			}
			defer c.Close()
			kv, err := c.Bus.JetStream().KeyValue(cmd.Context(), events.BucketPipelines)
			if err != nil {
				return err
			}
			type applied struct {
				Pipeline string `json:"pipeline"`
				Revision uint64 `json:"revision"`
				Stages   int    `json:"stages"`
			}
			var out []applied
			for _, d := range defs {
				rev, err := source.Pipelines{KV: kv}.Put(cmd.Context(), d)
				if err != nil {
					return err
				}
				out = append(out, applied{d.Name, rev, len(d.Stages)})
			}
			if g.json() {
				return g.printJSON(out)
			}
			for _, a := range out {
				fmt.Fprintf(g.stdout, "pipeline %s applied: revision %d, %d stages\n", a.Pipeline, a.Revision, a.Stages)
			}
			return nil
		},
	}
	apply.Flags().StringArrayVarP(&files, "file", "f", nil, "pipeline file (repeatable)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List pipelines with their current revision",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer c.Close()
			kv, err := c.Bus.JetStream().KeyValue(cmd.Context(), events.BucketPipelines)
			if err != nil {
				return err
			}
			type row struct {
				Pipeline string   `json:"pipeline"`
				Revision uint64   `json:"revision"`
				Stages   []string `json:"stages"`
			}
			rows := []row{}
			keys, err := kv.ListKeys(cmd.Context())
			if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
				return err
			}
			if keys != nil {
				for k := range keys.Keys() {
					d, rev, err := source.Pipelines{KV: kv}.Get(cmd.Context(), k)
					if err != nil {
						return err
					}
					r := row{Pipeline: k, Revision: rev}
					for _, s := range d.Stages {
						r.Stages = append(r.Stages, s.Name)
					}
					rows = append(rows, r)
				}
			}
			if g.json() {
				return g.printJSON(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PIPELINE\tREVISION\tSTAGES")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%v\n", r.Pipeline, r.Revision, r.Stages)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show PIPELINE",
		Short: "Show a pipeline's current definition",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer c.Close()
			kv, err := c.Bus.JetStream().KeyValue(cmd.Context(), events.BucketPipelines)
			if err != nil {
				return err
			}
			d, rev, err := source.Pipelines{KV: kv}.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]any{"revision": rev, "definition": d})
			}
			fmt.Fprintf(g.stdout, "pipeline %s, revision %d\n", d.Name, rev)
			for _, s := range d.Stages {
				fmt.Fprintf(g.stdout, "  stage %s\n", s.Name)
				for _, a := range s.Actions {
					fmt.Fprintf(g.stdout, "    [%d] %s (%s on %s) in=%v out=%v\n", a.RunOrder, a.Name, a.Type, a.Pool, a.Inputs, a.Outputs)
				}
			}
			return nil
		},
	}
	cmd.AddCommand(apply, list, show)
	return cmd
}
