package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sync"
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

// Leases computes the leases of one key and remembers recent ones: the
// decider checks every dispatched attempt of a run on every decision, so a
// conductor asks for the same few leases many times. Safe for concurrent use.
type Leases struct {
	key  []byte
	mu   sync.Mutex
	memo map[string][2]string // task ID -> token, hash
}

// maxLeases bounds what Leases remembers; it forgets everything past that.
const maxLeases = 1 << 16

// NewLeases returns the leases of key.
func NewLeases(key []byte) *Leases {
	return &Leases{key: key, memo: map[string][2]string{}}
}

// Key is the key the leases are made with.
func (l *Leases) Key() []byte { return l.key }

// Token is LeaseToken(key, taskID).
func (l *Leases) Token(taskID string) string { return l.get(taskID)[0] }

// Hash is LeaseHash(LeaseToken(key, taskID)).
func (l *Leases) Hash(taskID string) string { return l.get(taskID)[1] }

func (l *Leases) get(taskID string) [2]string {
	l.mu.Lock()
	v, ok := l.memo[taskID]
	l.mu.Unlock()
	if ok {
		return v
	}
	token := LeaseToken(l.key, taskID)
	v = [2]string{token, LeaseHash(token)}
	l.mu.Lock()
	if len(l.memo) >= maxLeases {
		clear(l.memo)
	}
	l.memo[taskID] = v
	l.mu.Unlock()
	return v
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
