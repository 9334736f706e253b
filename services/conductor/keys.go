package conductor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// LeaseKey returns the conductors' lease key from the KV bucket
// events.BucketKeys, creating the bucket and a random 32-byte key the
// first time. Create is atomic, so two conductors starting at once end up
// with the one key that won.
func LeaseKey(ctx context.Context, js jetstream.JetStream) ([]byte, error) {
	kv, err := js.KeyValue(ctx, events.BucketKeys)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		// Create, not CreateOrUpdate: the conductor's user may create this
		// bucket's stream but not update it, and the update is tried first.
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      events.BucketKeys,
			Description: "conductor secrets: the lease key; readable by the conductor role only",
			History:     1,
			Storage:     jetstream.FileStorage,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, events.BucketKeys) // another conductor won
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lease key bucket %s: %w", events.BucketKeys, err)
	}
	if e, err := kv.Get(ctx, events.KeyLease); err == nil {
		return e.Value(), nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("read lease key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make lease key: %w", err)
	}
	if _, err := kv.Create(ctx, events.KeyLease, key); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("store lease key: %w", err)
	}
	e, err := kv.Get(ctx, events.KeyLease)
	if err != nil {
		return nil, fmt.Errorf("read lease key: %w", err)
	}
	return e.Value(), nil
}

// leaseToken is the lease of taskID, remembered once Run made c.leases.
func (c *Conductor) leaseToken(taskID string) string {
	if c.leases != nil {
		return c.leases.Token(taskID)
	}
	return events.LeaseToken(c.key, taskID)
}
