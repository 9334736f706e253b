package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	"github.com/gantry-ci/gantry/events"
	"github.com/nats-io/nats.go/jetstream"
)

// Object is what the object store holds under a key: the SHA-256 digest
// (lowercase hex) and size of its bytes.
type Object struct {
	Key    string
	SHA256 string
	Size   int64
}

// Ref names the object as the artifact name.
func (o Object) Ref(name string) events.ArtifactRef {
	return events.ArtifactRef{Name: name, Key: o.Key, SHA256: o.SHA256, Size: o.Size}
}

// Store keeps artifacts and other objects (archived logs) in a JetStream
// object store, usually the [events.BucketArtifacts] bucket. It is safe for
// concurrent use.
type Store struct {
	js      jetstream.JetStream
	obs     jetstream.ObjectStore
	tempDir string
}

// Option configures a Store.
type Option func(*Store)

// WithTempDir makes [Store.FetchAndUnpack] download into dir instead of the
// system temporary directory ([os.TempDir]).
func WithTempDir(dir string) Option { return func(s *Store) { s.tempDir = dir } }

// NewStore wraps the object store obs of js. It does no I/O. Reads go
// through an ordered pull consumer on obs's stream (see [Store.Open]), which
// is why the Store needs js as well.
func NewStore(js jetstream.JetStream, obs jetstream.ObjectStore, opts ...Option) *Store {
	s := &Store{js: js, obs: obs}
	for _, o := range opts {
		o(s)
	}
	return s
}

// OpenStore binds to the [events.BucketArtifacts] object store, creating it
// with default settings (file storage, one replica) if it does not exist, and
// returns a Store on it. Operators who want other settings (replicas, limits)
// create the bucket first.
func OpenStore(ctx context.Context, js jetstream.JetStream, opts ...Option) (*Store, error) {
	obs, err := js.ObjectStore(ctx, events.BucketArtifacts)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		obs, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      events.BucketArtifacts,
			Description: "Gantry artifacts and archived logs",
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			obs, err = js.ObjectStore(ctx, events.BucketArtifacts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", events.BucketArtifacts, err)
	}
	return NewStore(js, obs, opts...), nil
}

// Put streams r into a new object under key and returns the SHA-256 and
// size of the bytes it read. Objects are write-once: a key that holds an
// object already gives [ErrExists] and the object is left as it is, since
// an event may name it with its digest. (Keys name one delivery of a task,
// [events.ArtifactKey], so no two writers should ever share one; the check
// is what keeps a bug from replacing what a deployment would install.) It holds at most one
// chunk (128 KiB) of r at a time; chunks still being acknowledged by the
// server are buffered by the NATS connection. The object becomes visible only
// when all of r has been stored; if reading r fails, nothing is stored and
// Put returns r's error.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (Object, error) {
	if key == "" {
		return Object{}, fmt.Errorf("put: empty key")
	}
	switch info, err := s.obs.GetInfo(ctx, key); {
	case err == nil:
		return Object{}, fmt.Errorf("put %s: %w (%d bytes, sha256 %s)", key, ErrExists, info.Size, digestHex(info.Digest))
	case !errors.Is(err, jetstream.ErrObjectNotFound):
		return Object{}, fmt.Errorf("put %s: check the key is free: %w", key, err)
	}
	h := newHashCounter()
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: key}, fullReader{io.TeeReader(r, h)})
	if err != nil {
		return Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	obj := Object{Key: key, SHA256: h.sum(), Size: h.n}
	if info.Size != uint64(obj.Size) || digestHex(info.Digest) != obj.SHA256 {
		// The client library hashed the same bytes; this cannot happen
		// unless the reader or the library is broken.
		return Object{}, fmt.Errorf("put %s: stored %d bytes with digest %s, read %d bytes with sha256 %s",
			key, info.Size, info.Digest, obj.Size, obj.SHA256)
	}
	return obj, nil
}

// PutFile streams the file at path into the object store under key.
func (s *Store) PutFile(ctx context.Context, key, path string) (Object, error) {
	f, err := os.Open(path)
	if err != nil {
		return Object{}, err
	}
	defer f.Close()
	return s.Put(ctx, key, f)
}

// PutDir packs files ([Pack]) straight into a new object under key
// (usually [events.ArtifactKey] of the attempt's delivery; [ErrExists] if
// taken), through a pipe, and returns the reference, named name, that
// consumers verify. name must be a valid name ([events.ErrInvalidName]).
func (s *Store) PutDir(ctx context.Context, key, name string, files []File) (events.ArtifactRef, error) {
	if err := events.CheckName("artifact", name); err != nil {
		return events.ArtifactRef{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	packed := make(chan error, 1)
	go func() {
		err := Pack(ctx, pw, files)
		pw.CloseWithError(err) // nil closes with io.EOF
		packed <- err
	}()
	obj, err := s.Put(ctx, key, pr)
	// If Put stopped early, unblock the packer before waiting for it.
	pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
	cancel()
	if perr := <-packed; perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return events.ArtifactRef{}, fmt.Errorf("artifact %s: %w", name, err)
	}
	return obj.Ref(name), nil
}

// Open returns a reader of the object under key and what the object store
// says it holds. The reader checks the bytes against the stored size and
// digest and fails with [ErrDigestMismatch] (at the latest at the end); a
// missing key gives [ErrNotFound]. ctx bounds the whole read. Close the
// reader.
//
// The reader pulls chunks through an ordered pull consumer that asks for a
// few MiB at a time, so memory stays bounded however large the object and
// however slow the reader. (The client library's ObjectStore.Get pushes up
// to the server's flow-control window, 32 MiB, into the client.)
//
// Open trusts the object store's own record of the digest. To check an
// object against a digest recorded elsewhere (an event), use [Store.Fetch].
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	r, err := s.open(ctx, key)
	if err != nil {
		return nil, Object{}, err
	}
	return r, r.object(), nil
}

// Fetch downloads the object ref names into dst, hashing it on the way, and
// returns [ErrDigestMismatch] when its size or SHA-256 differ from ref's.
// It reads at most ref.Size+1 bytes. On any error, whatever was written to
// dst must be discarded: write to a temporary file, not to the final place.
// [ErrInvalidRef] and [ErrNotFound] are returned as their names say.
func (s *Store) Fetch(ctx context.Context, ref events.ArtifactRef, dst io.Writer) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	r, err := s.open(ctx, ref.Key)
	if err != nil {
		return err
	}
	defer r.Close()
	if obj := r.object(); obj.Size != ref.Size || obj.SHA256 != ref.SHA256 {
		return fmt.Errorf("%w: %s: the store holds %d bytes with sha256 %s, the reference names %d bytes with sha256 %s",
			ErrDigestMismatch, ref.Key, obj.Size, obj.SHA256, ref.Size, ref.SHA256)
	}
	// The store's record matches the reference; hash the bytes themselves.
	// Read one byte past the expected size to notice an object that grew.
	h := newHashCounter()
	if _, err := io.Copy(io.MultiWriter(dst, h), io.LimitReader(r, ref.Size+1)); err != nil {
		return err
	}
	if h.n != ref.Size {
		return fmt.Errorf("%w: %s: read %d bytes, the reference names %d", ErrDigestMismatch, ref.Key, h.n, ref.Size)
	}
	if got := h.sum(); got != ref.SHA256 {
		return fmt.Errorf("%w: %s: sha256 %s, the reference names %s", ErrDigestMismatch, ref.Key, got, ref.SHA256)
	}
	return nil
}

// FetchAndUnpack downloads the artifact ref names to a temporary file
// (in the directory of [WithTempDir], or [os.TempDir]), verifies it as
// [Store.Fetch] does, and only then unpacks it into destDir with [Unpack].
// On [ErrDigestMismatch] nothing is unpacked and destDir is not created.
// If unpacking fails ([ErrUnsafePath], ctx done) and destDir did not exist
// before, destDir is removed again. The temporary file is removed before
// FetchAndUnpack returns.
func (s *Store) FetchAndUnpack(ctx context.Context, ref events.ArtifactRef, destDir string) (err error) {
	if err := checkRef(ref); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.tempDir, "gantry-artifact-*.tar.gz")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		if rerr := os.Remove(tmp.Name()); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := s.Fetch(ctx, ref, tmp); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, statErr := os.Lstat(destDir)
	if err := Unpack(ctxReader{ctx, tmp}, destDir); err != nil {
		if errors.Is(statErr, fs.ErrNotExist) {
			// Unpack made destDir; leave nothing half-unpacked behind.
			os.RemoveAll(destDir)
		}
		return fmt.Errorf("artifact %s: %w", ref.Name, err)
	}
	return nil
}

func checkRef(ref events.ArtifactRef) error {
	switch {
	case ref.Key == "":
		return fmt.Errorf("%w: %q has no key", ErrInvalidRef, ref.Name)
	case ref.Size < 0:
		return fmt.Errorf("%w: %s: negative size %d", ErrInvalidRef, ref.Key, ref.Size)
	case !isSHA256Hex(ref.SHA256):
		return fmt.Errorf("%w: %s: sha256 %q is not 64 lowercase hex digits", ErrInvalidRef, ref.Key, ref.SHA256)
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// storeErr maps the object store's errors to this package's sentinels.
func storeErr(key string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	case errors.Is(err, jetstream.ErrDigestMismatch):
		return fmt.Errorf("%w: %s: %w", ErrDigestMismatch, key, err)
	}
	return fmt.Errorf("get %s: %w", key, err)
}

// digestHex turns the object store's "SHA-256=<base64url>" into lowercase
// hex, or "" if it is not one.
func digestHex(d string) string {
	b, err := jetstream.DecodeObjectDigest(d)
	if err != nil || len(b) != sha256.Size {
		return ""
	}
	return hex.EncodeToString(b)
}

// hashCounter is an io.Writer that hashes and counts what it is given.
type hashCounter struct {
	h hash.Hash
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// fullReader fills each read completely unless the stream ends, so that
// the object store, which sends one message per read, sends full chunks
// even when the source (a pipe, a socket) returns little at a time.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
