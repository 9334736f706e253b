package access

import "strings"

// Allows reports whether subject matches one of the allow list's entries
// by NATS wildcard rules ('*' one token, '>' the rest): what the server
// checks, here for tests and `gantry nats config --check`.
func Allows(allow []string, subject string) bool {
	for _, a := range allow {
		if matches(a, subject) {
			return true
		}
	}
	return false
}

func matches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}
