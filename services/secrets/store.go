package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/redact"
)

// MaxValueBytes bounds a secret's value: enough for a PEM certificate
// chain or a kubeconfig, small beside an environment.
const MaxValueBytes = 64 << 10

// CheckValue returns ErrInvalidValue when v cannot be a secret value.
func CheckValue(v []byte) error {
	switch {
	case redact.TooShort(string(v)):
		return fmt.Errorf("%w: %d bytes, fewer than %d (too short to be masked in logs)", ErrInvalidValue, len(v), redact.MinLen)
	case len(v) > MaxValueBytes:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidValue, len(v), MaxValueBytes)
	case bytes.IndexByte(v, 0) >= 0:
		return fmt.Errorf("%w: holds a NUL byte, which no environment variable can", ErrInvalidValue)
	}
	return nil
}

// CheckName returns ErrInvalidName when name cannot name a secret.
func CheckName(name string) error {
	if !events.ValidSecretName(name) {
		return fmt.Errorf("%w: %q: use 1-64 letters, digits, '-' or '_', starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

// Store reads and writes the secrets bucket.
type Store struct {
	kv jetstream.KeyValue
}

// OpenStore binds the secrets bucket, which the bus provisions.
func OpenStore(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, events.BucketSecrets)
	if err != nil {
		return nil, fmt.Errorf("secrets bucket %s: %w", events.BucketSecrets, err)
	}
	return &Store{kv: kv}, nil
}

// Info describes a stored secret, without its value.
type Info struct {
	Name    string    `json:"name"`
	Updated time.Time `json:"updated"`
	// Revision counts the bucket's writes; it changes when the value does.
	Revision uint64 `json:"revision"`
}

// Set stores value under name, replacing any previous value.
func (s *Store) Set(ctx context.Context, name string, value []byte) error {
	if err := errors.Join(CheckName(name), CheckValue(value)); err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, name, value); err != nil {
		return fmt.Errorf("store secret %s: %w", name, err)
	}
	return nil
}

// Get returns the value stored under name, or ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	e, err := s.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: %s is not in the %s bucket", ErrNotFound, name, events.BucketSecrets)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return e.Value(), nil
}

// List returns every stored secret, by name.
func (s *Store) List(ctx context.Context) ([]Info, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer lister.Stop()
	var out []Info
	for name := range lister.Keys() {
		e, err := s.kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", name, err)
		}
		out = append(out, Info{Name: name, Updated: e.Created().UTC(), Revision: e.Revision()})
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete removes a secret and its value (a purge, so no old value stays in
// the bucket's history); ErrNotFound when there is none.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.Get(ctx, name); err != nil {
		return err
	}
	if err := s.kv.Purge(ctx, name); err != nil {
		return fmt.Errorf("remove secret %s: %w", name, err)
	}
	return nil
}
