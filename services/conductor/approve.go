package conductor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
	"github.com/gantry-ci/gantry/services/command"
	"github.com/gantry-ci/gantry/services/decider"
	"github.com/gantry-ci/gantry/services/internal/consume"
)

// Errors that refuse an approve or reject command.
var (
	// ErrNotWaiting: no approval of the run waits (or not the one named).
	ErrNotWaiting = errors.New("no approval waiting")
	// ErrAmbiguous: several approvals wait and the request names none.
	ErrAmbiguous = errors.New("several approvals waiting")
	// ErrNotApprover: the approval names its approvers and the actor is
	// not one of them.
	ErrNotApprover = errors.New("not an approver")
)

// Approve answers gantry.cmd.approve: it appends action.approved to the
// waiting approval the request names (Stage and Action may be left out
// when only one waits), with the actor and comment.
func (c *Conductor) Approve(ctx context.Context, req command.Request) command.Reply {
	return c.answer(ctx, req, true)
}

// Reject answers gantry.cmd.reject: action.rejected, which fails the
// approval and so its stage.
func (c *Conductor) Reject(ctx context.Context, req command.Request) command.Reply {
	return c.answer(ctx, req, false)
}

func (c *Conductor) answer(ctx context.Context, req command.Request, approve bool) command.Reply {
	verb, done := "reject", "rejected"
	if approve {
		verb, done = "approve", "approved"
	}
	actor := req.Actor
	if actor == "" {
		actor = "anonymous"
	}
	if n := utf8.RuneCountInString(actor); n > decider.MaxActor {
		return command.Reply{Run: req.Run, Error: fmt.Sprintf("actor is %d characters long, at most %d", n, decider.MaxActor)}
	}
	if n := utf8.RuneCountInString(req.Comment); n > decider.MaxComment {
		return command.Reply{Run: req.Run, Error: fmt.Sprintf("comment is %d characters long, at most %d", n, decider.MaxComment)}
	}
	var stage string
	st, err := c.AppendToRun(ctx, req.Run, func(st run.State) (*events.Event, error) {
		a, sname, err := waitingApproval(st, req.Stage, req.Action)
		if err != nil {
			return nil, err
		}
		stage = sname
		if ap := a.Approval.Approvers; len(ap) > 0 && !slices.Contains(ap, actor) {
			return nil, fmt.Errorf("%w: %s may not %s %s/%s (approvers: %s)", ErrNotApprover, actor, verb, sname, a.Name, strings.Join(ap, ", "))
		}
		ref := events.ActionRef{Run: st.Run, Stage: sname, Action: a.Name, Attempt: a.Attempt}
		// The lease, which only a conductor can compute, is what makes
		// the fold believe the answer.
		lease := c.leaseToken(events.TaskID(st.Run, sname, a.Name, a.Attempt))
		var p events.Payload = events.ActionRejected{ActionRef: ref, Actor: actor, Comment: req.Comment, Lease: lease}
		fact := "rejected"
		if approve {
			p, fact = events.ActionApproved{ActionRef: ref, Actor: actor, Comment: req.Comment, Lease: lease}, "approved"
		}
		e, err := events.New(events.ResultID(ref, fact, lease), decider.Source, st.Run, c.o.Now(), p)
		if err != nil {
			return nil, fmt.Errorf("%s event: %w", verb, err)
		}
		return &e, nil
	})
	reply := command.Reply{Run: req.Run, Pipeline: st.Pipeline, Stage: stage, Phase: st.Phase}
	log := c.o.Log.With().Str("run", req.Run).Str("stage", stage).Str("actor", actor).Logger()
	if err != nil {
		reply.Error = err.Error()
		log.Warn().Err(err).Msg(verb + " refused")
	} else {
		log.Info().Msg(done)
	}
	return reply
}

// waitingApproval finds the approval an approve or reject means: the one
// named by stage and action, or the only one waiting.
func waitingApproval(st run.State, stage, action string) (*run.Action, string, error) {
	if st.Done() {
		return nil, "", fmt.Errorf("%w: run %s already ended (%s)", ErrRunEnded, st.Run, st.Phase)
	}
	type found struct {
		a     *run.Action
		stage string
	}
	var waiting []found
	for i := range st.Stages {
		s := &st.Stages[i]
		if stage != "" && s.Name != stage {
			continue
		}
		for j := range s.Actions {
			a := &s.Actions[j]
			if action != "" && a.Name != action {
				continue
			}
			if a.Waiting() {
				waiting = append(waiting, found{a, s.Name})
			}
		}
	}
	switch len(waiting) {
	case 1:
		return waiting[0].a, waiting[0].stage, nil
	case 0:
		return nil, "", notWaiting(st, stage, action)
	}
	names := make([]string, len(waiting))
	for i, w := range waiting {
		names[i] = fmt.Sprintf("--stage %s --action %s", w.stage, w.a.Name)
	}
	return nil, "", fmt.Errorf("%w in run %s: name one with %s", ErrAmbiguous, st.Run, strings.Join(names, " or "))
}

// notWaiting says why nothing the request names waits.
func notWaiting(st run.State, stage, action string) error {
	if stage != "" && st.Stage(stage) == nil {
		return fmt.Errorf("%w: run %s has no stage %s", ErrNotWaiting, st.Run, stage)
	}
	for _, s := range st.Stages {
		if stage != "" && s.Name != stage {
			continue
		}
		for _, a := range s.Actions {
			if a.Type != events.KindApproval || (action != "" && a.Name != action) {
				continue
			}
			switch {
			case a.Approval != nil && a.Approval.Decision != "":
				return fmt.Errorf("%w: approval %s/%s of run %s was already %s by %s", ErrNotWaiting, s.Name, a.Name, st.Run, a.Approval.Decision, a.Approval.Actor)
			case a.Phase.Done():
				return fmt.Errorf("%w: approval %s/%s of run %s already ended (%s: %s)", ErrNotWaiting, s.Name, a.Name, st.Run, a.Phase, a.Reason)
			case a.Phase == run.NotStarted:
				return fmt.Errorf("%w: approval %s/%s of run %s has not been reached yet", ErrNotWaiting, s.Name, a.Name, st.Run)
			}
		}
	}
	what := "any stage"
	if stage != "" {
		what = "stage " + stage
	}
	if action != "" {
		return fmt.Errorf("%w: run %s has no approval %s in %s", ErrNotWaiting, st.Run, action, what)
	}
	return fmt.Errorf("%w: run %s has no approval waiting in %s", ErrNotWaiting, st.Run, what)
}

// dispatchedNow reports whether the run's state has t as the current,
// still dispatched attempt of an action or of a condition's command: the
// echo of its action.dispatched must publish it if this conductor has not.
func dispatchedNow(st run.State, t events.Task) bool {
	if a := st.Action(t.Stage, t.Action); a != nil {
		return a.Attempt == t.Attempt && a.Phase == run.Dispatched
	}
	if s := st.Stage(t.Stage); s != nil {
		for _, ch := range s.Checks {
			if ch.Attempt == t.Attempt && events.ConditionTaskName(ch.When, ch.Rule) == t.Action {
				return ch.Task == run.Dispatched && !ch.Evaluated
			}
		}
	}
	return false
}

// runInputs are the decider's inputs for a run: the clock, the lease key
// and, when its conditions have NoActiveAlarm rules, the time of the last
// alarm of each group they name (the zero time for none), read from the
// alarms stream. A group whose alarms cannot be read is left out, which
// fails its rules with "unknown to the conductor".
func (c *Conductor) runInputs(ctx context.Context, st run.State, span *consume.Span) (decider.Inputs, error) {
	if ctx.Err() != nil {
		return decider.Inputs{}, ctx.Err()
	}
	in, err := c.inputsFor(ctx, st, span) // the lane, when the run may enter a stage
	if err != nil {
		return in, err
	}
	groups := decider.AlarmGroups(st.Definition)
	if len(groups) == 0 || st.Done() {
		return in, nil
	}
	in.Alarms = map[string]time.Time{}
	stream, err := c.o.Bus.JetStream().Stream(ctx, events.StreamAlarms)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		for _, g := range groups {
			in.Alarms[g] = time.Time{}
		}
		return in, nil
	}
	if err != nil {
		// Without the alarms, the rules that need them do not pass (a
		// group missing from Alarms fails its rule): better a held
		// deployment than one into an alarm, and the run is not wedged.
		c.o.Log.Warn().Err(err).Str("run", st.Run).Msg("alarms stream not readable; NoActiveAlarm rules will not pass")
		return in, nil
	}
	for _, g := range groups {
		m, err := stream.GetLastMsgForSubject(ctx, events.AlarmSubject(g))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			in.Alarms[g] = time.Time{}
		case err != nil:
			c.o.Log.Warn().Err(err).Str("run", st.Run).Str("group", g).Msg("last alarm not readable; NoActiveAlarm rules of the group will not pass")
		default:
			in.Alarms[g] = m.Time
		}
	}
	return in, nil
}
