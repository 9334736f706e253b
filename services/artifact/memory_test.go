package artifact_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/services/artifact"
)

// streamSize is the artifact of TestStreamingMemory: incompressible, so
// the archive is as big as the file. The race detector makes the NATS client
// and server several times slower; the smaller size keeps the test near 10 s
// there on two cores. GANTRY_ARTIFACT_STREAM_MIB overrides the size, to try
// others by hand (1024 for the 1 GiB case).
func streamSize() int64 {
	if v, err := strconv.Atoi(os.Getenv("GANTRY_ARTIFACT_STREAM_MIB")); err == nil && v > 0 {
		return int64(v) << 20
	}
	if raceEnabled {
		return 128 << 20
	}
	return 256 << 20
}

// heapSampler records the peak of the heap in use (live and not yet swept
// objects, plus free space in spans in use: MemStats.HeapInuse) while it
// runs, reading runtime/metrics every 2 ms without stopping the world.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func heapSamples() []metrics.Sample {
	return []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
}

// readHeap returns the heap in use and the bytes allocated so far
// (MemStats.TotalAlloc).
func readHeap(s []metrics.Sample) (inuse, allocs uint64) {
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64(), s[2].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		s := heapSamples()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if inuse, _ := readHeap(s); inuse > h.peak {
				h.peak = inuse
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peak.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}

// writeRandom writes size pseudo-random bytes to path and returns their
// SHA-256.
func writeRandom(t *testing.T, path string, size int64) [sha256.Size]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	// AES-CTR keystream: pseudo-random, incompressible, and fast (assembly)
	// even under the race detector.
	block, err := aes.NewCipher([]byte("gantry-artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	ctr := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		chunk := buf[:min(int64(len(buf)), left)]
		clear(chunk)
		ctr.XORKeyStream(chunk, chunk)
		h.Write(chunk)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	return [sha256.Size]byte(h.Sum(nil))
}

func hashFile(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// TestStreamingMemory puts a large incompressible artifact through PutDir and
// FetchAndUnpack and checks that the heap never grows by more than a small,
// fixed amount: the artifact is streamed, never held.
//
// The JetStream server runs in a child process (this test binary, see
// TestMain), so that the heap measured is this package's and the NATS
// client's, as in a build worker or a deploy agent. With
// GANTRY_ARTIFACT_STREAM_EMBEDDED=1 the test also runs against an embedded
// server in this process, as in `gantry dev`; the server's own buffers
// (ingest queue, block cache, flow-control window) then count too, so the
// bound there is looser.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams hundreds of MiB; skipped with -short")
	}
	size := streamSize()
	t.Run("server in a child process", func(t *testing.T) {
		dir := t.TempDir()
		s := newStoreAt(t, startChildServer(t), artifact.WithTempDir(dir))
		streamThrough(t, s, dir, size, uint64(min(64<<20, size/4)))
	})
	t.Run("embedded server", func(t *testing.T) {
		if os.Getenv("GANTRY_ARTIFACT_STREAM_EMBEDDED") == "" {
			t.Skip("measures nats-server's memory more than ours; set GANTRY_ARTIFACT_STREAM_EMBEDDED=1 to run")
		}
		dir := t.TempDir()
		s := newStore(t, artifact.WithTempDir(dir))
		streamThrough(t, s, dir, size, uint64(min(128<<20, size/2)))
	})
}

// streamThrough streams a size-byte file through s and fails if the heap in
// use grows by more than limit during PutDir or FetchAndUnpack.
func streamThrough(t *testing.T, s *fixture, dir string, size int64, limit uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	want := writeRandom(t, filepath.Join(src, "blob.bin"), size)
	files := []artifact.File{{DiskPath: filepath.Join(src, "blob.bin"), ArchivePath: "blob.bin"}}

	runtime.GC()
	putBase, allocs0 := readHeap(heapSamples())
	start := time.Now()
	sampler := startHeapSampler()
	ref, err := s.PutDir(ctx, testKey("big", "run-1", "blob"), "blob", files)
	putPeak := sampler.Stop()
	if err != nil {
		t.Fatalf("PutDir: %v", err)
	}
	putTime := time.Since(start)

	runtime.GC()
	getBase, _ := readHeap(heapSamples())
	start = time.Now()
	sampler = startHeapSampler()
	dest := filepath.Join(dir, "dest")
	err = s.FetchAndUnpack(ctx, ref, dest)
	getPeak := sampler.Stop()
	if err != nil {
		t.Fatalf("FetchAndUnpack: %v", err)
	}
	getTime := time.Since(start)
	_, allocs1 := readHeap(heapSamples())

	if got := hashFile(t, filepath.Join(dest, "blob.bin")); got != want {
		t.Fatal("unpacked file differs from the source")
	}
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	putGrowth, getGrowth := sub(putPeak, putBase), sub(getPeak, getBase)
	t.Logf("artifact %d MiB (archive %d bytes): PutDir %v, peak heap in use +%.1f MiB over %.1f MiB; FetchAndUnpack %v, peak +%.1f MiB over %.1f MiB; allocated in all %.0f MiB; limit +%.0f MiB",
		size>>20, ref.Size, putTime.Round(time.Millisecond), mib(putGrowth), mib(putBase),
		getTime.Round(time.Millisecond), mib(getGrowth), mib(getBase), mib(allocs1-allocs0), mib(limit))
	if putGrowth > limit {
		t.Errorf("PutDir grew the heap by %.1f MiB for a %d MiB artifact; limit %.0f MiB", mib(putGrowth), size>>20, mib(limit))
	}
	if getGrowth > limit {
		t.Errorf("FetchAndUnpack grew the heap by %.1f MiB for a %d MiB artifact; limit %.0f MiB", mib(getGrowth), size>>20, mib(limit))
	}
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}
