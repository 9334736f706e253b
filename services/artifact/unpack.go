package artifact

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Unpack extracts a gzip-compressed tar archive from r into destDir, creating
// destDir if needed. It streams: contents go straight to their files.
//
// It returns [ErrUnsafePath], naming the entry, and stops at the first entry
// that could write outside destDir or through a symbolic link: a name with
// ".." that leaves destDir, an absolute name, a symbolic link that is
// absolute, leaves destDir or has ".." after a name, an entry below a
// symbolic link (one made earlier by the same archive or already in
// destDir), a symbolic link replacing a directory, a hard link, a character
// or block device, a FIFO, a sparse file, or any other entry type. Entries
// written before the refused one stay; unpack into a fresh directory and
// remove it on error ([Store.FetchAndUnpack] does). All file system access
// goes through an [os.Root] on destDir, so even a concurrent change of
// destDir cannot make Unpack write outside it.
//
// Regular files and directories get the entry's permission bits (0777);
// set-user-ID, set-group-ID and sticky bits, owners and times are not
// restored. pax global headers are ignored. Unpack reads the gzip stream to
// its end, so a corrupt checksum is reported.
func Unpack(r io.Reader, destDir string) error {
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return err
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer zr.Close()
	u := &unpacker{root: root, dirs: map[string]bool{}, modes: map[string]fs.FileMode{}, buf: make([]byte, 256<<10)}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
	// The tar end marker may come before the end of the gzip stream; read
	// the rest so that the gzip checksum is checked.
	if _, err := io.CopyBuffer(io.Discard, zr, u.buf); err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	return u.setDirModes()
}

type unpacker struct {
	root *os.Root
	// dirs holds the directories known to be real directories (not links).
	// A directory is never replaced, so once known it stays one.
	dirs map[string]bool
	// modes holds the permission bits of directory entries, applied at the
	// end so that a read-only directory can still be filled.
	modes map[string]fs.FileMode
	buf   []byte
}

func unsafePath(name, format string, args ...any) error {
	return fmt.Errorf("%w: %q: %s", ErrUnsafePath, name, fmt.Sprintf(format, args...))
}

// entryName returns the clean, local form of a tar entry name.
func entryName(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", unsafePath(name, "empty name or NUL byte")
	}
	if filepath.IsAbs(name) || strings.HasPrefix(name, "/") {
		return "", unsafePath(name, "absolute path")
	}
	rel := filepath.Clean(filepath.FromSlash(name))
	if !filepath.IsLocal(rel) {
		return "", unsafePath(name, "path leaves the destination")
	}
	return rel, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeLink:
		return unsafePath(hdr.Name, "hard link to %q", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return unsafePath(hdr.Name, "device file")
	case tar.TypeFifo:
		return unsafePath(hdr.Name, "FIFO")
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
	default:
		return unsafePath(hdr.Name, "unsupported entry type %q", hdr.Typeflag)
	}
	for k := range hdr.PAXRecords {
		// A sparse file's holes cost nothing in the archive but are
		// written out in full: a few bytes could fill the disk. Pack never
		// makes them.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return unsafePath(hdr.Name, "sparse file")
		}
	}
	rel, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the destination itself
		}
		return unsafePath(hdr.Name, "names the destination directory")
	}
	if err := u.parents(hdr.Name, rel); err != nil {
		return err
	}
	existing, err := u.root.Lstat(rel)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	perm := fs.FileMode(hdr.Mode).Perm()
	switch hdr.Typeflag {
	case tar.TypeDir:
		if existing == nil {
			if err := u.root.Mkdir(rel, 0o700); err != nil {
				return err
			}
		} else if existing.Mode().Type() == fs.ModeSymlink {
			return unsafePath(hdr.Name, "directory over a symbolic link")
		} else if !existing.IsDir() {
			return fmt.Errorf("unpack %q: a file of that name exists", hdr.Name)
		}
		u.dirs[rel] = true
		u.modes[rel] = perm
		return nil
	case tar.TypeSymlink:
		if err := checkLinkTarget(rel, hdr.Linkname); err != nil {
			return err
		}
		if existing != nil {
			if existing.IsDir() {
				return unsafePath(hdr.Name, "symbolic link would replace a directory")
			}
			if err := u.root.Remove(rel); err != nil {
				return err
			}
		}
		return u.root.Symlink(hdr.Linkname, rel)
	default: // tar.TypeReg
		if existing != nil {
			if existing.Mode().Type() == fs.ModeSymlink {
				return unsafePath(hdr.Name, "writes through a symbolic link")
			}
			if !existing.Mode().IsRegular() {
				return fmt.Errorf("unpack %q: a non-regular file of that name exists", hdr.Name)
			}
		}
		return u.file(hdr, rel, perm, r)
	}
}

// parents makes sure every parent of rel is a real directory, creating the
// missing ones, and refuses a parent that is a symbolic link.
func (u *unpacker) parents(name, rel string) error {
	dir := filepath.Dir(rel)
	if dir == "." || u.dirs[dir] {
		return nil
	}
	sep := string(filepath.Separator)
	parts := strings.Split(dir, sep)
	for i := range parts {
		p := strings.Join(parts[:i+1], sep)
		if u.dirs[p] {
			continue
		}
		fi, err := u.root.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := u.root.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode().Type() == fs.ModeSymlink:
			return unsafePath(name, "parent %q is a symbolic link", filepath.ToSlash(p))
		case !fi.IsDir():
			return fmt.Errorf("unpack %q: parent %q is not a directory", name, filepath.ToSlash(p))
		}
		u.dirs[p] = true
	}
	return nil
}

func (u *unpacker) file(hdr *tar.Header, rel string, perm fs.FileMode, r io.Reader) error {
	f, err := u.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyBuffer(f, r, u.buf)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("unpack %q: %w", hdr.Name, err)
	}
	return nil
}

// setDirModes applies directory permissions deepest first, so that a
// directory is still searchable while its children are changed.
func (u *unpacker) setDirModes() error {
	names := make([]string, 0, len(u.modes))
	for name := range u.modes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range slices.Backward(names) {
		if err := u.root.Chmod(name, u.modes[name]); err != nil {
			return err
		}
	}
	return nil
}
