package decider

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Backoff of onFailure RETRY: the k-th automatic retry (from 0) waits
// RetryBackoff·2^k after the stage failed, at most MaxRetryBackoff.
const (
	RetryBackoff    = 10 * time.Second
	MaxRetryBackoff = 5 * time.Minute
)

// RunEventID is the ID of an event about the whole run (fact is stopped,
// failed, succeeded, stopping or stopping/abandon). A retry by hand reopens
// an ended run, which can then end again: those later endings carry the
// number of reopenings, so the bus's deduplication does not drop them as
// repeats of the first.
func RunEventID(s run.State, fact string) string {
	if s.Reopened > 0 {
		fact += "/reopened/" + strconv.Itoa(s.Reopened)
	}
	return events.RunID(s.Run, fact)
}

// StopID is the ID of a stop request of the run as it stands
// (events.StopID, made unique per reopening like RunEventID).
func StopID(s run.State, abandon bool) string {
	if abandon {
		return RunEventID(s, "stopping/abandon")
	}
	return RunEventID(s, "stopping")
}

// autoRetry is the retry onFailure RETRY gives failed stage i: the event
// when its backoff has passed, or the time it passes (ok true, no event)
// while waiting. ok is false when the stage has no retry left.
func autoRetry(s run.State, i int, in Inputs) (evs []events.Event, at time.Time, ok bool) {
	st := s.Stages[i]
	of := s.Definition.Stages[i].OnFailure
	if of == nil || of.Result != events.OnFailureRetry || st.Retries >= max(of.Retries, 1) || !run.Retryable(s, st, true) {
		return nil, time.Time{}, false
	}
	at = st.EndedAt.Add(Backoff(st.Retries))
	if in.Now.Before(at) {
		return nil, at, true
	}
	return one(events.RetryID(s.Run, st.Name, st.Attempt+1), s.Run, in.Now, events.StageRetrying{
		Run: s.Run, Stage: st.Name, Attempt: st.Attempt + 1, Mode: events.RetryFailed, Auto: true, Actor: "gantry",
		Reason: events.TruncateReason(fmt.Sprintf("onFailure RETRY %d of %d after: %s", st.Retries+1, max(of.Retries, 1), st.Reason))}), at, true
}

// Backoff is how long the k-th automatic retry (from 0) waits.
func Backoff(k int) time.Duration {
	d := RetryBackoff
	for range k {
		d *= 2
		if d >= MaxRetryBackoff {
			return MaxRetryBackoff
		}
	}
	return d
}
