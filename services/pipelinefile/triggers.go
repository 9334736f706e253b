package pipelinefile

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/triggerfilter"
)

// triggerEffects refuses fields that could never apply given the events a
// trigger listens to: a filter that silently does nothing is a mistake.
func (c *checker) triggerEffects(t events.TriggerDef, p fieldPath) {
	evs := triggerfilter.Events(t)
	has := func(e string) bool { return slices.Contains(evs, e) }
	list := strings.Join(evs, ", ")
	if t.Tags != nil && !has(events.TriggerEventTag) {
		c.add(p.key("tags"), fmt.Sprintf("tags filter only tag events, and this trigger listens to %s; add tag to events", list), ErrBadTrigger)
	}
	if t.Branches != nil && !has(events.TriggerEventPush) && !has(events.TriggerEventPullRequest) {
		c.add(p.key("branches"), fmt.Sprintf("branches filter pushes and pull requests, and this trigger listens to %s", list), ErrBadTrigger)
	}
	if t.FilePaths != nil && !has(events.TriggerEventPush) && !has(events.TriggerEventPullRequest) {
		c.add(p.key("filePaths"), fmt.Sprintf("filePaths filter pushes and pull requests, and this trigger listens to %s", list), ErrBadTrigger)
	}
	if len(t.PullRequestActions) > 0 && !has(events.TriggerEventPullRequest) {
		c.add(p.key("pullRequestActions"), fmt.Sprintf("pullRequestActions need pullRequest in events, and this trigger listens to %s", list), ErrBadTrigger)
	}
}

// Poll interval bounds: often enough to matter, rarely enough not to
// hammer a git server.
const (
	MinPollInterval = 30 * time.Second
	MaxPollInterval = 24 * time.Hour
)

// extractTriggers reads the triggers leniently: the schema has checked
// their shape, and a trigger of the wrong shape (reported) is left zero.
func extractTriggers(root map[string]any) []events.TriggerDef {
	list, _ := root["triggers"].([]any)
	var out []events.TriggerDef
	for _, item := range list {
		var t events.TriggerDef
		if b, err := json.Marshal(item); err == nil {
			_ = json.Unmarshal(b, &t) // a wrong shape was reported by the schema
		}
		out = append(out, t)
	}
	return out
}

// triggerSemantics checks what the schema cannot say about triggers: globs
// parse, poll intervals are durations in range, a polling pipeline has a
// source action to poll, and every trigger hears something.
func (c *checker) triggerSemantics(def events.Definition) {
	hasSource := false
	for _, s := range def.Stages {
		for _, a := range s.Actions {
			hasSource = hasSource || a.Type == "source"
		}
	}
	for i, t := range def.Triggers {
		p := fieldPath{}.key("triggers").idx(i)
		if t.Repository == "" && t.Poll == nil {
			c.add(p, "a trigger needs repository (to hear that repository's webhooks) or poll (to poll the source action's repository)", ErrBadTrigger)
		}
		c.triggerEffects(t, p)
		for name, f := range map[string]*events.GlobFilter{"branches": t.Branches, "tags": t.Tags, "filePaths": t.FilePaths} {
			if f == nil {
				continue
			}
			for k, list := range map[string][]string{"includes": f.Includes, "excludes": f.Excludes} {
				for j, g := range list {
					if !triggerfilter.Valid(g) {
						c.add(p.key(name).key(k).idx(j), fmt.Sprintf("%q is not a valid glob (check its brackets and braces)", g), ErrBadTrigger)
					}
				}
			}
		}
		if t.Poll == nil || c.reported[p.key("poll").key("interval").String()] {
			continue
		}
		ip := p.key("poll").key("interval")
		d, err := time.ParseDuration(t.Poll.Interval)
		// A value that is no duration broke the schema's pattern, reported.
		if err == nil && (d < MinPollInterval || d > MaxPollInterval) {
			c.add(ip, fmt.Sprintf("%s is out of range: poll between every 30s and every 24h", t.Poll.Interval), ErrBadTrigger)
		}
		if !hasSource {
			c.add(p.key("poll"), "poll needs a source action whose repository it polls; the pipeline has none", ErrBadTrigger)
		}
	}
}

// writeTriggers writes the triggers in the layout of docs/pipeline.md.
func writeTriggers(b *strings.Builder, triggers []events.TriggerDef) {
	if len(triggers) == 0 {
		return
	}
	b.WriteString("triggers:\n")
	for _, t := range triggers {
		const in = "    "
		var lines strings.Builder
		if t.Repository != "" {
			fmt.Fprintf(&lines, in+"repository: %s\n", scalar(t.Repository))
		}
		writeList(&lines, in, "events", t.Events)
		writeList(&lines, in, "pullRequestActions", t.PullRequestActions)
		for _, f := range []struct {
			name string
			f    *events.GlobFilter
		}{{"branches", t.Branches}, {"tags", t.Tags}, {"filePaths", t.FilePaths}} {
			if f.f == nil {
				continue
			}
			fmt.Fprintf(&lines, in+"%s:\n", f.name)
			writeList(&lines, in+"  ", "includes", f.f.Includes)
			writeList(&lines, in+"  ", "excludes", f.f.Excludes)
		}
		if t.Poll != nil {
			fmt.Fprintf(&lines, in+"poll:\n"+in+"  interval: %s\n", scalar(t.Poll.Interval))
		}
		s := lines.String()
		if s == "" {
			b.WriteString("  - {}\n")
			continue
		}
		b.WriteString("  - " + strings.TrimPrefix(s, in))
	}
}
