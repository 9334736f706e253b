package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/artifact"
)

func artifactCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "artifact", Short: "Fetch a run's artifacts"}
	var out, extract string
	get := &cobra.Command{
		Use:   "get RUN NAME",
		Short: "Download an artifact, verifying its SHA-256 digest against the run's log",
		Long: `Download an artifact of a run. The bytes are checked against the digest the
run's log recorded; an altered artifact is refused. By default the archive is
written to NAME.tar.gz; --extract DIR unpacks it instead (refusing paths that
would escape DIR).`,
		Example: `  gantry artifact get 0197... app
  gantry artifact get 0197... app --extract ./app`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open(cmd.Context(), "gantry-cli", false)
			if err != nil {
				return err
			}
			defer conn.Close()
			st, err := foldRun(cmd.Context(), conn, args[0])
			if err != nil {
				return err
			}
			ref, ok := st.Artifacts[args[1]]
			if !ok {
				var names []string
				for n := range st.Artifacts {
					names = append(names, n)
				}
				return fmt.Errorf("run %s has no artifact %q (it has %v)", args[0], args[1], names)
			}
			obs, err := conn.Bus.JetStream().ObjectStore(cmd.Context(), events.BucketArtifacts)
			if err != nil {
				return err
			}
			s := artifact.NewStore(conn.Bus.JetStream(), obs)
			dest := extract
			if extract != "" {
				if err := s.FetchAndUnpack(cmd.Context(), ref, extract); err != nil {
					return err
				}
			} else {
				dest = out
				if dest == "" {
					dest = ref.Name + ".tar.gz"
				}
				f, err := os.CreateTemp(".", ".artifact-*")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				if err := s.Fetch(cmd.Context(), ref, f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				if err := os.Rename(f.Name(), dest); err != nil {
					return err
				}
			}
			if g.json() {
				return g.printJSON(map[string]any{"artifact": ref, "path": dest})
			}
			fmt.Fprintf(g.stdout, "%s: %d bytes, sha256 %s verified, written to %s\n", ref.Name, ref.Size, ref.SHA256, dest)
			return nil
		},
	}
	get.Flags().StringVar(&out, "out", "", "file to write the archive to (default NAME.tar.gz)")
	get.Flags().StringVar(&extract, "extract", "", "unpack into this directory instead of writing the archive")
	cmd.AddCommand(get)
	return cmd
}
