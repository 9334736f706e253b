package conductor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/natstest"
	"github.com/gantry-ci/gantry/events/run"
)

// A NoActiveAlarm rule reads the alarms stream through the conductor: an
// alarm raised on the group a minute ago fails the stage asking for its
// rollback; a quiet group lets it succeed.
func TestNoActiveAlarmReadsTheAlarmsStream(t *testing.T) {
	srv := natstest.Start(t)
	b := newBus(t, srv.ClientURL())
	clk := newClock(time.Now())
	svc := startServices(t, srv.ClientURL(), clk)
	defer svc.stop()
	ctx := context.Background()
	if _, err := b.JetStream().Publish(ctx, events.AlarmSubject("web"), []byte(`{"group":"web","name":"error-rate","reason":"5xx"}`)); err != nil {
		t.Fatal(err)
	}
	def := func(name, group string) events.Definition {
		return events.Definition{Name: name, Stages: []events.StageDef{
			{Name: "Deploy", Actions: []events.ActionDef{{Name: "d", Type: "noop", Pool: "default", RunOrder: 1}},
				OnSuccess: &events.Condition{Result: events.ResultRollback, Rules: []events.Rule{{Name: "quiet", Type: events.RuleNoActiveAlarm,
					Configuration: map[string]string{"group": group, "windowSeconds": "600"}}}}},
		}}
	}
	loud, quiet := def("loud", "web"), def("quiet", "api")
	l := events.RunIDForTrigger("loud", time.Now().UnixMilli())
	q := events.RunIDForTrigger("quiet", time.Now().UnixMilli())
	request(t, b, loud, l)
	request(t, b, quiet, q)

	st := waitDone(t, b, loud.Name, l, 30*time.Second)
	if st.Phase != run.Failed || !strings.Contains(st.Reason, "an alarm was raised on deployment group web") ||
		!strings.Contains(st.Reason, "a rollback of the stage is requested") {
		t.Fatalf("loud run %s: %s", st.Phase, st.Reason)
	}
	evs, err := b.ReadRun(ctx, loud.Name, l, 0)
	if err != nil {
		t.Fatal(err)
	}
	rollback := false
	for _, e := range evs {
		if p, ok := e.Payload.(events.StageFailed); ok {
			rollback = p.Rollback
		}
	}
	if !rollback {
		t.Fatal("stage.failed does not ask for the rollback")
	}
	if st := waitDone(t, b, quiet.Name, q, 30*time.Second); st.Phase != run.Succeeded ||
		!strings.Contains(st.Stage("Deploy").Checks[0].Reason, "no alarm was ever raised on deployment group api") {
		t.Fatalf("quiet run %s: %s %+v", st.Phase, st.Reason, st.Stage("Deploy").Checks)
	}
}
