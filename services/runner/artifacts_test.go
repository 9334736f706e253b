package runner

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gantry-ci/gantry/services/buildspec"
)

// tree creates files (path -> content) and symlinks (path -> "->target")
// under dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if len(content) > 2 && content[:2] == "->" {
			if err := os.Symlink(content[2:], full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}

func TestCollectArtifacts(t *testing.T) {
	ws := t.TempDir()
	outside := t.TempDir()
	tree(t, outside, map[string]string{"secret.txt": "s"})
	tree(t, ws, map[string]string{
		"dist/app":              "bin",
		"dist/lib/a.jar":        "a",
		"dist/lib/b.jar":        "b",
		"dist/lib/nested/c.jar": "c",
		"dist/docs/readme.md":   "r",
		"dist/link-in":          "->lib/a.jar",
		"dist/dangling":         "->nowhere",
		"src/main.go":           "package main",
		"other/a.jar":           "other a",
	})
	real := func(p string) string {
		r, err := filepath.EvalSymlinks(filepath.Join(ws, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name  string
		spec  buildspec.Artifacts
		want  []string
		paths map[string]string // Name -> path relative to ws
		err   error
	}{
		{name: "base directory and doublestar",
			spec: buildspec.Artifacts{BaseDirectory: "dist", Files: []string{"**/*.jar", "app"}},
			want: []string{"app", "lib/a.jar", "lib/b.jar", "lib/nested/c.jar"}},
		{name: "everything, symlink inside resolved, dangling skipped",
			spec:  buildspec.Artifacts{BaseDirectory: "dist", Files: []string{"**/*"}},
			want:  []string{"app", "docs/readme.md", "lib/a.jar", "lib/b.jar", "lib/nested/c.jar", "link-in"},
			paths: map[string]string{"link-in": "dist/lib/a.jar"}},
		{name: "workspace root, alternatives, overlapping globs",
			spec: buildspec.Artifacts{Files: []string{"{src,dist/docs}/*", "src/**"}},
			want: []string{"dist/docs/readme.md", "src/main.go"}},
		{name: "discard paths",
			spec:  buildspec.Artifacts{BaseDirectory: "dist/lib", Files: []string{"**/*.jar"}, DiscardPaths: true},
			want:  []string{"a.jar", "b.jar", "c.jar"},
			paths: map[string]string{"c.jar": "dist/lib/nested/c.jar"}},
		{name: "discard paths collision",
			spec: buildspec.Artifacts{Files: []string{"**/a.jar"}, DiscardPaths: true},
			err:  ErrDuplicateName},
		{name: "no match",
			spec: buildspec.Artifacts{Files: []string{"*.exe"}},
			err:  ErrNoFiles},
		{name: "missing base directory",
			spec: buildspec.Artifacts{BaseDirectory: "build", Files: []string{"*"}},
			err:  ErrNoFiles},
		{name: "dot dot in glob",
			spec: buildspec.Artifacts{BaseDirectory: "dist", Files: []string{"../src/*"}},
			err:  ErrInvalidGlob},
		{name: "absolute glob",
			spec: buildspec.Artifacts{Files: []string{"/etc/passwd"}},
			err:  ErrInvalidGlob},
		{name: "dot dot in base directory",
			spec: buildspec.Artifacts{BaseDirectory: "dist/../..", Files: []string{"*"}},
			err:  ErrInvalidGlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := CollectArtifacts(ws, tc.spec)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(files); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("names %q, want %q", got, tc.want)
			}
			for _, f := range files {
				want := filepath.Join(tc.spec.BaseDirectory, f.Name)
				if p, ok := tc.paths[f.Name]; ok {
					want = p
				}
				if f.Path != real(want) {
					t.Errorf("%s: path %s, want %s", f.Name, f.Path, real(want))
				}
				if f.Size == 0 || f.Mode == 0 {
					t.Errorf("%s: size %d mode %v", f.Name, f.Size, f.Mode)
				}
			}
		})
	}
}

// TestCollectRefusesEscapes: a symlink to a file or directory outside the
// workspace, or a base directory that is one, is refused, not followed.
func TestCollectRefusesEscapes(t *testing.T) {
	outside := t.TempDir()
	tree(t, outside, map[string]string{"secret.txt": "s", "dir/secret2.txt": "s2"})
	for _, tc := range []struct {
		name  string
		files map[string]string
		spec  buildspec.Artifacts
	}{
		{"file symlink", map[string]string{"out/ok": "ok", "out/leak": "->" + filepath.Join(outside, "secret.txt")},
			buildspec.Artifacts{Files: []string{"out/*"}}},
		{"relative file symlink", map[string]string{"out/ok": "ok", "out/leak": "->../../" + filepath.Base(outside) + "/secret.txt"},
			buildspec.Artifacts{Files: []string{"out/**"}}},
		{"directory symlink named in the glob", map[string]string{"out/ok": "ok", "out/d": "->" + filepath.Join(outside, "dir")},
			buildspec.Artifacts{Files: []string{"out/d/*"}}},
		{"directory symlink under doublestar", map[string]string{"out/ok": "ok", "out/d": "->" + filepath.Join(outside, "dir")},
			buildspec.Artifacts{Files: []string{"**/*"}}},
		{"base directory symlink", map[string]string{"out": "->" + filepath.Join(outside, "dir")},
			buildspec.Artifacts{BaseDirectory: "out", Files: []string{"*"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := filepath.Join(filepath.Dir(outside), "ws-"+filepath.Base(t.TempDir()))
			if err := os.Mkdir(ws, 0o755); err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(ws)
			tree(t, ws, tc.files)
			files, err := CollectArtifacts(ws, tc.spec)
			if !errors.Is(err, ErrOutsideWorkspace) {
				t.Fatalf("got %v, %v; want ErrOutsideWorkspace", names(files), err)
			}
		})
	}
}

// TestCollectWorkspaceSymlink: a workspace reached through a symlink works.
func TestCollectWorkspaceSymlink(t *testing.T) {
	dir := t.TempDir()
	tree(t, dir, map[string]string{"real/a.txt": "a", "ws": "->real"})
	files, err := CollectArtifacts(filepath.Join(dir, "ws"), buildspec.Artifacts{Files: []string{"*.txt"}})
	if err != nil || len(files) != 1 || files[0].Name != "a.txt" {
		t.Fatalf("%v %v", files, err)
	}
}

func TestCollectReport(t *testing.T) {
	ws := t.TempDir()
	tree(t, ws, map[string]string{"build/test-results/TEST-a.xml": "<x/>", "build/test-results/sub/TEST-b.xml": "<x/>", "build/other.txt": ""})
	files, err := CollectReport(ws, buildspec.Report{BaseDirectory: "build", Files: []string{"test-results/**/TEST-*.xml"}, FileFormat: "JUNITXML"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(files), []string{"test-results/TEST-a.xml", "test-results/sub/TEST-b.xml"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}
