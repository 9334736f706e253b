package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/gantry-ci/gantry/services/junit"
)

func junitCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "junit [--out FILE] < go-test.json",
		Short: "Convert `go test -json` output (stdin) into a JUnit XML report",
		Long: `Convert the output of 'go test -json' on stdin into JUnit XML, which test
actions report from. Build failures become failed test cases, so a package
that does not compile fails the report too.`,
		Example: `  go test -json ./... | gantry junit --out reports/junit.xml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var w io.Writer = g.stdout
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if err := junit.FromGoTestJSON(cmd.InOrStdin(), w); err != nil {
				return fmt.Errorf("convert go test -json: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "write the report to FILE instead of stdout")
	return c
}
