package runner

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/gantry-ci/gantry/services/buildspec"
)

// File is one file to store: where it is and what it is called in the
// archive.
type File struct {
	// Path is the file's absolute path on disk, symlinks resolved.
	Path string
	// Name is its slash-separated path in the archive: relative to the base
	// directory, or only the file name with discard-paths.
	Name string
	Mode fs.FileMode
	Size int64
}

// CollectArtifacts resolves the artifacts' file globs (doublestar syntax:
// *, **, ?, [a-z], {a,b}) relative to base-directory in the workspace and
// returns the matching regular files sorted by Name.
//
// Every match must resolve, symlinks followed, to a file inside the
// workspace, or CollectArtifacts fails with ErrOutsideWorkspace naming it;
// "**" does not descend into symlinked directories. Directories, devices,
// pipes and sockets are skipped. It returns ErrNoFiles when nothing
// matches, ErrDuplicateName when discard-paths gives two files the same
// name, and ErrInvalidGlob for a glob the buildspec parser would refuse.
func CollectArtifacts(workspace string, spec buildspec.Artifacts) ([]File, error) {
	return collect(workspace, spec.BaseDirectory, spec.Files, spec.DiscardPaths)
}

// CollectReport resolves a report's file globs the same way, for the test
// worker to read the JUnit files.
func CollectReport(workspace string, spec buildspec.Report) ([]File, error) {
	return collect(workspace, spec.BaseDirectory, spec.Files, false)
}

func collect(workspace, baseDir string, globs []string, discard bool) ([]File, error) {
	root, err := filepath.Abs(workspace)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	base := root
	if baseDir != "" {
		if msg := buildspec.DirProblem(baseDir); msg != "" {
			return nil, fmt.Errorf("%w: base-directory %s", ErrInvalidGlob, msg)
		}
		base, err = filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(baseDir)))
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%w: base-directory %q does not exist", ErrNoFiles, baseDir)
		}
		if err != nil {
			return nil, fmt.Errorf("base-directory %q: %w", baseDir, err)
		}
		if !within(root, base) {
			return nil, fmt.Errorf("%w: base-directory %q resolves to %s", ErrOutsideWorkspace, baseDir, base)
		}
	}
	fsys := os.DirFS(base)
	byName := map[string]File{}
	for _, g := range globs {
		if msg := buildspec.GlobProblem(g); msg != "" {
			return nil, fmt.Errorf("%w: %s", ErrInvalidGlob, msg)
		}
		matches, err := doublestar.Glob(fsys, g, doublestar.WithFilesOnly(), doublestar.WithNoFollow(), doublestar.WithFailOnIOErrors())
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", g, err)
		}
		for _, m := range matches {
			f, ok, err := resolve(root, base, m)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if discard {
				f.Name = path.Base(m)
			}
			if prev, dup := byName[f.Name]; dup {
				if prev.Path != f.Path {
					return nil, fmt.Errorf("%w: %s and %s are both %s", ErrDuplicateName, prev.Path, f.Path, f.Name)
				}
				continue
			}
			byName[f.Name] = f
		}
	}
	if len(byName) == 0 {
		return nil, fmt.Errorf("%w: %s in %s", ErrNoFiles, strings.Join(globs, ", "), base)
	}
	out := make([]File, 0, len(byName))
	for _, f := range byName {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resolve checks one match: ok is false for what is not a regular file.
func resolve(root, base, match string) (File, bool, error) {
	disk := filepath.Join(base, filepath.FromSlash(match))
	real, err := filepath.EvalSymlinks(disk)
	if err != nil {
		if os.IsNotExist(err) { // a dangling symlink, or gone meanwhile
			return File{}, false, nil
		}
		return File{}, false, fmt.Errorf("%s: %w", match, err)
	}
	if !within(root, real) {
		return File{}, false, fmt.Errorf("%w: %s resolves to %s", ErrOutsideWorkspace, match, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return File{}, false, fmt.Errorf("%s: %w", match, err)
	}
	if !fi.Mode().IsRegular() {
		return File{}, false, nil
	}
	return File{Path: real, Name: match, Mode: fi.Mode().Perm(), Size: fi.Size()}, true, nil
}

// within reports whether p is root or below it; both are clean absolute
// paths.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
