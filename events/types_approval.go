package events

// Manual approval (issue 9, point 4). An action of type KindApproval is no
// worker's task: the conductor dispatches it (with a lease hash, like any
// attempt) but never publishes it to GANTRY_TASKS, records action.waiting,
// and ends it with action.approved or action.rejected when someone answers
// gantry.cmd.approve or gantry.cmd.reject, or with action.failed when its
// timeout passes. Approved and rejected carry the attempt's lease, which
// only a conductor can compute, so a client that may append run events but
// does not hold the lease key cannot approve anything.
const (
	TypeActionWaiting  = "dev.gantry.action.waiting"
	TypeActionApproved = "dev.gantry.action.approved"
	TypeActionRejected = "dev.gantry.action.rejected"
)

// KindApproval is the action type of a manual approval.
const KindApproval = "approval"

// Approval timeout bounds, in seconds: 5 minutes to 60 days, 7 days by default.
const (
	MinApprovalTimeoutSeconds     = 5 * 60
	MaxApprovalTimeoutSeconds     = 60 * 24 * 3600
	DefaultApprovalTimeoutSeconds = 7 * 24 * 3600
)

// MaxApprovalText bounds an approval's instructions and an approver's comment.
const MaxApprovalText = 4096

func init() {
	Types = append(Types, TypeActionWaiting, TypeActionApproved, TypeActionRejected)
}

// ActionWaiting records that an approval waits for a person: what to look
// at, who may answer and until when.
type ActionWaiting struct {
	ActionRef
	Instructions string `json:"instructions,omitempty"`
	URL          string `json:"url,omitempty"`
	// Approvers lists who may answer, as the pipeline file names them
	// (actors); empty means anyone allowed to call gantry.cmd.approve.
	Approvers []string `json:"approvers,omitempty"`
	// Expires is when the approval fails unanswered, RFC 3339.
	Expires string `json:"expires"`
}

func (ActionWaiting) EventType() string { return TypeActionWaiting }

// ActionApproved ends a waiting approval with success.
type ActionApproved struct {
	ActionRef
	Actor   string `json:"actor"`
	Comment string `json:"comment,omitempty"`
	// Lease is the attempt's lease, which only a conductor can compute.
	Lease string `json:"lease"`
}

func (ActionApproved) EventType() string { return TypeActionApproved }

// ActionRejected ends a waiting approval with failure.
type ActionRejected struct {
	ActionRef
	Actor   string `json:"actor"`
	Comment string `json:"comment,omitempty"`
	Lease   string `json:"lease"`
}

func (ActionRejected) EventType() string { return TypeActionRejected }
