package main

import (
	"io"
	"net/http/httptest"
	"testing"
)

func get(t *testing.T, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	handler("hi", "v1").ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestGreeting(t *testing.T) {
	code, body := get(t, "/")
	if code != 200 || body != "hi from hello v1\n" {
		t.Fatalf("GET / = %d %q", code, body)
	}
}

func TestVersion(t *testing.T) {
	if _, body := get(t, "/version"); body != "v1\n" {
		t.Fatalf("GET /version = %q", body)
	}
}

func TestHealth(t *testing.T) {
	if code, _ := get(t, "/healthz"); code != 200 {
		t.Fatalf("GET /healthz = %d", code)
	}
}
