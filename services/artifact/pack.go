package artifact

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// File is one entry of an artifact: the file on disk and the slash-separated
// path it gets inside the archive.
type File struct {
	DiskPath    string
	ArchivePath string
}

// epoch is the modification time of every entry, so that an archive depends
// only on names, modes and contents.
var epoch = time.Unix(0, 0)

// Pack writes a gzip-compressed tar archive of files to w, streaming: file
// contents are copied, never held in memory.
//
// Each File is one entry (directories are not walked; see [DirFiles]).
// Regular files, directories and symbolic links are supported; permission
// bits (0777) are kept, set-user-ID, set-group-ID and sticky bits are not.
// Entries are written sorted by archive path with zero times, user and group
// IDs and names, so the same files give the same bytes.
//
// Pack returns [ErrUnsafePath] for an archive path that is empty, absolute or
// leaves the archive root, for a duplicate archive path, for a symbolic link
// whose target is absolute or leaves the archive root (the rules of
// [Unpack]), and for an entry below a symbolic link of the same archive;
// [ErrUnsupportedFile] for other file types; ctx's error when it is done.
func Pack(ctx context.Context, w io.Writer, files []File) error {
	entries, err := packOrder(files)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	zw, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	links := map[string]bool{}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p := underLink(e.ArchivePath, links); p != "" {
			return fmt.Errorf("%w: %q is below the symbolic link %q", ErrUnsafePath, e.ArchivePath, p)
		}
		isLink, err := packOne(ctx, tw, e)
		if err != nil {
			return err
		}
		if isLink {
			links[e.ArchivePath] = true
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// packOrder validates and cleans the archive paths and sorts a copy of files
// by them. Sorting puts every directory before what it holds.
func packOrder(files []File) ([]File, error) {
	out := make([]File, len(files))
	for i, f := range files {
		p, err := cleanArchivePath(f.ArchivePath)
		if err != nil {
			return nil, err
		}
		out[i] = File{DiskPath: f.DiskPath, ArchivePath: p}
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.ArchivePath, b.ArchivePath) })
	for i := 1; i < len(out); i++ {
		if out[i].ArchivePath == out[i-1].ArchivePath {
			return nil, fmt.Errorf("%w: %q appears twice", ErrUnsafePath, out[i].ArchivePath)
		}
	}
	return out, nil
}

func cleanArchivePath(p string) (string, error) {
	c := path.Clean(p)
	if p == "" || strings.ContainsRune(p, 0) || path.IsAbs(p) || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: archive path %q must be a relative path inside the archive", ErrUnsafePath, p)
	}
	return c, nil
}

// underLink returns the first proper prefix of p that is in links.
func underLink(p string, links map[string]bool) string {
	for i := range len(p) {
		if p[i] == '/' && links[p[:i]] {
			return p[:i]
		}
	}
	return ""
}

func packOne(ctx context.Context, tw *tar.Writer, f File) (isLink bool, err error) {
	fi, err := os.Lstat(f.DiskPath)
	if err != nil {
		return false, err
	}
	hdr := &tar.Header{
		Name:    f.ArchivePath,
		Mode:    int64(fi.Mode().Perm()),
		ModTime: epoch,
	}
	switch fi.Mode().Type() {
	case 0:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = fi.Size()
		return false, packFile(ctx, tw, hdr, f.DiskPath)
	case fs.ModeDir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return false, tw.WriteHeader(hdr)
	case fs.ModeSymlink:
		target, err := os.Readlink(f.DiskPath)
		if err != nil {
			return false, err
		}
		if err := checkLinkTarget(f.ArchivePath, target); err != nil {
			return false, err
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
		return true, tw.WriteHeader(hdr)
	default:
		return false, fmt.Errorf("%w: %s is %v", ErrUnsupportedFile, f.DiskPath, fi.Mode().Type())
	}
}

func packFile(ctx context.Context, tw *tar.Writer, hdr *tar.Header, diskPath string) error {
	file, err := os.Open(diskPath)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, ctxReader{ctx, io.LimitReader(file, hdr.Size)})
	if err != nil {
		return fmt.Errorf("pack %s: %w", diskPath, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("pack %s: file shrank from %d to %d bytes while packing", diskPath, hdr.Size, n)
	}
	return nil
}

// checkLinkTarget applies the symbolic link rules of Pack and Unpack to a link
// at the clean relative path name: the target is relative, not empty, and
// made of zero or more ".." followed by names only, with no more ".." than
// the link's directory is deep. Names after the ".." may be other links of
// the tree, which obey the same rule, so following any chain of links never
// leaves the tree.
func checkLinkTarget(name, target string) error {
	if target == "" || strings.ContainsRune(target, 0) || filepath.IsAbs(target) || path.IsAbs(target) {
		return fmt.Errorf("%w: symbolic link %q -> %q: target must be a relative path", ErrUnsafePath, name, target)
	}
	ups, named := 0, false
	for part := range strings.SplitSeq(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if named {
				return fmt.Errorf("%w: symbolic link %q -> %q: \"..\" after a name", ErrUnsafePath, name, target)
			}
			ups++
		default:
			named = true
		}
	}
	depth := strings.Count(path.Clean(filepath.ToSlash(name)), "/")
	if ups > depth {
		return fmt.Errorf("%w: symbolic link %q -> %q points outside the tree", ErrUnsafePath, name, target)
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// DirFiles lists root's contents (not root itself) as Files, with archive
// paths relative to root, in lexical order. Symbolic links are listed, not
// followed.
func DirFiles(root string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, File{DiskPath: p, ArchivePath: filepath.ToSlash(rel)})
		return nil
	})
	return files, err
}
