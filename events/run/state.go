// Package run folds a run's event log into its state. Fold is pure and total:
// it never fails, ignores what it does not know, and the same events always
// give the same state, byte for byte, which is what `gantry state rebuild
// --verify` relies on.
package run

import (
	"time"

	"github.com/gantry-ci/gantry/events"
)

// Phase of a run, stage or action. The zero value means "not started".
type Phase string

const (
	NotStarted Phase = ""
	Requested  Phase = "Requested"
	Dispatched Phase = "Dispatched"
	Running    Phase = "Running"
	Succeeded  Phase = "Succeeded"
	Failed     Phase = "Failed"
	// Stopping is a run asked to stop that still has actions in progress;
	// Stopped is where it ends.
	Stopping Phase = "Stopping"
	Stopped  Phase = "Stopped"
	// Abandoned is an action attempt ended by a stop with abandon.
	Abandoned Phase = "Abandoned"
	// Skipped is a stage whose beforeEntry condition (result SKIP) did not
	// pass; later stages treat it as done.
	Skipped Phase = "Skipped"
	// Superseded is a run overtaken by a newer run while both waited to
	// enter the same stage (execution mode SUPERSEDED).
	Superseded Phase = "Superseded"
)

// Done reports whether a phase is final.
func (p Phase) Done() bool {
	return p == Succeeded || p == Failed || p == Stopped || p == Abandoned || p == Skipped || p == Superseded
}

// State is a folded run.
type State struct {
	Run        string            `json:"run"`
	Pipeline   string            `json:"pipeline"`
	Revision   uint64            `json:"revision"`
	Definition events.Definition `json:"definition"`
	Trigger    events.Trigger    `json:"trigger"`
	// Kind is events.KindRollback for a stage rollback run, else empty;
	// Rollback then says of which run and stage.
	Kind      string            `json:"kind,omitempty"`
	Rollback  *events.Rollback  `json:"rollback,omitempty"`
	Variables map[string]string `json:"variables,omitempty"`
	Phase     Phase             `json:"phase"`
	Reason    string            `json:"reason,omitempty"`
	// Abandon and StoppedBy record a stop request (phase Stopping/Stopped).
	Abandon   bool   `json:"abandon,omitempty"`
	StoppedBy string `json:"stoppedBy,omitempty"`
	// Reopened counts the retries by hand that reopened the ended run; the
	// IDs of the events that end a run again carry it.
	Reopened    int                           `json:"reopened,omitempty"`
	Stages      []Stage                       `json:"stages"`
	Artifacts   map[string]events.ArtifactRef `json:"artifacts,omitempty"`
	RequestedAt time.Time                     `json:"requestedAt"`
	// RequestedSeq is the stream sequence of run.requested: the order runs
	// of a pipeline were started in, which execution modes go by.
	RequestedSeq uint64 `json:"requestedSeq,omitempty"`
	// SupersededBy is the newer run that overtook this one.
	SupersededBy string    `json:"supersededBy,omitempty"`
	StartedAt    time.Time `json:"startedAt,omitzero"`
	EndedAt      time.Time `json:"endedAt,omitzero"`
	// LastSeq is the stream sequence of the last event folded; Events counts them.
	LastSeq uint64 `json:"lastSeq"`
	Events  int    `json:"events"`
}

// Stage is a folded stage.
type Stage struct {
	Name    string `json:"name"`
	Phase   Phase  `json:"phase"`
	Attempt int    `json:"attempt,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Retries counts the automatic retries (onFailure RETRY) so far;
	// RetriedBy names who asked for the latest retry, if any.
	Retries   int       `json:"retries,omitempty"`
	RetriedBy string    `json:"retriedBy,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	Actions   []Action  `json:"actions"`
	// RollbackRequested is set when the stage failed because an onSuccess
	// condition with result ROLLBACK did not pass: the conductor rolls the
	// stage back as it does for onFailure ROLLBACK.
	RollbackRequested bool `json:"rollbackRequested,omitempty"`
	// Checks are the stage's condition rules as evaluated (gates.go).
	Checks []Check `json:"checks,omitempty"`
}

// Action is a folded action: its latest attempt.
type Action struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	RunOrder int    `json:"runOrder"`
	Phase    Phase  `json:"phase"`
	Attempt  int    `json:"attempt,omitempty"`
	// LeaseHash is the dispatched attempt's lease hash: only a result
	// carrying the lease that hashes to it ends the attempt.
	LeaseHash    string               `json:"leaseHash,omitempty"`
	Worker       string               `json:"worker,omitempty"`
	Reason       string               `json:"reason,omitempty"`
	Beats        int                  `json:"beats,omitempty"`
	DispatchedAt time.Time            `json:"dispatchedAt,omitzero"`
	StartedAt    time.Time            `json:"startedAt,omitzero"`
	EndedAt      time.Time            `json:"endedAt,omitzero"`
	Outputs      []events.ArtifactRef `json:"outputs,omitempty"`
	Variables    map[string]string    `json:"variables,omitempty"`
	Report       *events.TestReported `json:"report,omitempty"`
	Log          *events.LogArchived  `json:"log,omitempty"`
	// Approval is set on an approval action once it waits (gates.go).
	Approval *Approval `json:"approval,omitempty"`
}

// Stage returns the named stage, or nil.
func (s *State) Stage(name string) *Stage {
	for i := range s.Stages {
		if s.Stages[i].Name == name {
			return &s.Stages[i]
		}
	}
	return nil
}

// Action returns the named action of a stage, or nil.
func (s *State) Action(stage, action string) *Action {
	st := s.Stage(stage)
	if st == nil {
		return nil
	}
	for i := range st.Actions {
		if st.Actions[i].Name == action {
			return &st.Actions[i]
		}
	}
	return nil
}

// Done reports whether the run has ended.
func (s *State) Done() bool { return s.Phase.Done() }
