package decider

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Manual approvals. An approval attempt is dispatched like any action, with
// a lease hash under the conductor's key (so forgedDispatch holds it to the
// same rule), but it is nobody's task: the conductor does not publish it,
// and the decider records action.waiting in the same decision. It ends with
// action.approved or action.rejected, which the conductor appends for
// gantry.cmd.approve and gantry.cmd.reject with the attempt's lease (a
// client without the lease key cannot forge one: the fold ignores an
// answer whose lease does not hash to the dispatched one), or with
// action.failed once its timeout passes (expire).

// Bounds of action.waiting and the answers: a link, an actor's name, the
// approvers of one approval, a comment.
const (
	MaxApprovalURL = 2048
	MaxActor       = 256
	MaxApprovers   = 100
	MaxComment     = events.MaxApprovalText
)

// DefaultApprovalTimeout is an approval's timeout when its definition gives none.
const DefaultApprovalTimeout = events.DefaultApprovalTimeoutSeconds * time.Second

// dispatchApproval starts an approval attempt: dispatched, then waiting.
func dispatchApproval(s run.State, st run.Stage, def events.ActionDef, attempt int, in Inputs) []events.Event {
	ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: def.Name, Attempt: attempt}
	t := events.Task{
		ID: events.TaskID(s.Run, st.Name, def.Name, attempt), Pipeline: s.Pipeline, Run: s.Run,
		Stage: st.Name, Action: def.Name, Attempt: attempt, Kind: def.Type, Pool: def.Pool,
		TimeoutSeconds: def.TimeoutSeconds, Configuration: maps.Clone(def.Configuration),
	}
	t.LeaseHash = in.leaseHash(t.ID)
	resolved, problem := approvalConfiguration(s, def)
	if problem != "" {
		lease := in.leaseToken(t.ID)
		return []events.Event{
			mustNew(events.ActionID(ref, "dispatched"), s.Run, in.Now, events.ActionDispatched{Task: t}),
			mustNew(events.ResultID(ref, "failed", lease), s.Run, in.Now, events.ActionFailed{
				ActionRef: ref, Lease: lease, Reason: events.TruncateReason(problem)}),
		}
	}
	t.Configuration = resolved.Configuration
	return []events.Event{
		mustNew(events.ActionID(ref, "dispatched"), s.Run, in.Now, events.ActionDispatched{Task: t}),
		approvalWaiting(s, ref, resolved, in.Now),
	}
}

// approvalConfiguration substitutes the #{...} references of an approval's
// instructions and url (the commit to review, a build's report link), as
// CodePipeline does for its approval's comments and link, or says which
// one is unresolved. approvers stays as written: a variable must never
// choose who may approve (the parser refuses references there). The
// values read are fixed once the approval is reached (built-ins and
// actions that ran before it), so deciding again gives the same text.
func approvalConfiguration(s run.State, def events.ActionDef) (events.ActionDef, string) {
	shown := events.ActionDef{Type: def.Type, Configuration: map[string]string{}}
	for _, k := range []string{"instructions", "url"} {
		if v, ok := def.Configuration[k]; ok {
			shown.Configuration[k] = v
		}
	}
	cfg, problem := resolveConfiguration(s, shown)
	if problem != "" {
		return def, problem
	}
	out := def
	out.Configuration = maps.Clone(def.Configuration)
	maps.Copy(out.Configuration, cfg)
	if u, ok := out.Configuration["url"]; ok && !HTTPURL(u) {
		return def, fmt.Sprintf("configuration url: %q is not an http or https URL once its variables are substituted", u)
	}
	return out, ""
}

// HTTPURL reports whether u is an absolute http or https URL with a host:
// what an approval's link must be, as written and once substituted.
func HTTPURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "https" || p.Scheme == "http") && p.Host != ""
}

// approvalWaiting is the action.waiting of an approval dispatched at
// dispatched: what it asks and when it expires.
func approvalWaiting(s run.State, ref events.ActionRef, def events.ActionDef, dispatched time.Time) events.Event {
	// The pipeline file parser bounds these; a definition from elsewhere
	// is clipped to the event's bounds rather than wedge the run.
	w := events.ActionWaiting{ActionRef: ref, Instructions: events.TruncateReason(def.Configuration["instructions"]),
		Approvers: Approvers(def), Expires: dispatched.Add(approvalTimeout(def)).UTC().Format(time.RFC3339)}
	if u := def.Configuration["url"]; utf8.RuneCountInString(u) <= MaxApprovalURL {
		w.URL = u
	}
	return mustNew(events.ActionID(ref, "waiting"), s.Run, dispatched, w)
}

// unannounced is the action.waiting of every approval of stage i that was
// dispatched but does not wait yet: its waiting event was decided with the
// dispatch but not appended (another conductor's append came between), so
// it is decided again from the log alone.
func unannounced(s run.State, i int) []events.Event {
	var out []events.Event
	st := s.Stages[i]
	for j, a := range st.Actions {
		if a.Type != events.KindApproval || a.Phase != run.Dispatched || a.Attempt == 0 {
			continue
		}
		ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: a.Name, Attempt: a.Attempt}
		def, _ := approvalConfiguration(s, s.Definition.Stages[i].Actions[j])
		out = append(out, approvalWaiting(s, ref, def, a.DispatchedAt))
	}
	return out
}

// Approvers is the approval's approvers configuration (comma-separated
// actor names), as a list; nil means anyone allowed to approve.
func Approvers(def events.ActionDef) []string {
	var out []string
	for a := range strings.SplitSeq(def.Configuration["approvers"], ",") {
		if a = strings.TrimSpace(a); a != "" && utf8.RuneCountInString(a) <= MaxActor && len(out) < MaxApprovers && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func approvalTimeout(def events.ActionDef) time.Duration {
	if def.TimeoutSeconds > 0 {
		return time.Duration(def.TimeoutSeconds) * time.Second
	}
	return DefaultApprovalTimeout
}

// approvalDeadline is when a waiting approval fails: its dispatch plus its
// timeout. No grace: the conductor itself answers for approvals.
func approvalDeadline(a run.Action, def events.ActionDef) (time.Time, time.Duration) {
	timeout := approvalTimeout(def)
	return a.DispatchedAt.Add(timeout), timeout
}

func approvalExpiredReason(timeout time.Duration) string {
	return fmt.Sprintf("approval timed out: nobody approved or rejected it within %s", timeout)
}

// stopApprovals fails the approvals of stage st that wait when the run is
// asked to stop: an approval is no work in progress that could finish, so
// a stop without abandon would otherwise wait for its timeout.
func stopApprovals(s run.State, st run.Stage, in Inputs) []events.Event {
	var out []events.Event
	for _, a := range st.Actions {
		if a.Type != events.KindApproval || (a.Phase != run.Dispatched && a.Phase != run.Running) {
			continue
		}
		ref := events.ActionRef{Run: s.Run, Stage: st.Name, Action: a.Name, Attempt: a.Attempt}
		lease := in.leaseToken(events.TaskID(s.Run, st.Name, a.Name, a.Attempt))
		out = append(out, mustNew(events.ResultID(ref, "failed", lease), s.Run, in.Now, events.ActionFailed{
			ActionRef: ref, Lease: lease, Reason: "run stopped while the approval waited: " + s.Reason}))
	}
	return out
}
