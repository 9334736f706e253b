package events

import (
	"encoding/json"
	"fmt"
	"time"
)

// SpecVersion is the CloudEvents version every Gantry event carries.
const SpecVersion = "1.0"

// Envelope is the CloudEvents 1.0 structured-mode JSON envelope. Data holds the
// typed payload still encoded, so that an envelope can be routed, stored and
// dead-lettered without knowing its type.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// Event is a decoded envelope: the envelope fields plus the typed payload.
// Seq is the stream sequence it was stored at (zero before it is stored).
type Event struct {
	Envelope
	Payload Payload `json:"-"`
	Seq     uint64  `json:"-"`
}

// Payload is implemented by every typed event payload.
type Payload interface {
	// EventType returns the CloudEvents type, e.g. dev.gantry.action.succeeded.
	EventType() string
}

// New builds an event with its envelope filled in. The ID must be the
// deterministic ID of the fact (see the ID helpers), so that a repeated
// publish is dropped by JetStream's duplicate window.
func New(id, source, subject string, at time.Time, p Payload) (Event, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s payload: %w", p.EventType(), err)
	}
	return Event{
		Envelope: Envelope{
			SpecVersion:     SpecVersion,
			ID:              id,
			Source:          source,
			Type:            p.EventType(),
			Subject:         subject,
			Time:            at.UTC(),
			DataContentType: "application/json",
			DataSchema:      SchemaURI(p.EventType()),
			Data:            data,
		},
		Payload: p,
	}, nil
}

// SchemaURI names the JSON Schema of a type's payload as it is embedded in the
// schemas module.
func SchemaURI(eventType string) string {
	return "https://gantry.dev/schemas/events/" + eventType + ".json"
}
