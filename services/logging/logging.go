// Package logging sets up zerolog for Gantry's processes: a pretty console
// on a terminal, JSON lines otherwise (for log shippers), with the process
// role as a field.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Options choose the format and level.
type Options struct {
	// Format is "auto" (pretty on a terminal), "pretty" or "json".
	Format string
	// Level is a zerolog level name; default info.
	Level string
	// Out defaults to stderr.
	Out io.Writer
}

// New returns a logger for a role.
func New(role string, o Options) zerolog.Logger {
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	pretty := o.Format == "pretty"
	if o.Format == "" || o.Format == "auto" {
		if f, ok := out.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			pretty = true
		}
	}
	w := out
	if pretty {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: time.TimeOnly}
	}
	lvl, err := zerolog.ParseLevel(o.Level)
	if err != nil || o.Level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("role", role).Logger()
}
