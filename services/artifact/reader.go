package artifact

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Object store layout (NATS ADR-20, shared by every client): the bucket's
// stream and the subject of one object instance's chunks.
const (
	objStreamPrefix = "OBJ_"
	objChunkSubject = "$O.%s.C.%s" // bucket, object NUID
)

// minPullBytes is the least a reader asks the server for at a time; at least
// two chunks are asked for whatever the chunk size.
const minPullBytes = 4 << 20

// chunkReader streams one object instance's chunks through an ordered pull
// consumer, hashing them, and checks size and digest against the object's
// metadata.
type chunkReader struct {
	ctx  context.Context
	js   jetstream.JetStream
	info *jetstream.ObjectInfo
	cons jetstream.Consumer
	it   jetstream.MessagesContext

	cur    []byte // unread part of the current chunk
	chunks uint32 // chunks received
	n      int64  // bytes received
	h      hash.Hash
	last   bool  // the last chunk has been received
	err    error // sticky: io.EOF at the end, or the first failure
}

func (s *Store) open(ctx context.Context, key string) (*chunkReader, error) {
	info, err := s.obs.GetInfo(ctx, key)
	if err != nil {
		return nil, storeErr(key, err)
	}
	if info.Opts != nil && info.Opts.Link != nil {
		return nil, fmt.Errorf("get %s: object links are not supported", key)
	}
	if info.NUID == "" || info.Bucket == "" || digestHex(info.Digest) == "" {
		return nil, fmt.Errorf("get %s: %w", key, jetstream.ErrBadObjectMeta)
	}
	r := &chunkReader{ctx: ctx, js: s.js, info: info, h: sha256.New()}
	if info.Chunks == 0 {
		r.last = true
		return r, nil
	}
	chunk := uint64(0)
	if info.Opts != nil {
		chunk = uint64(info.Opts.ChunkSize)
	}
	chunk = max(chunk, info.Size/uint64(info.Chunks)+1)
	pull := max(minPullBytes, 2*int(min(chunk, 64<<20))+4096)
	r.cons, err = s.js.OrderedConsumer(ctx, objStreamPrefix+info.Bucket, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{fmt.Sprintf(objChunkSubject, info.Bucket, info.NUID)},
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	// Bound both the messages buffered (PullMaxBytes alone sizes a channel
	// for a million of them) and the bytes of each pull request.
	r.it, err = r.cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(pull/int(chunk)+1, pull))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return r, nil
}

func (r *chunkReader) object() Object {
	return Object{Key: r.info.Name, SHA256: digestHex(r.info.Digest), Size: int64(r.info.Size)}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.last {
			r.err = r.verify()
			continue
		}
		r.err = r.next()
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// next receives one chunk.
func (r *chunkReader) next() error {
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("get %s: %w", r.info.Name, err)
	}
	msg, err := r.it.Next(jetstream.NextContext(r.ctx))
	if err != nil {
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return fmt.Errorf("get %s: %w", r.info.Name, err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("get %s: %w", r.info.Name, err)
	}
	data := msg.Data()
	r.chunks++
	r.n += int64(len(data))
	if r.n > int64(r.info.Size) || r.chunks > r.info.Chunks {
		return fmt.Errorf("%w: %s: more than the %d bytes in %d chunks its metadata names", ErrDigestMismatch, r.info.Name, r.info.Size, r.info.Chunks)
	}
	r.h.Write(data)
	r.cur = data
	r.last = meta.NumPending == 0
	return nil
}

func (r *chunkReader) verify() error {
	if r.n != int64(r.info.Size) {
		return fmt.Errorf("%w: %s: %d bytes, its metadata names %d", ErrDigestMismatch, r.info.Name, r.n, r.info.Size)
	}
	want, _ := jetstream.DecodeObjectDigest(r.info.Digest)
	if got := r.h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("%w: %s: sha256 %x, its metadata names %x", ErrDigestMismatch, r.info.Name, got, want)
	}
	return io.EOF
}

// Close stops the consumer and deletes it from the server (its inactivity
// threshold would remove it a minute later otherwise). Reads after Close
// fail with [fs.ErrClosed].
func (r *chunkReader) Close() error {
	if r.err == nil {
		r.err = fmt.Errorf("get %s: %w", r.info.Name, fs.ErrClosed)
	}
	r.cur = nil
	it := r.it
	if it == nil {
		return nil
	}
	r.it = nil
	it.Stop()
	info := r.cons.CachedInfo()
	if info == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 2*time.Second)
	defer cancel()
	_ = r.js.DeleteConsumer(ctx, info.Stream, info.Name)
	return nil
}
