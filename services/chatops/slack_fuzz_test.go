package chatops_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events/run"
)

// FuzzSlashCommand: whatever text and user a correctly signed request
// carries, the handler answers 200 with a non-empty reply, never acts for
// an unmapped user, and never panics.
func FuzzSlashCommand(f *testing.F) {
	for _, s := range []string{"", "help", "status hello", "run hello A=1 B==2", "approve r1 stage=S action=A ok",
		"reject r1", "rollback prod", "run ../x", "approve", "status \x00", "run hello =x", "rollback a b c"} {
		f.Add("UADMIN", s)
		f.Add("UNOBODY", s)
	}
	f.Fuzz(func(t *testing.T, user, text string) {
		fk := &fakes{latest: run.State{Run: "r1", Pipeline: "hello"}}
		code, resp := post(t, newHandler(t, fk), secret, now, form(user, text))
		if code != http.StatusOK || resp.Text == "" {
			t.Fatalf("%q %q: %d %+v", user, text, code, resp)
		}
		if _, mapped := users[user]; !mapped && (fk.verb != "" || len(fk.started) > 0 || fk.rolled != "") {
			t.Fatalf("acted for unmapped user %q: %q", user, text)
		}
	})
}

func TestSSLCheck(t *testing.T) {
	fk := &fakes{}
	r := httptest.NewRequest(http.MethodPost, "/chatops/slack", strings.NewReader("ssl_check=1&token=x"))
	w := httptest.NewRecorder()
	newHandler(t, fk).ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("ssl_check: %d %q", w.Code, w.Body.String())
	}
	// A command smuggled into an ssl_check is still verified.
	r = httptest.NewRequest(http.MethodPost, "/chatops/slack", strings.NewReader("ssl_check=1&command=/gantry&user_id=UADMIN&text=rollback+prod"))
	w = httptest.NewRecorder()
	newHandler(t, fk).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || fk.rolled != "" {
		t.Fatalf("unsigned command with ssl_check: %d, rolled %q", w.Code, fk.rolled)
	}
}
