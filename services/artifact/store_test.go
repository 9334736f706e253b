package artifact_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/artifact"
	"github.com/klauspost/compress/gzip"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fixture is a Store on a real JetStream server, with the bucket and the
// JetStream client underneath for tampering.
type fixture struct {
	*artifact.Store
	obs jetstream.ObjectStore
	js  jetstream.JetStream
}

// newStore starts a JetStream server for t and returns a Store on its
// artifacts bucket.
// testKey is the key of artifact name stored by the first delivery of a
// build action of run.
func testKey(pipeline, run, name string) string {
	return events.ArtifactKey(pipeline, events.ActionRef{Run: run, Stage: "build", Action: "compile", Attempt: 1}, "u1", name)
}

// TestPutIsWriteOnce: a key that holds an object is never written again;
// the object and its digest stay what the first writer stored.
func TestPutIsWriteOnce(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	key := testKey("web", "run-1", "app")
	first, err := s.Put(ctx, key, strings.NewReader("the artifact an event names"))
	if err != nil {
		t.Fatal(err)
	}
	_, files := sourceTree(t)
	if _, err := s.PutDir(ctx, key, "app", files); !errors.Is(err, artifact.ErrExists) {
		t.Fatalf("PutDir over an object = %v, want ErrExists", err)
	}
	if _, err := s.Put(ctx, key, strings.NewReader("a stale worker's bytes")); !errors.Is(err, artifact.ErrExists) {
		t.Fatalf("Put over an object = %v, want ErrExists", err)
	}
	var buf bytes.Buffer
	if err := s.Fetch(ctx, first.Ref("app"), &buf); err != nil || buf.String() != "the artifact an event names" {
		t.Fatalf("after refused overwrites: %q, %v", buf.String(), err)
	}
}

func newStore(t testing.TB, opts ...artifact.Option) *fixture {
	t.Helper()
	return newStoreAt(t, natstest.Start(t).ClientURL(), opts...)
}

// newStoreAt is newStore on the server at url.
func newStoreAt(t testing.TB, url string, opts ...artifact.Option) *fixture {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := artifact.OpenStore(ctx, js, opts...)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	obs, err := js.ObjectStore(ctx, events.BucketArtifacts)
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	return &fixture{Store: store, obs: obs, js: js}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sourceTree writes files, modes and symbolic links and returns the root and
// its file list.
func sourceTree(t testing.TB) (string, []artifact.File) {
	t.Helper()
	root := t.TempDir()
	for _, step := range []error{
		os.MkdirAll(filepath.Join(root, "bin"), 0o755),
		os.MkdirAll(filepath.Join(root, "conf/d"), 0o700),
		os.WriteFile(filepath.Join(root, "bin/app"), []byte("#!/bin/sh\necho ok\n"), 0o755),
		os.WriteFile(filepath.Join(root, "conf/d/app.conf"), []byte("port=8080\n"), 0o640),
		os.WriteFile(filepath.Join(root, "big.bin"), bytes.Repeat([]byte("0123456789abcdef"), 40000), 0o644),
		os.Symlink("bin/app", filepath.Join(root, "start")),
		os.Symlink("../../bin", filepath.Join(root, "conf/d/bin")),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	files, err := artifact.DirFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, files
}

// describe maps each path under root to its mode and contents or target.
func describe(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:])
		case fi.Mode().Type() == fs.ModeSymlink:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	src, files := sourceTree(t)
	ref, err := s.PutDir(ctx, testKey("web", "run-1", "build_output"), "build_output", files)
	if err != nil {
		t.Fatalf("PutDir: %v", err)
	}
	if ref.Name != "build_output" || ref.Key != testKey("web", "run-1", "build_output") || ref.Size <= 0 || len(ref.SHA256) != 64 || strings.ToLower(ref.SHA256) != ref.SHA256 {
		t.Fatalf("ref = %+v", ref)
	}
	dest := filepath.Join(t.TempDir(), "ws")
	if err := s.FetchAndUnpack(ctx, ref, dest); err != nil {
		t.Fatalf("FetchAndUnpack: %v", err)
	}
	want, got := describe(t, src), describe(t, dest)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s = %q, want %q", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("unpacked %d entries, packed %d", len(got), len(want))
	}

	// The reference's digest is the digest of the stored bytes.
	var buf bytes.Buffer
	if err := s.Fetch(ctx, ref, &buf); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(sum[:]) != ref.SHA256 || int64(buf.Len()) != ref.Size {
		t.Errorf("fetched %d bytes with sha256 %x, ref %+v", buf.Len(), sum, ref)
	}
}

func TestSameInputSameDigest(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	src, files := sourceTree(t)
	first, err := s.PutDir(ctx, testKey("web", "run-1", "out"), "out", files)
	if err != nil {
		t.Fatal(err)
	}
	// Touch every file: times are not part of the artifact.
	later := time.Now().Add(time.Hour)
	for _, f := range files {
		os.Chtimes(f.DiskPath, later, later)
	}
	second, err := s.PutDir(ctx, testKey("web", "run-2", "out"), "out", files)
	if err != nil {
		t.Fatal(err)
	}
	if first.SHA256 != second.SHA256 || first.Size != second.Size {
		t.Errorf("same input, different artifacts: %+v vs %+v", first, second)
	}
	if err := os.WriteFile(filepath.Join(src, "bin/app"), []byte("changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	third, err := s.PutDir(ctx, testKey("web", "run-3", "out"), "out", files)
	if err != nil {
		t.Fatal(err)
	}
	if third.SHA256 == first.SHA256 {
		t.Error("different contents, same digest")
	}
}

func TestTamperedObjectIsRefusedBeforeUnpacking(t *testing.T) {
	ctx := ctxT(t)
	_, files := sourceTree(t)
	cases := map[string]func(ref events.ArtifactRef) []byte{
		// Same size, different bytes: only the hash can tell.
		"same size": func(ref events.ArtifactRef) []byte {
			return bytes.Repeat([]byte{'x'}, int(ref.Size))
		},
		// A valid, different artifact.
		"other artifact": func(events.ArtifactRef) []byte {
			return tarGz(t, "evil.sh", "rm -rf /")
		},
		"empty": func(events.ArtifactRef) []byte { return nil },
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			tmp := t.TempDir()
			s := newStore(t, artifact.WithTempDir(tmp))
			ref, err := s.PutDir(ctx, testKey("web", "run-1", "out"), "out", files)
			if err != nil {
				t.Fatal(err)
			}
			// Someone rewrites the object after the event recorded ref.
			if _, err := s.obs.PutBytes(ctx, ref.Key, bad(ref)); err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			dest := filepath.Join(parent, "ws")
			err = s.FetchAndUnpack(ctx, ref, dest)
			if !errors.Is(err, artifact.ErrDigestMismatch) {
				t.Fatalf("FetchAndUnpack = %v, want ErrDigestMismatch", err)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("destination exists after a refused artifact: %v", err)
			}
			if list, _ := os.ReadDir(tmp); len(list) != 0 {
				t.Errorf("temporary files left: %v", list)
			}
			if err := s.Fetch(ctx, ref, io.Discard); !errors.Is(err, artifact.ErrDigestMismatch) {
				t.Errorf("Fetch = %v, want ErrDigestMismatch", err)
			}
		})
	}
}

// tarGz builds a one-file tar.gz by hand.
func tarGz(t testing.TB, pairs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := 0; i < len(pairs); i += 2 {
		hdr := &tar.Header{Name: pairs[i], Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(pairs[i+1]))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(pairs[i+1]))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestFetchAndUnpackRefusesTraversal(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	cases := map[string][]byte{
		"dotdot":   tarGz(t, "../x", "evil"),
		"absolute": tarGz(t, "/tmp/gantry-artifact-evil", "evil"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			// The digest is right: the artifact is what was stored, and it is
			// still refused.
			obj, err := s.Put(ctx, "web/run-1/"+strings.ReplaceAll(name, " ", "_"), bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			err = s.FetchAndUnpack(ctx, obj.Ref("evil"), filepath.Join(parent, "ws"))
			if !errors.Is(err, artifact.ErrUnsafePath) {
				t.Fatalf("FetchAndUnpack = %v, want ErrUnsafePath", err)
			}
			// FetchAndUnpack made the destination, so it removed it again.
			if list, _ := os.ReadDir(parent); len(list) != 0 {
				t.Errorf("left behind: %v", list)
			}
		})
	}
	if _, err := os.Lstat("/tmp/gantry-artifact-evil"); err == nil {
		t.Error("wrote an absolute path")
	}
}

func TestPlainObjects(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	key := events.LogKey("web", "run-1", "build", "compile", 1, "u1")
	log := strings.Repeat("line of build output\n", 20000)
	obj, err := s.Put(ctx, key, strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(log))
	if obj.Key != key || obj.Size != int64(len(log)) || obj.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("Put = %+v", obj)
	}
	rc, info, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != log || info != obj {
		t.Errorf("Open: %d bytes, %v, info %+v, want %+v", len(got), err, info, obj)
	}

	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := s.PutFile(ctx, key+".copy", path)
	if err != nil || fromFile.SHA256 != obj.SHA256 || fromFile.Size != obj.Size {
		t.Errorf("PutFile = %+v, %v", fromFile, err)
	}
	var buf bytes.Buffer
	if err := s.Fetch(ctx, fromFile.Ref("log"), &buf); err != nil || buf.String() != log {
		t.Errorf("Fetch: %v", err)
	}

	empty, err := s.Put(ctx, "web/run-1/empty", strings.NewReader(""))
	if err != nil || empty.Size != 0 {
		t.Fatalf("Put empty = %+v, %v", empty, err)
	}
	if err := s.Fetch(ctx, empty.Ref("empty"), io.Discard); err != nil {
		t.Errorf("Fetch empty: %v", err)
	}

	// OpenStore binds to the bucket that now exists.
	again, err := artifact.OpenStore(ctx, s.js)
	if err != nil {
		t.Fatalf("OpenStore on an existing bucket: %v", err)
	}
	if err := again.Fetch(ctx, obj.Ref("log"), io.Discard); err != nil {
		t.Errorf("Fetch through a second Store: %v", err)
	}

	// Readers delete their consumers when closed.
	stream, err := s.js.Stream(ctx, "OBJ_"+events.BucketArtifacts)
	if err != nil {
		t.Fatal(err)
	}
	if si, err := stream.Info(ctx); err != nil || si.State.Consumers != 0 {
		t.Errorf("consumers left on the bucket's stream: %+v, %v", si.State, err)
	}

	if _, _, err := s.Open(ctx, "web/run-1/missing"); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Open missing = %v, want ErrNotFound", err)
	}
	missing := events.ArtifactRef{Name: "x", Key: "web/run-1/missing", SHA256: obj.SHA256, Size: 1}
	if err := s.Fetch(ctx, missing, io.Discard); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("Fetch missing = %v, want ErrNotFound", err)
	}
	for _, bad := range []events.ArtifactRef{
		{Name: "x", SHA256: obj.SHA256},
		{Key: key, SHA256: strings.ToUpper(obj.SHA256)},
		{Key: key, SHA256: "abc"},
		{Key: key, SHA256: obj.SHA256, Size: -1},
	} {
		if err := s.Fetch(ctx, bad, io.Discard); !errors.Is(err, artifact.ErrInvalidRef) {
			t.Errorf("Fetch(%+v) = %v, want ErrInvalidRef", bad, err)
		}
	}
}

func TestPutDirFailureStoresNothing(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	_, files := sourceTree(t)
	files = append(files, artifact.File{DiskPath: filepath.Join(t.TempDir(), "missing"), ArchivePath: "zzz"})
	if _, err := s.PutDir(ctx, testKey("web", "run-1", "out"), "out", files); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("PutDir = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.obs.GetInfo(ctx, testKey("web", "run-1", "out")); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("a failed PutDir left an object: %v", err)
	}
	if _, err := s.PutDir(ctx, testKey("web", "run-1", "x"), "../etc", nil); !errors.Is(err, events.ErrInvalidName) {
		t.Errorf("PutDir with a bad name = %v, want ErrInvalidName", err)
	}
}

// TestForgedChunksAreRefused rewrites an object's chunks behind the object
// store's back, keeping its metadata (size and digest) and so agreeing with
// the reference: only hashing the bytes themselves catches it.
func TestForgedChunksAreRefused(t *testing.T) {
	tmp := t.TempDir()
	s := newStore(t, artifact.WithTempDir(tmp))
	ctx := ctxT(t)
	_, files := sourceTree(t)
	ref, err := s.PutDir(ctx, testKey("web", "run-1", "out"), "out", files)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.obs.GetInfo(ctx, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := s.js.Stream(ctx, "OBJ_"+events.BucketArtifacts)
	if err != nil {
		t.Fatal(err)
	}
	subject := "$O." + events.BucketArtifacts + ".C." + info.NUID
	if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		t.Fatal(err)
	}
	forged := tarGz(t, "evil.sh", "rm -rf /")
	forged = append(forged, make([]byte, int(ref.Size)-len(forged))...) // same size
	if _, err := s.js.Publish(ctx, subject, forged); err != nil {
		t.Fatal(err)
	}

	dest := filepath.Join(t.TempDir(), "ws")
	if err := s.FetchAndUnpack(ctx, ref, dest); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Fatalf("FetchAndUnpack = %v, want ErrDigestMismatch", err)
	}
	if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("destination exists after a refused artifact: %v", err)
	}
	if list, _ := os.ReadDir(tmp); len(list) != 0 {
		t.Errorf("temporary files left: %v", list)
	}
	rc, _, err := s.Open(ctx, ref.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Errorf("reading from Open = %v, want ErrDigestMismatch", err)
	}

	// A chunk too many is refused as soon as it arrives.
	if _, err := s.js.Publish(ctx, subject, []byte("more")); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, ref, io.Discard); !errors.Is(err, artifact.ErrDigestMismatch) {
		t.Errorf("Fetch with an extra chunk = %v, want ErrDigestMismatch", err)
	}
}

func TestOpenStopsWithContext(t *testing.T) {
	s := newStore(t)
	obj, err := s.Put(ctxT(t), "web/run-1/big", bytes.NewReader(make([]byte, 3<<20)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc, _, err := s.Open(ctx, obj.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel = %v, want context.Canceled", err)
	}
	rc.Close()
	if _, err := rc.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded")
	}
}
