package ui

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events/run"
)

func (s *server) funcs() template.FuncMap {
	return template.FuncMap{
		"short":    short,
		"dur":      dur,
		"ts":       ts,
		"iso":      iso,
		"path":     url.PathEscape,
		"query":    url.QueryEscape,
		"phase":    phaseName,
		"approval": isApproval,
		"aphase":   actionPhase,
		"done":     func(p run.Phase) bool { return p.Done() },
		"bytes":    humanBytes,
		"current":  current,
		"count":    count,
	}
}

// count is n and the noun, plural unless n is 1: "1 run", "3 runs".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// short is a run or deployment ID cut to what a person compares.
func short(id string) string {
	if len(id) > 13 {
		return id[:13]
	}
	return id
}

// dur is how long something ran, or has been running at now.
func dur(from, to, now time.Time) string {
	if from.IsZero() {
		return ""
	}
	if to.IsZero() {
		to = now
	}
	d := to.Sub(from)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// phaseName is the word shown for a phase, capitalised (lifecycle steps
// say "succeeded", runs "Succeeded"; the CSS knows one spelling); the zero
// phase is "Pending".
func phaseName(p any) string {
	s := fmt.Sprint(p)
	if s == "" {
		return "Pending"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// isApproval reports whether an action is a manual approval waiting for a
// person's answer: its buttons show only then.
func isApproval(a run.Action) bool { return a.Waiting() }

// current is the stage a run is at: the first running or failed one.
func current(s run.State) string {
	for _, st := range s.Stages {
		if st.Phase == run.Running || st.Phase == run.Failed {
			return st.Name
		}
	}
	return ""
}

func humanBytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}

// actionPhase is the word shown for an action: "Waiting" for an approval
// that waits for an answer, else its phase.
func actionPhase(a run.Action) string {
	if a.Waiting() {
		return "Waiting"
	}
	return phaseName(a.Phase)
}
