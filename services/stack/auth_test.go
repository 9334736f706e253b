package stack

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-ci/gantry/services/access"
)

func TestAdoptDefaultAccount(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(JetStreamDir(dir), "jetstream")
	if err := os.MkdirAll(filepath.Join(base, "$G", "streams", "GANTRY_EVENTS"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := AdoptDefaultAccount(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, access.Account, "streams", "GANTRY_EVENTS")); err != nil {
		t.Fatalf("state not moved into %s: %v", access.Account, err)
	}
	// Once the account has state, a later default-account directory (an
	// offline CLI's) is left alone.
	if err := os.MkdirAll(filepath.Join(base, "$G"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := AdoptDefaultAccount(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "$G")); err != nil {
		t.Fatal("the default account's directory was moved over existing state")
	}
}

func TestDevAuthRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := DevAuth(dir, access.Admin); ok || err != nil {
		t.Fatalf("a data directory without users: %v %v", ok, err)
	}
	if err := WriteDevAuth(dir, access.Spec{}); err != nil {
		t.Fatal(err)
	}
	a, ok, err := DevAuth(dir, access.Build)
	if err != nil || !ok || a.User != access.Build || len(a.Password) < 20 || a.CAFile == "" {
		t.Fatalf("%+v %v %v", a, ok, err)
	}
	for _, f := range []string{devPasswords(dir), DevServerConfig(dir)} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	if _, _, err := DevAuth(dir, "mallory"); err == nil {
		t.Error("credentials of an unknown user")
	}
}
