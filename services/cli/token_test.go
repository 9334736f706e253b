package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// TestTokenCreateListRevoke: create prints the token once and stores only
// its hash; list shows names and roles, never tokens; revoke removes one.
func TestTokenCreateListRevoke(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.jsonl")
	out, err := gantryCLI(t, "", nil, "token", "create", "--role", "operator,approver", "--name", "bot", "--file", file)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	if !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("create printed %q, want the token alone", out)
	}
	b, err := os.ReadFile(file)
	if err != nil || strings.Contains(string(b), tok) {
		t.Fatalf("the file holds the token (%v):\n%s", err, b)
	}
	toks, err := auth.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := toks.Lookup(tok); !ok || !e.May(auth.Operator) || !e.May(auth.Approver) || e.May(auth.Admin) {
		t.Errorf("lookup %+v %v", e, ok)
	}
	if _, err := gantryCLI(t, "", nil, "token", "create", "--role", "root", "--name", "x", "--file", file); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("unknown role: %v", err)
	}
	out, err = gantryCLI(t, "", nil, "token", "list", "-o", "json", "--file", file)
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Name != "bot" || len(rows[0].Roles) != 2 {
		t.Errorf("list -o json: %s (%v)", out, err)
	}
	if strings.Contains(out, tok) || strings.Contains(out, auth.Hash(tok)) {
		t.Error("list shows the token or its hash")
	}
	if _, err := gantryCLI(t, "", nil, "token", "revoke", "bot", "--file", file); err != nil {
		t.Fatal(err)
	}
	if _, err := gantryCLI(t, "", nil, "token", "revoke", "bot", "--file", file); err == nil {
		t.Error("revoking twice succeeded")
	}
	out, _ = gantryCLI(t, "", nil, "token", "list", "-o", "json", "--file", file)
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("after revoke: %s", out)
	}
}
