package events

import "strconv"

// Execution modes, transitions and the lane log (issue 9, points 5 and 10).
//
// Runs of one pipeline share stage locks and transitions, but each run's
// log has its own subject and optimistic concurrency protects only one
// subject. So what runs share lives in a log of its own: the pipeline's
// lane, subject gantry.events.<pipeline>._lane (LaneToken can never be a
// run ID, since run IDs are names and names start with a letter or digit).
// Lane events are appended expecting the lane subject's last sequence, so
// two conductors can never give one stage lock to two runs.

// LaneToken is the last subject token of a pipeline's lane log, in the
// place of a run ID; it is also the CloudEvents subject of lane events.
const LaneToken = "_lane"

// LaneSubject is the subject of a pipeline's lane log.
func LaneSubject(pipeline string) string { return RunSubject(pipeline, LaneToken) }

// Execution modes of a pipeline (Definition.ExecutionMode).
const (
	// ModeSuperseded (the default): a run holds the lock of the stage it
	// is in; of the runs waiting to enter a stage only the newest goes on,
	// the older ones end Superseded.
	ModeSuperseded = "SUPERSEDED"
	// ModeQueued: runs enter each stage one by one in the order they were
	// started; none is superseded.
	ModeQueued = "QUEUED"
	// ModeParallel: runs are independent; no stage locks.
	ModeParallel = "PARALLEL"
)

// ExecutionModes lists the modes, default first.
var ExecutionModes = []string{ModeSuperseded, ModeQueued, ModeParallel}

// Lane and superseded event types.
const (
	TypeRunSuperseded  = "dev.gantry.run.superseded"
	TypeLaneWaiting    = "dev.gantry.lane.waiting"
	TypeLaneEntered    = "dev.gantry.lane.entered"
	TypeLaneLeft       = "dev.gantry.lane.left"
	TypeLaneSuperseded = "dev.gantry.lane.superseded"
	TypeLaneTransition = "dev.gantry.lane.transition"
)

func init() {
	Types = append(Types, TypeRunSuperseded,
		TypeLaneWaiting, TypeLaneEntered, TypeLaneLeft, TypeLaneSuperseded, TypeLaneTransition)
}

// RunSuperseded ends a run that waited to enter Stage while a newer run
// (By) waited there too, in SUPERSEDED mode.
type RunSuperseded struct {
	Run    string `json:"run"`
	Stage  string `json:"stage"`
	By     string `json:"by"`
	Reason string `json:"reason"`
}

func (RunSuperseded) EventType() string { return TypeRunSuperseded }

// LaneWaiting records that Run waits to enter Stage; Order is the stream
// sequence of its run.requested (the order runs were started in) and Mode
// its pipeline revision's execution mode.
type LaneWaiting struct {
	Pipeline string `json:"pipeline"`
	Run      string `json:"run"`
	Stage    string `json:"stage"`
	Order    uint64 `json:"order"`
	Mode     string `json:"mode"`
}

func (LaneWaiting) EventType() string { return TypeLaneWaiting }

// LaneEntered gives Run the lock of Stage (or, in PARALLEL mode, lets it
// through the stage's transition): the run may now start the stage.
type LaneEntered struct {
	Pipeline string `json:"pipeline"`
	Run      string `json:"run"`
	Stage    string `json:"stage"`
}

func (LaneEntered) EventType() string { return TypeLaneEntered }

// LaneLeft releases what the lane held for Run at Stage: the stage's lock
// once the run left the stage, or its place in the stage's queue once it
// stopped waiting (it ended). An empty Stage forgets a superseded run that
// has ended.
type LaneLeft struct {
	Pipeline string `json:"pipeline"`
	Run      string `json:"run"`
	Stage    string `json:"stage,omitempty"`
}

func (LaneLeft) EventType() string { return TypeLaneLeft }

// LaneSuperseded records that Run, waiting to enter Stage, was overtaken
// by the newer run By; the run then ends with run.superseded.
type LaneSuperseded struct {
	Pipeline string `json:"pipeline"`
	Run      string `json:"run"`
	Stage    string `json:"stage"`
	By       string `json:"by"`
}

func (LaneSuperseded) EventType() string { return TypeLaneSuperseded }

// LaneTransition disables (Disabled) or enables the transition into
// Stage: while it is disabled no run enters the stage; they wait before
// it. Actor and Reason record who and why (gantry stage disable).
type LaneTransition struct {
	Pipeline string `json:"pipeline"`
	Stage    string `json:"stage"`
	Disabled bool   `json:"disabled,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Actor    string `json:"actor,omitempty"`
}

func (LaneTransition) EventType() string { return TypeLaneTransition }

// LaneID is the event ID of a lane fact about a run at a stage.
func LaneID(pipeline, run, stage, fact string) string {
	return "lane/" + pipeline + "/" + run + "/" + stage + "/" + fact
}

// TransitionID is the event ID of a transition change appended after lane
// sequence tip: each change is a new fact, and a repeat of the same
// request at the same tip is dropped as a duplicate.
func TransitionID(pipeline, stage string, disabled bool, tip uint64) string {
	what := "enabled"
	if disabled {
		what = "disabled"
	}
	return "lane/" + pipeline + "/transition/" + stage + "/" + what + "/" + strconv.FormatUint(tip, 10)
}

// Run kinds.
const (
	// KindRollback is a stage rollback run (gantry run rollback).
	KindRollback = "ROLLBACK"
)

// Rollback is what makes a run a stage rollback: it re-runs Stage of the
// pipeline with the source revision, artifacts and variables of run Run,
// which succeeded in that stage. The run.requested's definition then holds
// that one stage, and Artifacts are the target run's artifacts as they
// stood (same object keys and digests), the stage's inputs.
type Rollback struct {
	Run       string        `json:"run"`
	Stage     string        `json:"stage"`
	Artifacts []ArtifactRef `json:"artifacts,omitempty"`
	// Cause is the failed run an automatic rollback (onFailure ROLLBACK)
	// answers; empty for one asked for.
	Cause string `json:"cause,omitempty"`
}
