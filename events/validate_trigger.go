package events

import (
	"strconv"
	"strings"
)

// The value constraints of defs.json triggerDef, mirrored for the fast path
// (validate.go says how the three passes share the work).

const pollIntervalPat = "^([0-9]{1,6}(h|m|s))+$"

func triggerDefs(field string, list []TriggerDef) *fieldError {
	if e := atMostItems(field, len(list), MaxTriggers); e != nil {
		return e
	}
	for i, t := range list {
		if e := t.check(); e != nil {
			return e.in(strconv.Itoa(i)).in(field)
		}
	}
	return nil
}

func (t TriggerDef) check() *fieldError {
	e := firstOf(optText("repository", t.Repository, MaxRepositoryLen),
		enumList("events", t.Events, TriggerEventPush, TriggerEventTag, TriggerEventPullRequest),
		enumList("pullRequestActions", t.PullRequestActions, PullRequestOpened, PullRequestUpdated, PullRequestClosed),
		t.Branches.check("branches"), t.Tags.check("tags"), t.FilePaths.check("filePaths"))
	if e != nil || t.Poll == nil {
		return e
	}
	if !isPollInterval(t.Poll.Interval) {
		return patternError("interval", t.Poll.Interval, pollIntervalPat).in("poll")
	}
	return nil
}

// enumList checks a list of distinct values of an enum (the shape pass
// refused an empty one).
func enumList(field string, list []string, allowed ...string) *fieldError {
	if e := atMostItems(field, len(list), len(allowed)); e != nil {
		return e
	}
	for i, v := range list {
		ok := false
		for _, a := range allowed {
			ok = ok || v == a
		}
		if !ok {
			return errorf("value must be one of %s", quoteEnum(allowed)).in(strconv.Itoa(i)).in(field)
		}
		for j := 0; j < i; j++ {
			if list[j] == v {
				return errorf("uniqueItems: items at %d and %d are equal", j, i).in(field)
			}
		}
	}
	return nil
}

func quoteEnum(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = "'" + s + "'"
	}
	return strings.Join(q, ", ")
}

func (g *GlobFilter) check(field string) *fieldError {
	if g == nil {
		return nil
	}
	return firstOf(globs("includes", g.Includes).in(field), globs("excludes", g.Excludes).in(field))
}

func globs(field string, list []string) *fieldError {
	if e := atMostItems(field, len(list), MaxGlobs); e != nil {
		return e
	}
	for i, s := range list {
		if e := text(strconv.Itoa(i), s, 1, MaxGlobLen); e != nil {
			return e.in(field)
		}
	}
	return nil
}

// isPollInterval matches pollIntervalPat: one or more number-unit pairs.
func isPollInterval(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits > 6 {
				return false
			}
		case c == 'h' || c == 'm' || c == 's':
			if digits == 0 {
				return false
			}
			digits = 0
		default:
			return false
		}
	}
	return digits == 0
}
