package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/services/secrets"
)

func TestStoreSetGetListDelete(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	s, err := secrets.OpenStore(ctx, b.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "npm-token", []byte("v1-abcdef")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "npm-token", []byte("v2-abcdef")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "deploy_key", []byte("-----BEGIN-----\nxyz\n")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "npm-token"); err != nil || string(v) != "v2-abcdef" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "deploy_key" || list[1].Name != "npm-token" || list[1].Updated.IsZero() {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if err := s.Delete(ctx, "npm-token"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "npm-token"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := s.Delete(ctx, "npm-token"); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("second Delete: %v", err)
	}
	for _, tc := range []struct {
		name, value string
		want        error
	}{
		{"a.b", "long-enough", secrets.ErrInvalidName},
		{"-a", "long-enough", secrets.ErrInvalidName},
		{"pin", "123", secrets.ErrInvalidValue},
		{"nul", "abc\x00def", secrets.ErrInvalidValue},
		{"big", strings.Repeat("x", secrets.MaxValueBytes+1), secrets.ErrInvalidValue},
	} {
		err := s.Set(ctx, tc.name, []byte(tc.value))
		if !errors.Is(err, tc.want) {
			t.Errorf("Set(%q) = %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && len(tc.value) > 3 && strings.Contains(err.Error(), tc.value) {
			t.Errorf("error repeats the value: %v", err)
		}
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	srv := natstest.Start(t)
	b := natstest.Bus(t, srv.ClientURL())
	s, _ := secrets.OpenStore(ctx, b.JetStream())
	if err := s.Set(ctx, "npm-token", []byte("npm_abcdef")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "key"), []byte("file-secret\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "pin"), []byte("12"), 0o600)
	outside := filepath.Join(t.TempDir(), "other")
	os.WriteFile(outside, []byte("not-a-secret"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "escape"))

	r := &secrets.Resolver{JetStream: b.JetStream(), Dirs: []string{dir}}
	got, err := r.Resolve(ctx, map[string]string{"NPM_TOKEN": "npm-token", "KEY": "file:" + filepath.Join(dir, "key")})
	if err != nil || got["NPM_TOKEN"] != "npm_abcdef" || got["KEY"] != "file-secret\n" {
		t.Fatalf("Resolve = %v, %v", got, err)
	}

	_, err = r.Resolve(ctx, map[string]string{
		"A": "missing",
		"B": "file:" + outside,
		"C": "file:" + filepath.Join(dir, "escape"),
		"D": "file:" + filepath.Join(dir, "pin"),
		"E": "file:" + filepath.Join(dir, "..", filepath.Base(filepath.Dir(outside)), "other"),
		"F": "file:" + filepath.Join(dir, "nope"),
	})
	for _, want := range []string{
		"secret missing (for A): secret not found: missing is not in the gantry_secrets bucket; store it with `gantry secret set missing`",
		"(for B): secret file outside",
		"(for C): secret file outside",
		"(for D): invalid secret value: 2 bytes",
		"(for E): secret file outside",
		"(for F): secret not found",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "not-a-secret") {
		t.Errorf("error repeats a value: %v", err)
	}

	none := &secrets.Resolver{JetStream: b.JetStream()}
	if _, err := none.Resolve(ctx, map[string]string{"K": "file:" + filepath.Join(dir, "key")}); !errors.Is(err, secrets.ErrFileNotAllowed) {
		t.Errorf("a worker without secrets dirs read a file: %v", err)
	}
}
