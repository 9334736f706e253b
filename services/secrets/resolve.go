package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// DefaultDir is where file references may point unless the worker is told
// otherwise: the directory Docker and Kubernetes mount secrets into.
const DefaultDir = "/run/secrets"

// Resolver turns secret references into values for a worker. Its zero
// value resolves nothing; set JetStream for stored secrets and Dirs for
// files.
type Resolver struct {
	// JetStream reaches the secrets bucket; it is bound on first use.
	JetStream jetstream.JetStream
	// Dirs are the directories file references may point into; none
	// refuses every file reference.
	Dirs []string

	once  sync.Once
	store *Store
	err   error
}

func (r *Resolver) bucket(ctx context.Context) (*Store, error) {
	r.once.Do(func() {
		if r.JetStream == nil {
			r.err = errors.New("this worker has no secrets bucket")
			return
		}
		r.store, r.err = OpenStore(ctx, r.JetStream)
	})
	return r.store, r.err
}

// Resolve returns the value of every reference, by the same environment
// variable names. It reports every reference it could not resolve at
// once; each problem names the variable and the reference, never a value.
func (r *Resolver) Resolve(ctx context.Context, refs map[string]string) (map[string]string, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(refs))
	var errs []error
	for _, env := range slices.Sorted(maps.Keys(refs)) {
		ref := refs[env]
		v, err := r.one(ctx, ref)
		if err == nil {
			err = CheckValue(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s (for %s): %w", ref, env, err))
			continue
		}
		out[env] = string(v)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *Resolver) one(ctx context.Context, ref string) ([]byte, error) {
	if !events.ValidSecretRef(ref) {
		return nil, fmt.Errorf("%w: not a secret reference", ErrInvalidName)
	}
	if path, ok := strings.CutPrefix(ref, events.SecretFilePrefix); ok {
		return r.file(path)
	}
	s, err := r.bucket(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.Get(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w; store it with `gantry secret set %s`", err, ref)
	}
	return v, err
}

// file reads a file reference, which must resolve (symbolic links
// followed) to a regular file inside one of r.Dirs.
func (r *Resolver) file(path string) ([]byte, error) {
	if len(r.Dirs) == 0 {
		return nil, fmt.Errorf("%w: this worker reads no secret files (start it with --secrets-dir)", ErrFileNotAllowed)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no file %s on this worker", ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	inside := false
	for _, d := range r.Dirs {
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(rd, real); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel) {
			inside = true
			break
		}
	}
	if !inside {
		return nil, fmt.Errorf("%w: %s is not inside %s", ErrFileNotAllowed, path, strings.Join(r.Dirs, ", "))
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotFound, path)
	}
	v, err := io.ReadAll(io.LimitReader(f, MaxValueBytes+1))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	return v, nil
}
