// Package command is the request/reply API on gantry.cmd.<verb> that the
// CLI, the HTTP gateway, chat-ops and bots use to act on runs and
// pipelines: stop, approve, reject, retry, stage rollback, and disabling
// or enabling a stage's transition. One request and one reply shape serve
// every verb, so a bot needs a single JSON type; each verb reads the fields
// it documents and refuses a request that lacks one it needs.
//
// The conductors serve the verbs in one queue group, so exactly one
// answers; what it does is append an event to the log (the request and
// who made it become facts), and the deciding happens from the log like
// everything else.
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/run"
)

// Verbs served on events.CmdSubject(verb).
const (
	// Stop a run: Run; Abandon, Reason.
	Stop = "stop"
	// Approve or Reject a waiting approval action: Run; Stage and Action
	// when more than one approval waits; Comment.
	Approve = "approve"
	Reject  = "reject"
	// Retry a failed or stopped stage of a run in the same run: Run, Stage;
	// All re-runs every action, not only the failed ones.
	Retry = "retry"
	// StageRollback starts a ROLLBACK run of Pipeline that re-runs Stage
	// with the revision, artifacts and variables of run To (default: the
	// last run in which the stage succeeded).
	StageRollback = "stage-rollback"
	// StageDisable and StageEnable close and open the transition into
	// Stage of Pipeline; Reason says why.
	StageDisable = "stage-disable"
	StageEnable  = "stage-enable"
)

// Verbs lists every verb, for permissions and docs.
var Verbs = []string{Stop, Approve, Reject, Retry, StageRollback, StageDisable, StageEnable}

// Request is the body of every command.
type Request struct {
	Run      string `json:"run,omitempty"`
	Pipeline string `json:"pipeline,omitempty"`
	Stage    string `json:"stage,omitempty"`
	Action   string `json:"action,omitempty"`
	// To is the run a stage rollback returns to.
	To      string `json:"to,omitempty"`
	Abandon bool   `json:"abandon,omitempty"`
	All     bool   `json:"all,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Actor names the caller (user@host from the CLI, api:<token name>
	// from the gateway, slack:<user> from chat-ops); it is recorded in the
	// event the command produces.
	Actor string `json:"actor,omitempty"`
}

// Reply answers a Request: the run it concerns and its phase after the
// command was recorded, or the error that refused it.
type Reply struct {
	Run      string    `json:"run,omitempty"`
	Pipeline string    `json:"pipeline,omitempty"`
	Stage    string    `json:"stage,omitempty"`
	Phase    run.Phase `json:"phase,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// ErrRefused wraps the error a conductor answered with.
var ErrRefused = errors.New("refused")

// DefaultTimeout bounds one request when the caller's context has no deadline.
const DefaultTimeout = 15 * time.Second

// Client sends commands over a NATS connection.
type Client struct {
	Conn *nats.Conn
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
}

// Do sends req as verb and waits for the reply. A refusal comes back as
// an error wrapping ErrRefused with the conductor's reason, together with
// the reply.
func (c Client) Do(ctx context.Context, verb string, req Request) (Reply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Reply{}, fmt.Errorf("%s request: %w", verb, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := c.Conn.RequestWithContext(ctx, events.CmdSubject(verb), body)
	if err != nil {
		return Reply{}, fmt.Errorf("%s: %w (is a conductor running?)", verb, err)
	}
	var reply Reply
	if err := json.Unmarshal(m.Data, &reply); err != nil {
		return Reply{}, fmt.Errorf("%s: bad reply: %w", verb, err)
	}
	if reply.Error != "" {
		return reply, fmt.Errorf("%s: %w: %s", verb, ErrRefused, reply.Error)
	}
	return reply, nil
}

// Handler serves one verb.
type Handler func(ctx context.Context, req Request) Reply

// Serve answers verb with h in queue group queue until the returned
// subscription is drained or unsubscribed. A body that is not a Request is
// answered with an error; h never sees it.
func Serve(ctx context.Context, conn *nats.Conn, verb, queue string, h Handler) (*nats.Subscription, error) {
	sub, err := conn.QueueSubscribe(events.CmdSubject(verb), queue, func(m *nats.Msg) {
		var req Request
		var reply Reply
		if err := json.Unmarshal(m.Data, &req); err != nil {
			reply.Error = fmt.Sprintf("%s request: %v", verb, err)
		} else {
			reply = h(ctx, req)
		}
		b, _ := json.Marshal(reply)
		_ = m.Respond(b)
	})
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", events.CmdSubject(verb), err)
	}
	return sub, nil
}
