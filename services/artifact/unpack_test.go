package artifact

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// ent is one hand-built tar entry.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func reg(name, body string) ent { return ent{name: name, typ: tar.TypeReg, body: body, mode: 0o644} }
func dir(name string) ent       { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}

// tarGz builds a tar.gz stream by hand, without Pack's checks.
func tarGz(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("body %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox returns a fresh parent directory and the destination inside it.
// Anything but "dest" appearing in the parent is a write outside.
func sandbox(t testing.TB) (parent, dest string) {
	t.Helper()
	parent = t.TempDir()
	return parent, filepath.Join(parent, "dest")
}

// assertContained fails if parent holds anything but dest, or if a symbolic
// link under dest resolves outside dest.
func assertContained(t testing.TB, parent, dest string) {
	t.Helper()
	list, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.Name() != filepath.Base(dest) {
			t.Errorf("%s appeared beside the destination", e.Name())
		}
	}
	realDest, err := filepath.EvalSymlinks(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type() != fs.ModeSymlink {
			return nil
		}
		to, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil // dangling or looping: leads nowhere
		}
		if rel, err := filepath.Rel(realDest, to); err != nil || !filepath.IsLocal(rel) && rel != "." {
			t.Errorf("symbolic link %s resolves to %s, outside %s", p, to, realDest)
		}
		return nil
	})
}

func TestUnpackAccepts(t *testing.T) {
	cases := []struct {
		name    string
		entries []ent
		files   map[string]string      // path -> contents
		links   map[string]string      // path -> target
		modes   map[string]fs.FileMode // path -> permission bits
	}{
		{
			name:    "file without parent entries",
			entries: []ent{reg("a/b/c.txt", "hi")},
			files:   map[string]string{"a/b/c.txt": "hi"},
		},
		{
			name:    "dot slash names and the root entry",
			entries: []ent{dir("./"), reg("./x", "1")},
			files:   map[string]string{"x": "1"},
		},
		{
			name:    "dotdot that stays inside",
			entries: []ent{reg("a/../b", "2")},
			files:   map[string]string{"b": "2"},
		},
		{
			name: "modes",
			entries: []ent{
				{name: "bin/", typ: tar.TypeDir, mode: 0o555},
				{name: "bin/run", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o755},
				{name: "secret", typ: tar.TypeReg, body: "s", mode: 0o600},
				{name: "suid", typ: tar.TypeReg, body: "x", mode: 0o4755},
			},
			files: map[string]string{"bin/run": "#!/bin/sh\n", "secret": "s", "suid": "x"},
			modes: map[string]fs.FileMode{"bin": fs.ModeDir | 0o555, "bin/run": 0o755, "secret": 0o600, "suid": 0o755},
		},
		{
			name:    "symbolic links inside",
			entries: []ent{reg("lib/v1/x.so", "so"), symlink("lib/cur", "v1"), symlink("lib/v1/up", "../cur/x.so"), symlink("self", "."), symlink("dangling", "nope")},
			files:   map[string]string{"lib/cur/x.so": "so", "lib/v1/up": "so"},
			links:   map[string]string{"lib/cur": "v1", "self": ".", "dangling": "nope"},
		},
		{
			name:    "later entry replaces a file and a link",
			entries: []ent{reg("f", "old"), reg("f", "new"), symlink("l", "f"), symlink("l", "g"), reg("g", "g")},
			files:   map[string]string{"f": "new", "l": "g"},
			links:   map[string]string{"l": "g"},
		},
		{
			name:    "pax global header is ignored",
			entries: []ent{{name: "pax_global_header", typ: tar.TypeXGlobalHeader}, reg("f", "x")},
			files:   map[string]string{"f": "x"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, dest := sandbox(t)
			if err := Unpack(bytes.NewReader(tarGz(t, tc.entries...)), dest); err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			t.Cleanup(func() { chmodWritable(dest) })
			for p, want := range tc.files {
				got, err := os.ReadFile(filepath.Join(dest, p))
				if err != nil || string(got) != want {
					t.Errorf("%s = %q, %v; want %q", p, got, err, want)
				}
			}
			for p, want := range tc.links {
				if got, err := os.Readlink(filepath.Join(dest, p)); err != nil || got != want {
					t.Errorf("link %s -> %q, %v; want %q", p, got, err, want)
				}
			}
			for p, want := range tc.modes {
				fi, err := os.Lstat(filepath.Join(dest, p))
				if err != nil || fi.Mode() != want {
					t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode(), err, want)
				}
			}
			assertContained(t, parent, dest)
		})
	}
}

// chmodWritable lets t.TempDir's cleanup remove read-only directories.
func chmodWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

func TestUnpackRefuses(t *testing.T) {
	cases := []struct {
		name    string
		entries []ent
		bad     string // the entry the error must name
	}{
		{"dotdot", []ent{reg("../x", "evil")}, "../x"},
		{"dotdot deeper", []ent{reg("a/../../x", "evil")}, "a/../../x"},
		{"absolute", []ent{reg("/etc/x", "evil")}, "/etc/x"},
		{"absolute directory", []ent{dir("/tmp/gantry-evil/")}, "/tmp/gantry-evil/"},
		{"empty name", []ent{reg("", "evil")}, ""},
		{"symlink to root", []ent{symlink("l", "/")}, "l"},
		{"symlink absolute", []ent{symlink("l", "/etc/passwd")}, "l"},
		{"symlink to parent", []ent{symlink("l", "..")}, "l"},
		{"symlink up too far", []ent{symlink("a/b/l", "../../../x")}, "a/b/l"},
		{"symlink empty target", []ent{symlink("l", "")}, "l"},
		{"symlink dotdot after name", []ent{symlink("c", "."), symlink("b", "c/..")}, "b"},
		{"symlink then file through it", []ent{symlink("l", "/tmp"), reg("l/x", "evil")}, "l"},
		{"inside symlink then file through it", []ent{dir("sub/"), symlink("l", "sub"), reg("l/x", "evil")}, "l/x"},
		{"inside symlink then directory through it", []ent{dir("sub/"), symlink("l", "sub"), dir("l/d/")}, "l/d/"},
		{"symlink then file over it", []ent{reg("t", "t"), symlink("l", "t"), reg("l", "evil")}, "l"},
		{"directory over symlink", []ent{dir("sub/"), symlink("l", "sub"), dir("l/")}, "l/"},
		{"symlink replacing a directory", []ent{reg("d/f", "x"), symlink("d", ".")}, "d"},
		{"hard link", []ent{reg("f", "x"), {name: "h", typ: tar.TypeLink, link: "f"}}, "h"},
		{"hard link outside", []ent{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, "h"},
		{"char device", []ent{{name: "null", typ: tar.TypeChar, mode: 0o666}}, "null"},
		{"block device", []ent{{name: "sda", typ: tar.TypeBlock, mode: 0o660}}, "sda"},
		{"fifo", []ent{{name: "p", typ: tar.TypeFifo, mode: 0o644}}, "p"},
		{"file names the destination", []ent{reg(".", "x")}, "."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent, dest := sandbox(t)
			err := Unpack(bytes.NewReader(tarGz(t, tc.entries...)), dest)
			if !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("Unpack = %v, want ErrUnsafePath", err)
			}
			if want := `"` + tc.bad + `"`; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name the entry %s", err, want)
			}
			assertContained(t, parent, dest)
		})
	}
}

func TestUnpackRefusesExistingSymlinkInDest(t *testing.T) {
	parent, dest := sandbox(t)
	outside := filepath.Join(parent, "outside")
	for _, d := range []string{dest, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dest, "out")); err != nil {
		t.Fatal(err)
	}
	for _, e := range []ent{reg("out/x", "evil"), reg("out", "evil"), dir("out/d/")} {
		err := Unpack(bytes.NewReader(tarGz(t, e)), dest)
		if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("entry %q: Unpack = %v, want ErrUnsafePath", e.name, err)
		}
	}
	if list, _ := os.ReadDir(outside); len(list) != 0 {
		t.Errorf("wrote %d entries through the symbolic link", len(list))
	}
}

func TestUnpackRejectsCorruptStreams(t *testing.T) {
	good := tarGz(t, reg("f", strings.Repeat("x", 10000)))
	truncated := good[:len(good)-10]
	flipped := bytes.Clone(good)
	flipped[len(flipped)-6] ^= 0xff // in the CRC-32 trailer
	for name, data := range map[string][]byte{"not gzip": []byte("plain text"), "truncated": truncated, "bad checksum": flipped} {
		t.Run(name, func(t *testing.T) {
			if err := Unpack(bytes.NewReader(data), t.TempDir()); err == nil {
				t.Error("Unpack accepted a corrupt stream")
			}
		})
	}
}

// sparseTarGz is a tar.gz holding one GNU sparse (PAX 0.1) file of 1 TiB
// with one byte of data. archive/tar's Writer drops the GNU.sparse records,
// so the PAX header is written as a regular entry and its type patched.
func sparseTarGz(t testing.TB) []byte {
	t.Helper()
	var records string
	for _, kv := range [][2]string{
		{"GNU.sparse.major", "0"}, {"GNU.sparse.minor", "1"},
		{"GNU.sparse.numblocks", "1"}, {"GNU.sparse.map", "0,1"},
		{"GNU.sparse.size", "1099511627776"},
	} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		if len(strconv.Itoa(n)+rec) != n {
			n++
		}
		records += strconv.Itoa(n) + rec
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range []ent{{name: "PaxHeaders/holes", typ: tar.TypeReg, body: records, mode: 0o644}, reg("holes", "x")} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	b := raw.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestUnpackRefusesSparseFiles(t *testing.T) {
	data := sparseTarGz(t)
	// The stream is what it claims to be: a 1 TiB file.
	zr, _ := gzip.NewReader(bytes.NewReader(data))
	hdr, err := tar.NewReader(zr).Next()
	if err != nil || hdr.Name != "holes" || hdr.Size != 1<<40 {
		t.Fatalf("sparse stream reads as %+v, %v", hdr, err)
	}
	parent, dest := sandbox(t)
	if err := Unpack(bytes.NewReader(data), dest); !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), `"holes"`) {
		t.Fatalf("Unpack = %v, want ErrUnsafePath naming \"holes\"", err)
	}
	assertContained(t, parent, dest)
}
