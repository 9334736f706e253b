package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-ci/gantry/services/appspec"
)

// install copies the appspec's files from the bundle to their
// destinations (under installRoot when set) and returns the paths it
// wrote. A file already at a destination that the previous deployment did
// not install is handled by the file_exists_behavior.
func install(spec *appspec.Spec, bundle, installRoot string, previous map[string]bool, log io.Writer) ([]string, error) {
	var written []string
	for i, f := range spec.Files {
		src := filepath.Join(bundle, filepath.FromSlash(strings.TrimPrefix(f.Source, "/")))
		dst := filepath.Join(installRoot, filepath.FromSlash(f.Destination))
		fi, err := os.Stat(src)
		if err != nil {
			return written, fmt.Errorf("files[%d]: source %s: %w", i, f.Source, err)
		}
		var pairs [][2]string
		if fi.IsDir() {
			err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, err := filepath.Rel(src, p)
				if err != nil {
					return err
				}
				pairs = append(pairs, [2]string{p, filepath.Join(dst, rel)})
				return nil
			})
			if err != nil {
				return written, fmt.Errorf("files[%d]: %w", i, err)
			}
		} else {
			pairs = append(pairs, [2]string{src, filepath.Join(dst, filepath.Base(src))})
		}
		for _, p := range pairs {
			if _, err := os.Lstat(p[1]); err == nil && !previous[p[1]] {
				switch spec.FileExistsBehavior {
				case appspec.Retain:
					fmt.Fprintf(log, "keeping %s (file_exists_behavior RETAIN)\n", p[1])
					continue
				case appspec.Overwrite:
					fmt.Fprintf(log, "overwriting %s (file_exists_behavior OVERWRITE)\n", p[1])
				default:
					return written, fmt.Errorf("%s already exists and was not installed by the previous deployment (file_exists_behavior DISALLOW)", p[1])
				}
			}
			if err := copyFile(p[0], p[1]); err != nil {
				return written, err
			}
			written = append(written, p[1])
		}
	}
	fmt.Fprintf(log, "installed %d files\n", len(written))
	return written, nil
}

func copyFile(src, dst string) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		_ = os.Remove(dst)
		return os.Symlink(target, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".gantry-tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// manifest is the list of files the last Install wrote, kept in the root.
func readManifest(path string) map[string]bool {
	b, err := os.ReadFile(path)
	m := map[string]bool{}
	if err != nil {
		return m
	}
	var list []string
	if json.Unmarshal(b, &list) == nil {
		for _, p := range list {
			m[p] = true
		}
	}
	return m
}

func writeManifest(path string, files []string) error {
	b, err := json.Marshal(files)
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return strings.TrimSpace(string(b))
}
