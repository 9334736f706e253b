package cli

import (
	"io"
	"iter"
	"maps"
	"os"

	"github.com/mattn/go-isatty"
)

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func mapsKeys[V any](m map[string]V) iter.Seq[string] { return maps.Keys(m) }
