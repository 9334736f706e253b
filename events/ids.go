package events

import (
	"crypto/sha256"
	"fmt"

	"github.com/google/uuid"
)

// Deterministic event IDs. Each names a fact once, so the same fact published
// twice has the same Nats-Msg-Id and JetStream keeps one copy.

func RunID(run, fact string) string { return "run/" + run + "/" + fact }

func StageID(run, stage string, attempt int, fact string) string {
	return fmt.Sprintf("run/%s/stage/%s/attempt/%d/%s", run, stage, attempt, fact)
}

// TaskID identifies one attempt of one action; action event IDs extend it.
func TaskID(run, stage, action string, attempt int) string {
	return fmt.Sprintf("run/%s/stage/%s/action/%s/attempt/%d", run, stage, action, attempt)
}

func ActionID(r ActionRef, fact string) string {
	return TaskID(r.Run, r.Stage, r.Action, r.Attempt) + "/" + fact
}

// StopID is the ID of a run's stop request: one plain, one with abandon,
// so that a stop can be escalated to abandon but not repeated.
func StopID(run string, abandon bool) string {
	if abandon {
		return RunID(run, "stopping/abandon")
	}
	return RunID(run, "stopping")
}

// RunIDForTrigger derives a run ID from a trigger ID: a UUIDv7 whose time is
// the trigger's (so run IDs sort by time) and whose remaining bits are a hash
// of the trigger ID (so a redelivered trigger names the same run).
func RunIDForTrigger(triggerID string, unixMilli int64) string {
	h := sha256.Sum256([]byte(triggerID))
	var u uuid.UUID
	copy(u[:], h[:16])
	ms := uint64(unixMilli)
	u[0] = byte(ms >> 40)
	u[1] = byte(ms >> 32)
	u[2] = byte(ms >> 24)
	u[3] = byte(ms >> 16)
	u[4] = byte(ms >> 8)
	u[5] = byte(ms)
	u[6] = (u[6] & 0x0f) | 0x70 // version 7
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return u.String()
}

// DeployID names a fact of a deployment: deploy/<deployment>/<fact>.
func DeployID(deployment, fact string) string { return "deploy/" + deployment + "/" + fact }

// DeployHostID names a fact of one host of a deployment:
// deploy/<deployment>/host/<host>/<fact>.
func DeployHostID(deployment, host, fact string) string {
	return "deploy/" + deployment + "/host/" + host + "/" + fact
}

// DeployCommandID is the Nats-Msg-Id of the agent command that a
// host.dispatched event sends.
func DeployCommandID(deployment, host string) string {
	return DeployHostID(deployment, host, "command")
}
