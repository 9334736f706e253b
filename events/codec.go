package events

import (
	"encoding/json"
	"fmt"

	"github.com/gantry-ci/gantry/schemas"
)

// Codec encodes and decodes envelopes, validating both ways against the
// embedded schemas. It is safe for concurrent use.
type Codec struct {
	v *schemas.Validator
}

// NewCodec loads the schemas.
func NewCodec() (*Codec, error) {
	v, err := schemas.New()
	if err != nil {
		return nil, err
	}
	return &Codec{v: v}, nil
}

// Encode validates the event and returns its JSON envelope. A publisher that
// gets an error here must not publish.
func (c *Codec) Encode(e Event) ([]byte, error) {
	raw, err := json.Marshal(e.Envelope)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", e.Type, e.ID, err)
	}
	if err := checkSize(raw); err != nil {
		return nil, fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
	}
	// The run event types take the fast path, which accepts exactly what
	// the schema accepts (fastcodec.go); the others keep the schema.
	if _, ok, err := decodeFast(raw); ok {
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
		}
		return raw, nil
	}
	if err := c.v.ValidateEvent(raw); err != nil {
		return nil, fmt.Errorf("%w: %s %s: %w", ErrInvalidEvent, e.Type, e.ID, err)
	}
	return raw, nil
}

// Decode validates a JSON envelope and decodes its typed payload. Errors wrap
// ErrInvalidEvent (or ErrUnknownType) with the reason, which is what the
// dead-letter stream records.
func (c *Codec) Decode(raw []byte) (Event, error) {
	if err := checkSize(raw); err != nil {
		return Event{}, err
	}
	if e, ok, err := decodeFast(raw); ok {
		return e, err
	}
	return c.decodeSchema(raw)
}

// decodeSchema is Decode by the JSON Schema validator: the path of every type
// without a fast path, and the reference the fast path is tested against.
func (c *Codec) decodeSchema(raw []byte) (Event, error) {
	if err := c.v.ValidateEvent(raw); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Event{}, fmt.Errorf("%w: envelope: %w", ErrInvalidEvent, err)
	}
	p, err := newPayload(env.Type)
	if err != nil {
		return Event{}, err
	}
	if err := json.Unmarshal(env.Data, p); err != nil {
		return Event{}, fmt.Errorf("%w: %s data: %w", ErrInvalidEvent, env.Type, err)
	}
	return Event{Envelope: env, Payload: deref(p)}, nil
}

// checkSize refuses an event over MaxEventBytes before any parsing: what
// the bus cannot carry must fail once, with a reason, rather than at publish
// time on every redelivery.
func checkSize(raw []byte) error {
	if len(raw) > MaxEventBytes {
		return fmt.Errorf("%w: %w: %d bytes, the limit is %d", ErrInvalidEvent, ErrTooLarge, len(raw), MaxEventBytes)
	}
	return nil
}

// newPayload returns a pointer to a zero payload of the type.
func newPayload(t string) (any, error) {
	switch t {
	case TypeRunRequested:
		return &RunRequested{}, nil
	case TypeRunStarted:
		return &RunStarted{}, nil
	case TypeRunSucceeded:
		return &RunSucceeded{}, nil
	case TypeRunFailed:
		return &RunFailed{}, nil
	case TypeStageStarted:
		return &StageStarted{}, nil
	case TypeStageSucceeded:
		return &StageSucceeded{}, nil
	case TypeStageFailed:
		return &StageFailed{}, nil
	case TypeActionDispatched:
		return &ActionDispatched{}, nil
	case TypeActionStarted:
		return &ActionStarted{}, nil
	case TypeActionHeartbeat:
		return &ActionHeartbeat{}, nil
	case TypeActionSucceeded:
		return &ActionSucceeded{}, nil
	case TypeActionFailed:
		return &ActionFailed{}, nil
	case TypeArtifactStored:
		return &ArtifactStored{}, nil
	case TypeLogArchived:
		return &LogArchived{}, nil
	case TypeTestReported:
		return &TestReported{}, nil
	case TypeRunStopping:
		return &RunStopping{}, nil
	case TypeStageRetrying:
		return &StageRetrying{}, nil
	case TypeRunStopped:
		return &RunStopped{}, nil
	case TypeActionAbandoned:
		return &ActionAbandoned{}, nil
	case TypeActionWaiting:
		return &ActionWaiting{}, nil
	case TypeActionApproved:
		return &ActionApproved{}, nil
	case TypeActionRejected:
		return &ActionRejected{}, nil
	case TypeConditionEvaluated:
		return &ConditionEvaluated{}, nil
	case TypeStageSkipped:
		return &StageSkipped{}, nil
	case TypeRunSuperseded:
		return &RunSuperseded{}, nil
	case TypeLaneWaiting:
		return &LaneWaiting{}, nil
	case TypeLaneEntered:
		return &LaneEntered{}, nil
	case TypeLaneLeft:
		return &LaneLeft{}, nil
	case TypeLaneSuperseded:
		return &LaneSuperseded{}, nil
	case TypeLaneTransition:
		return &LaneTransition{}, nil
	case TypeDeploymentCreated:
		return &DeploymentCreated{}, nil
	case TypeDeployHostDispatched:
		return &DeployHostDispatched{}, nil
	case TypeDeployHostLifecycle:
		return &DeployHostLifecycle{}, nil
	case TypeDeployHostSucceeded:
		return &DeployHostSucceeded{}, nil
	case TypeDeployHostFailed:
		return &DeployHostFailed{}, nil
	case TypeDeploymentSucceeded:
		return &DeploymentSucceeded{}, nil
	case TypeDeploymentFailed:
		return &DeploymentFailed{}, nil
	case TypeDeploymentStopped:
		return &DeploymentStopped{}, nil
	case TypeDeploymentRollback:
		return &DeploymentRollback{}, nil
	case TypeTriggerAccepted:
		return &TriggerAccepted{}, nil
	case TypeTriggerFiltered:
		return &TriggerFiltered{}, nil
	case TypeNotificationDelivered:
		return &NotificationDelivered{}, nil
	case TypeNotificationFailed:
		return &NotificationFailed{}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownType, t)
}

// deref turns the decoded pointer into the value payload, so that a type
// switch on Event.Payload matches value types everywhere.
func deref(p any) Payload {
	switch v := p.(type) {
	case *RunRequested:
		return *v
	case *RunStarted:
		return *v
	case *RunSucceeded:
		return *v
	case *RunFailed:
		return *v
	case *StageStarted:
		return *v
	case *StageSucceeded:
		return *v
	case *StageFailed:
		return *v
	case *ActionDispatched:
		return *v
	case *ActionStarted:
		return *v
	case *ActionHeartbeat:
		return *v
	case *ActionSucceeded:
		return *v
	case *ActionFailed:
		return *v
	case *ArtifactStored:
		return *v
	case *LogArchived:
		return *v
	case *TestReported:
		return *v
	case *RunStopping:
		return *v
	case *StageRetrying:
		return *v
	case *RunStopped:
		return *v
	case *ActionAbandoned:
		return *v
	case *ActionWaiting:
		return *v
	case *ActionApproved:
		return *v
	case *ActionRejected:
		return *v
	case *ConditionEvaluated:
		return *v
	case *StageSkipped:
		return *v
	case *RunSuperseded:
		return *v
	case *LaneWaiting:
		return *v
	case *LaneEntered:
		return *v
	case *LaneLeft:
		return *v
	case *LaneSuperseded:
		return *v
	case *LaneTransition:
		return *v
	case *DeploymentCreated:
		return *v
	case *DeployHostDispatched:
		return *v
	case *DeployHostLifecycle:
		return *v
	case *DeployHostSucceeded:
		return *v
	case *DeployHostFailed:
		return *v
	case *DeploymentSucceeded:
		return *v
	case *DeploymentFailed:
		return *v
	case *DeploymentStopped:
		return *v
	case *DeploymentRollback:
		return *v
	case *TriggerAccepted:
		return *v
	case *TriggerFiltered:
		return *v
	case *NotificationDelivered:
		return *v
	case *NotificationFailed:
		return *v
	}
	return nil
}

// ZeroPayload returns the zero payload of a type; the schema catalogue test
// and docs generator use it to walk every type.
func ZeroPayload(t string) (Payload, error) {
	p, err := newPayload(t)
	if err != nil {
		return nil, err
	}
	return deref(p), nil
}
