package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Notification event types: the outcome of each delivery attempt of the
// notification service (services/chatops). They go to the stream
// GANTRY_NOTIFY, subject gantry.notify.outcomes.<pipeline>.<run>, not to
// the run's own subject: the conductor appends to a run with an expected
// last subject sequence, and a notifier appending there would make its
// appends fail and retry. The CloudEvents subject is the run ID.
const (
	TypeNotificationDelivered = "dev.gantry.notification.delivered"
	TypeNotificationFailed    = "dev.gantry.notification.failed"
)

func init() {
	Types = append(Types, TypeNotificationDelivered, TypeNotificationFailed)
}

// NotificationDelivered records that a target accepted a notification.
type NotificationDelivered struct {
	Run      string `json:"run"`
	Pipeline string `json:"pipeline"`
	// Target is the name of the target in the rules, never its URL (a
	// webhook URL is a secret).
	Target string `json:"target"`
	// Kind is how it was sent: slack or cloudevents.
	Kind string `json:"kind"`
	// Event and OfType name the run event notified.
	Event      string `json:"event"`
	OfType     string `json:"eventType"`
	Attempt    int    `json:"attempt"`
	StatusCode int    `json:"statusCode"`
}

func (NotificationDelivered) EventType() string { return TypeNotificationDelivered }

// NotificationFailed records a failed delivery attempt; Retry says whether
// another attempt follows.
type NotificationFailed struct {
	Run        string `json:"run"`
	Pipeline   string `json:"pipeline"`
	Target     string `json:"target"`
	Kind       string `json:"kind"`
	Event      string `json:"event"`
	OfType     string `json:"eventType"`
	Attempt    int    `json:"attempt"`
	StatusCode int    `json:"statusCode,omitempty"`
	Reason     string `json:"reason"`
	Retry      bool   `json:"retry,omitempty"`
}

func (NotificationFailed) EventType() string { return TypeNotificationFailed }

// NotificationID is the ID of the outcome of one delivery attempt of the
// run event `event` to target: run/<run>/notify/<target>/<digest of the
// event ID>/<attempt>/<fact>. The digest keeps the ID short and one
// segment whatever the event ID holds.
func NotificationID(run, target, event string, attempt int, fact string) string {
	h := sha256.Sum256([]byte(event))
	return RunID(run, "notify/"+target+"/"+hex.EncodeToString(h[:8])+"/"+strconv.Itoa(attempt)+"/"+fact)
}
