// Package triggerfilter decides whether a change seen by a webhook or a git
// poll starts a run of a pipeline: it holds the pipeline's triggers (the
// `triggers` of the pipeline file, events.TriggerDef) against the change and
// says why, in words, either way. It is pure: no I/O, no clock.
//
// The rules, per trigger (a change starts a run when any trigger accepts it):
//
//   - A webhook change is heard only by triggers whose repository names the
//     change's repository (owner/name, or host/owner/name, without case);
//     a poll change only by triggers with poll.
//   - The event kind must be listed in events (default push, and tag too
//     when the trigger has a tags filter); a pull request's action must be
//     listed in pullRequestActions (default opened and updated).
//   - branches filter the pushed branch or a pull request's target branch;
//     tags filter the pushed tag. A value passes a filter when it matches an
//     include (or there are none) and no exclude: excludes win. Globs are
//     doublestar's, so * stays within a path segment and ** spans segments.
//   - filePaths (push and pull request only) pass when at least one changed
//     file passes; when the changed files are unknown, a trigger with a
//     filePaths filter does not accept the change.
package triggerfilter

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/gantry-ci/gantry/events"
)

// Change is a change in a repository, as a forge or a poll reports it.
type Change struct {
	// Poll is set for a change a git poll found; otherwise it came by webhook.
	Poll bool
	// Repository holds the names the repository goes by (owner/name,
	// host/owner/name); see Names.
	Repository []string
	// Event is events.TriggerEventPush, TriggerEventTag or TriggerEventPullRequest.
	Event string
	// Action is a pull request's action: opened, updated or closed.
	Action string
	// Branch is the pushed branch, or a pull request's target branch,
	// without refs/heads/.
	Branch string
	// Tag is the pushed tag, without refs/tags/.
	Tag string
	// Files are the changed files, when FilesKnown.
	Files      []string
	FilesKnown bool
}

// Decision says whether a change starts a run and why.
type Decision struct {
	Accepted bool
	// Trigger is the index of the trigger that accepted the change, -1 when
	// none did.
	Trigger int
	// Reason explains the decision for people: what the accepting trigger
	// matched, or why each trigger refused.
	Reason string
}

// Decide holds a change against a pipeline's triggers.
func Decide(triggers []events.TriggerDef, c Change) Decision {
	if len(triggers) == 0 {
		return Decision{Trigger: -1, Reason: "the pipeline has no triggers"}
	}
	var why []string
	for i, t := range triggers {
		ok, reason := match(t, c)
		if ok {
			return Decision{Accepted: true, Trigger: i, Reason: fmt.Sprintf("trigger %d accepted: %s", i+1, reason)}
		}
		why = append(why, fmt.Sprintf("trigger %d: %s", i+1, reason))
	}
	return Decision{Trigger: -1, Reason: strings.Join(why, "; ")}
}

// Events returns the event kinds a trigger listens to, defaults applied.
func Events(t events.TriggerDef) []string {
	if len(t.Events) > 0 {
		return t.Events
	}
	if t.Tags != nil {
		return []string{events.TriggerEventPush, events.TriggerEventTag}
	}
	return []string{events.TriggerEventPush}
}

// PullRequestActions returns the pull request actions a trigger listens
// to, defaults applied.
func PullRequestActions(t events.TriggerDef) []string {
	if len(t.PullRequestActions) > 0 {
		return t.PullRequestActions
	}
	return []string{events.PullRequestOpened, events.PullRequestUpdated}
}

func match(t events.TriggerDef, c Change) (bool, string) {
	if c.Poll {
		if t.Poll == nil {
			return false, "does not poll"
		}
	} else {
		if t.Repository == "" {
			return false, "names no repository, so it hears no webhook"
		}
		if !slices.Contains(normalizeAll(c.Repository), Normalize(t.Repository)) {
			return false, fmt.Sprintf("repository %s is not %s", first(c.Repository), t.Repository)
		}
	}
	if !slices.Contains(Events(t), c.Event) {
		return false, fmt.Sprintf("event %s is not one of %s", c.Event, strings.Join(Events(t), ", "))
	}
	var parts []string
	switch c.Event {
	case events.TriggerEventTag:
		ok, why := Passes(t.Tags, c.Tag)
		if !ok {
			return false, "tag " + why
		}
		parts = append(parts, "tag "+why)
		return true, strings.Join(parts, "; ")
	case events.TriggerEventPullRequest:
		if !slices.Contains(PullRequestActions(t), c.Action) {
			return false, fmt.Sprintf("pull request action %s is not one of %s", c.Action, strings.Join(PullRequestActions(t), ", "))
		}
		parts = append(parts, "pull request "+c.Action)
		ok, why := Passes(t.Branches, c.Branch)
		if !ok {
			return false, "target branch " + why
		}
		parts = append(parts, "target branch "+why)
	default:
		ok, why := Passes(t.Branches, c.Branch)
		if !ok {
			return false, "branch " + why
		}
		parts = append(parts, "branch "+why)
	}
	if t.FilePaths != nil {
		if !c.FilesKnown {
			return false, "changed files are unknown, so the filePaths filter cannot pass"
		}
		ok, why := FilesPass(t.FilePaths, c.Files)
		if !ok {
			return false, why
		}
		parts = append(parts, why)
	}
	return true, strings.Join(parts, "; ")
}

// Passes holds one value against a filter: it passes when it matches an
// include (or the filter has none) and no exclude. A nil filter passes
// everything. The reason starts with the value.
func Passes(f *events.GlobFilter, v string) (bool, string) {
	q := fmt.Sprintf("%q", v)
	if f == nil {
		return true, q + " (no filter)"
	}
	if g, ok := anyMatch(f.Excludes, v); ok {
		return false, fmt.Sprintf("%s matches exclude %q", q, g)
	}
	if len(f.Includes) == 0 {
		return true, q + " matches no exclude"
	}
	if g, ok := anyMatch(f.Includes, v); ok {
		return true, fmt.Sprintf("%s matches include %q", q, g)
	}
	return false, fmt.Sprintf("%s matches no include of %s", q, strings.Join(quoteAll(f.Includes), ", "))
}

// FilesPass holds changed files against a filePaths filter: at least one
// file must pass.
func FilesPass(f *events.GlobFilter, files []string) (bool, string) {
	for _, file := range files {
		if ok, why := Passes(f, file); ok {
			return true, "file " + why
		}
	}
	if len(files) == 0 {
		return false, "no file changed, so the filePaths filter cannot pass"
	}
	return false, fmt.Sprintf("none of the %d changed files passes filePaths (first: %q)", len(files), files[0])
}

func anyMatch(globs []string, v string) (string, bool) {
	for _, g := range globs {
		// A bad pattern (refused when the pipeline was applied) matches nothing.
		if ok, err := doublestar.Match(g, v); err == nil && ok {
			return g, true
		}
	}
	return "", false
}

// Valid reports whether a glob is well formed.
func Valid(glob string) bool { return doublestar.ValidatePattern(glob) }

// Normalize reduces a repository name or URL to lower-case
// [host/]path without scheme, user, port, trailing slash or .git:
// https://GitHub.com/Acme/App.git and git@github.com:acme/app both become
// github.com/acme/app.
func Normalize(repo string) string {
	s := strings.TrimSpace(strings.ToLower(repo))
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
		if at := strings.LastIndex(strings.SplitN(s, "/", 2)[0], "@"); at >= 0 {
			s = s[at+1:]
		}
		if slash := strings.Index(s, "/"); slash >= 0 {
			host := s[:slash]
			if colon := strings.Index(host, ":"); colon >= 0 {
				host = host[:colon]
			}
			s = host + s[slash:]
		}
	} else if at := strings.Index(s, "@"); at >= 0 && strings.Contains(s[at:], ":") {
		// scp-like: git@host:owner/name
		s = strings.Replace(s[at+1:], ":", "/", 1)
	}
	s = strings.TrimSuffix(strings.TrimRight(s, "/"), ".git")
	return strings.TrimRight(s, "/")
}

// Names returns the names a forge repository goes by: its full name
// (owner/name) and host/full name for the host of each URL given.
func Names(fullName string, urls ...string) []string {
	out := []string{fullName}
	for _, u := range urls {
		if u == "" {
			continue
		}
		n := Normalize(u)
		out = append(out, n)
		if host, _, ok := strings.Cut(n, "/"); ok && fullName != "" {
			out = append(out, host+"/"+fullName)
		}
	}
	return out
}

func normalizeAll(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s != "" {
			out = append(out, Normalize(s))
		}
	}
	return out
}

func first(list []string) string {
	for _, s := range list {
		if s != "" {
			return s
		}
	}
	return "(unnamed)"
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
