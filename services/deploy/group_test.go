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
	for _, c := range []struct {
		doc  string
		want []string // each problem's "file:line:column: field: message" starts so
	}{
		{"name: web\napplication: shop\nselectr: {}\n", []string{`g.yml:3:1: selectr: unknown field "selectr"`}},
		{"name: web/x\napplication: shop\n", []string{`g.yml:1:1: name: "web/x" must be`}},
		{"name: web\n", []string{`g.yml:1:1: application: "" must be`}},
		{"name: web\napplication: shop\ndeploymentConfig: TwoAtATime\n", []string{"g.yml:3:1: deploymentConfig: unknown deployment configuration"}},
		{"name: web\napplication: shop\nhealthCheck: {expectedStatus: 42}\n", []string{
			"g.yml:3:1: healthCheck.url: required", "g.yml:3:15: healthCheck.expectedStatus: 42 is not an HTTP status"}},
		{"name: web\napplication: shop\nhealthCheck:\n  url: x\n  timeoutSeconds: nope\n", []string{
			"g.yml:5:19: healthCheck.timeoutSeconds: must be a number, got a string"}},
		{"name: web\napplication: shop\nautoRollback:\n  enabled: true\n  events:\n    - DEPLOYMENT_FAILURE\n    - ON_FAILURE\n", []string{
			`g.yml:7:7: autoRollback.events[1]: "ON_FAILURE" must be`}},
		// JSON is YAML: an API client may send either.
		{"{\"name\": \"web\",\n \"application\": [\"shop\"]}", []string{"g.yml:2:17: application: must be a string, got a list"}},
		{"{\"name\": \"web\", \"application\": \"shop\", \"colour\": 1}", []string{`g.yml:1:40: colour: unknown field "colour"`}},
		{"", []string{"g.yml: the file is empty"}},
		{"name: a\n---\nname: b\n", []string{"g.yml:3:1: more than one YAML document"}},
		{strings.Repeat("#", MaxGroupSize+1), []string{"g.yml: the file is larger than"}},
	} {
		_, err := ParseGroup("g.yml", []byte(c.doc))
		var pe *GroupParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidGroup) {
			t.Errorf("%q: %v, want a *GroupParseError wrapping ErrInvalidGroup", c.doc, err)
			continue
		}
		if len(pe.Problems) != len(c.want) {
			t.Errorf("%q: %v, want %d problems", c.doc, err, len(c.want))
			continue
		}
		for i, p := range pe.Problems {
			if !strings.HasPrefix(p.Error(), c.want[i]) || !errors.Is(p, ErrInvalidGroup) {
				t.Errorf("%q: problem %q, want it to start %q and wrap ErrInvalidGroup", c.doc, p.Error(), c.want[i])
			}
		}
	}
	if err := (Group{Name: "web", Application: "shop", AutoRollback: AutoRollback{Events: []string{"X"}}}).Validate(); !errors.Is(err, ErrInvalidGroup) ||
		!strings.Contains(err.Error(), `autoRollback.events[0]: "X" must be`) {
		t.Errorf("Validate: %v, want the field named", err)
	}
}
