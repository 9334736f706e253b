package events

import (
	"strings"
	"unicode/utf8"
)

// Secret references. A pipeline action or a buildspec names the secrets a
// build needs by reference, one per environment variable: a secret's name
// in BucketSecrets, or SecretFilePrefix and an absolute path on the worker
// host. The references travel in events; the values never do.
const (
	// SecretFilePrefix starts a reference to a file on the worker host.
	SecretFilePrefix = "file:"
	// MaxSecretRefChars bounds a reference, as the schema does.
	MaxSecretRefChars = 1024

	envNamePattern   = "^[A-Za-z_][A-Za-z0-9_]{0,127}$"
	secretRefPattern = "^([A-Za-z0-9][A-Za-z0-9_-]{0,63}|file:/[^\\x00]*)$"
)

// ValidSecretName reports whether s may name a secret in BucketSecrets: the
// shape of a pipeline name, safe as a KV key.
func ValidSecretName(s string) bool { return isName(s) }

// ValidSecretRef reports whether s is a secret reference: a secret name or
// file: followed by an absolute path, at most MaxSecretRefChars characters.
func ValidSecretRef(s string) bool {
	if utf8.RuneCountInString(s) > MaxSecretRefChars {
		return false
	}
	if path, ok := strings.CutPrefix(s, SecretFilePrefix); ok {
		return strings.HasPrefix(path, "/") && !strings.ContainsRune(path, 0)
	}
	return isName(s)
}

// ValidEnvName reports whether s may name an environment variable that
// receives a secret: ^[A-Za-z_][A-Za-z0-9_]{0,127}$.
func ValidEnvName(s string) bool { return isEnvName(s) }

func isEnvName(s string) bool {
	if len(s) < 1 || len(s) > maxVarNameBytes {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' {
			return false
		}
	}
	return true
}

func secrets(field string, m map[string]string) *fieldError {
	// An empty map was refused by the shape pass (minProperties 1).
	for k, v := range m {
		if !isEnvName(k) {
			return errorf("additional properties %s not allowed", quote(k)).in(field)
		}
		if utf8.RuneCountInString(v) > MaxSecretRefChars {
			return errorf("maxLength: got %d, want %d", utf8.RuneCountInString(v), MaxSecretRefChars).in(k).in(field)
		}
		if !ValidSecretRef(v) {
			return patternError(k, v, secretRefPattern).in(field)
		}
	}
	return nil
}
