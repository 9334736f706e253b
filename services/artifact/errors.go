package artifact

import "errors"

var (
	// ErrDigestMismatch is returned (wrapped with the key and what differed)
	// by [Store.Fetch], [Store.FetchAndUnpack] and readers from [Store.Open]
	// when the bytes in the object store do not have the SHA-256 digest or the
	// size that the reference names. Bytes already written to the destination
	// must then be thrown away; [Store.FetchAndUnpack] unpacks nothing.
	ErrDigestMismatch = errors.New("artifact digest mismatch")

	// ErrUnsafePath is returned (wrapped with the entry's name and the reason)
	// by [Unpack] for an entry that could write outside the destination
	// directory or through a symbolic link: a path with "..", an absolute
	// path, a symbolic link whose target leaves the tree, an entry below a
	// symbolic link, a hard link, a device file or any other entry type that
	// is not a regular file, a directory or a symbolic link. [Pack] returns it
	// for an archive path or a symbolic link it would refuse to unpack.
	ErrUnsafePath = errors.New("unsafe path in artifact")

	// ErrUnsupportedFile is returned by [Pack] for a file that is neither a
	// regular file, a directory nor a symbolic link (sockets, devices, pipes).
	ErrUnsupportedFile = errors.New("unsupported file type")

	// ErrNotFound is returned (wrapped with the key) when the object store has
	// no object under a key.
	ErrNotFound = errors.New("artifact not found")

	// ErrExists is returned (wrapped with the key and what it holds) by
	// [Store.Put] and [Store.PutDir] for a key that holds an object already:
	// objects are write-once.
	ErrExists = errors.New("artifact key already holds an object")

	// ErrInvalidRef is returned (wrapped with detail) when an
	// [events.ArtifactRef] has no key, a digest that is not 64 lowercase hex
	// digits, or a negative size.
	ErrInvalidRef = errors.New("invalid artifact reference")
)
