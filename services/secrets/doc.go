// Package secrets stores secret values and resolves the secret references
// of a task into them.
//
// A reference (events.ValidSecretRef) is either a secret's name, whose
// value is in the JetStream KV bucket events.BucketSecrets (written by
// `gantry secret set`), or file: and an absolute path on the worker host,
// which must lie inside one of the directories the worker was given
// (--secrets-dir, default /run/secrets, where Docker and Kubernetes mount
// secrets), so that a buildspec cannot read arbitrary files of the worker
// through a reference.
//
// Values are at least redact.MinLen bytes (shorter ones could not be
// masked in logs and are refused), at most MaxValueBytes, and hold no NUL
// byte (they become environment variables). Nothing here logs a value or
// puts one in an error.
package secrets
