package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// Result leases bind a worker's result to the task attempt that was
// dispatched. The conductor holds a secret lease key (in the KV bucket
// BucketKeys, readable by the conductor role only); the lease of a task is
// HMAC-SHA256(key, task ID). The task message on GANTRY_TASKS carries the
// lease itself, the action.dispatched event in the log only its hash, and a
// result (action.succeeded, action.failed) is folded only when its lease
// hashes to the dispatched one. The lease is deterministic so that the pure
// decider and two conductors agree on it; a bus client that cannot read the
// task cannot forge a result.

// BucketKeys is the KV bucket of the conductor's secrets; KeyLease is the
// key of the lease key in it.
const (
	BucketKeys = "gantry_keys"
	KeyLease   = "lease"
)

// LeaseToken is the lease of the task taskID under key, as 64 hex digits.
func LeaseToken(key []byte, taskID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(taskID))
	return hex.EncodeToString(m.Sum(nil))
}

// LeaseHash is what the log records of a lease: hex SHA-256 of the token.
// The hash of no lease is "", so events from before leases fold as they did.
func LeaseHash(token string) string {
	if token == "" {
		return ""
	}
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// LeaseHolds reports whether a result's lease is the one whose hash was
// dispatched. It compares in constant time.
func LeaseHolds(token, hash string) bool {
	return hmac.Equal([]byte(LeaseHash(token)), []byte(hash))
}

// ResultID is the event ID of a result of an attempt (fact "succeeded" or
// "failed"): ActionID extended by a tag derived from the lease, so that a
// forger who publishes a result with the plain deterministic ID before the
// real one cannot occupy the real result's slot in the duplicate window.
func ResultID(r ActionRef, fact, lease string) string {
	if lease == "" {
		return ActionID(r, fact)
	}
	h := sha256.Sum256([]byte("id" + lease))
	return ActionID(r, fact+"/"+hex.EncodeToString(h[:8]))
}
