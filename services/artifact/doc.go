// Package artifact moves files between pipeline actions through the
// JetStream Object Store bucket [events.BucketArtifacts].
//
// An artifact is a deterministic tar.gz ([Pack]): the same files with the
// same contents and modes always give the same bytes, so the same SHA-256.
// The digest and size travel in the event that names the artifact
// ([events.ArtifactRef]); a consumer downloads the object to a temporary
// file while hashing it, refuses it with [ErrDigestMismatch] when the bytes
// differ from the reference, and only then unpacks it ([Store.FetchAndUnpack]).
// [Unpack] refuses every entry that could write outside its destination
// ([ErrUnsafePath]).
//
// Everything streams: an artifact is never held whole in memory, on the way
// in ([Store.PutDir] packs through a pipe into the object store) or on the
// way out.
//
// The same [Store] keeps plain objects such as archived logs: [Store.Put],
// [Store.PutFile], [Store.Open] and [Store.Fetch] work on any key.
package artifact
