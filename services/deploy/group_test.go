package deploy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGroup(t *testing.T) {
	good := `name: web
application: shop
selector: {role: web}
deploymentConfig: HalfAtATime
healthCheck: {url: "http://127.0.0.1:{{.Labels.port}}/healthz", expectedStatus: 200}
alarms: [error-rate]
autoRollback: {enabled: true, events: [DEPLOYMENT_FAILURE]}
`
	g, err := ParseGroup("web.yml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if g.Selector["role"] != "web" || !g.RollsBackOn(RollbackOnFailure) || g.RollsBackOn(RollbackOnAlarm) ||
		!g.StopsOnAlarm("error-rate") || g.StopsOnAlarm("disk") {
		t.Errorf("parsed %+v", g)
	}
	for _, c := range []struct{ doc, want string }{
		{"name: web\napplication: shop\nselectr: {}\n", `unknown field "selectr"`},
		{"name: web/x\napplication: shop\n", `name: "web/x"`},
		{"name: web\n", `application: ""`},
		{"name: web\napplication: shop\ndeploymentConfig: TwoAtATime\n", "unknown deployment configuration"},
		{"name: web\napplication: shop\nhealthCheck: {expectedStatus: 42}\n", "healthCheck.url: required"},
		{"name: web\napplication: shop\nautoRollback: {enabled: true, events: [ON_FAILURE]}\n", `autoRollback.events[0]: "ON_FAILURE"`},
	} {
		_, err := ParseGroup("g.yml", []byte(c.doc))
		if !errors.Is(err, ErrInvalidGroup) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want ErrInvalidGroup with %q", c.doc, err, c.want)
		}
	}
}
