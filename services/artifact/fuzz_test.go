package artifact

import (
	"bytes"
	"context"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// FuzzUnpack feeds arbitrary bytes to Unpack as a tar.gz. When raw is set,
// the bytes are a tar stream and are gzipped first, so that the fuzzer
// explores tar headers rather than deflate. Unpack must never panic, and
// whatever it accepts or refuses, nothing may appear beside the destination
// and no symbolic link inside it may resolve outside it.
func FuzzUnpack(f *testing.F) {
	seeds := [][]ent{
		{reg("a/b/c.txt", "hi"), dir("d/"), symlink("d/l", "../a")},
		{reg("../x", "evil")},
		{reg("/etc/x", "evil")},
		{symlink("l", "/"), reg("l/x", "evil")},
		{dir("sub/"), symlink("l", "sub"), reg("l/x", "evil")},
		{symlink("c", "."), symlink("b", "c/..")},
		{reg("f", "x"), {name: "h", typ: '1', link: "/etc/passwd"}},
		{{name: "null", typ: '3', mode: 0o666}},
		{{name: "ro/", typ: '5', mode: 0o555}, reg("ro/f", "x")},
	}
	for _, entries := range seeds {
		gz := tarGz(f, entries...)
		f.Add(gz, false)
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			f.Fatal(err)
		}
		var raw bytes.Buffer
		raw.ReadFrom(zr)
		f.Add(raw.Bytes(), true)
	}
	f.Add(sparseTarGz(f), false)
	var packed bytes.Buffer
	if err := Pack(context.Background(), &packed, []File{}); err != nil {
		f.Fatal(err)
	}
	f.Add(packed.Bytes(), false)

	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		if raw {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(data)
			zw.Close()
			data = buf.Bytes()
		}
		parent, dest := sandbox(t)
		t.Cleanup(func() { chmodWritable(dest) })
		_ = Unpack(bytes.NewReader(data), dest)
		assertContained(t, parent, dest)
	})
}
