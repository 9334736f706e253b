package artifact

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// tree writes a small source tree with modes and symbolic links and returns
// its root.
func tree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "share/doc"), 0o755))
	must(os.WriteFile(filepath.Join(root, "bin/app"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "share/doc/README"), []byte("read me\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "private.key"), []byte("k"), 0o600))
	must(os.WriteFile(filepath.Join(root, "empty"), nil, 0o640))
	must(os.Symlink("bin/app", filepath.Join(root, "run")))
	must(os.Symlink("../../bin", filepath.Join(root, "share/doc/bin")))
	must(os.Chmod(filepath.Join(root, "share/doc"), 0o750))
	return root
}

func packTree(t testing.TB, root string) []byte {
	t.Helper()
	files, err := DirFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(context.Background(), &buf, files); err != nil {
		t.Fatalf("Pack: %v", err)
	}
	return buf.Bytes()
}

// snapshot describes a tree: for each path its mode, and its contents or
// link target.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
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
			desc += " " + string(b)
		case fi.Mode().Type() == fs.ModeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalSnapshots(t testing.TB, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s missing", p)
		} else if g != w {
			t.Errorf("%s = %q, want %q", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s unexpected", p)
		}
	}
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := tree(t)
	dest := filepath.Join(t.TempDir(), "out")
	if err := Unpack(bytes.NewReader(packTree(t, src)), dest); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	equalSnapshots(t, snapshot(t, dest), snapshot(t, src))
}

func TestPackIsDeterministic(t *testing.T) {
	src := tree(t)
	first := packTree(t, src)
	// Other times, another copy in another place, listed in another order:
	// the same bytes.
	later := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "bin/app"), later, later); err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := Unpack(bytes.NewReader(first), copyDir); err != nil {
		t.Fatal(err)
	}
	files, err := DirFiles(copyDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	var second bytes.Buffer
	if err := Pack(context.Background(), &second, files); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second.Bytes()) {
		t.Error("the same files packed to different bytes")
	}
	if again := packTree(t, src); !bytes.Equal(first, again) {
		t.Error("packing twice gave different bytes")
	}
}

func TestPackRefuses(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(root, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	abs, up, etc := link("abs", "/etc/passwd"), link("up", "../outside"), link("etc", "/etc")
	inside := link("in", "f")
	cases := map[string][]File{
		"absolute archive path":    {{file, "/f"}},
		"dotdot archive path":      {{file, "../f"}},
		"empty archive path":       {{file, ""}},
		"dot archive path":         {{file, "./"}},
		"duplicate archive path":   {{file, "a"}, {file, "./a"}},
		"absolute symlink":         {{abs, "abs"}},
		"symlink out of the tree":  {{up, "up"}},
		"entry below a symlink":    {{inside, "d"}, {file, "d/f"}},
		"entry below outside link": {{etc, "etc"}, {file, "etc/x"}},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Pack(context.Background(), &buf, files); !errors.Is(err, ErrUnsafePath) {
				t.Errorf("Pack = %v, want ErrUnsafePath", err)
			}
		})
	}
	t.Run("fifo", func(t *testing.T) {
		fifo := filepath.Join(root, "fifo")
		if err := mkfifo(fifo); err != nil {
			t.Skip("no FIFOs here:", err)
		}
		var buf bytes.Buffer
		if err := Pack(context.Background(), &buf, []File{{fifo, "fifo"}}); !errors.Is(err, ErrUnsupportedFile) {
			t.Errorf("Pack = %v, want ErrUnsupportedFile", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var buf bytes.Buffer
		if err := Pack(ctx, &buf, []File{{file, "f"}}); !errors.Is(err, context.Canceled) {
			t.Errorf("Pack = %v, want context.Canceled", err)
		}
	})
}
