package chatops_test

import (
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/chatops"
)

func TestSlackMessage(t *testing.T) {
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	runID := events.RunIDForTrigger("msg", 1)
	for _, tc := range []struct {
		p    events.Payload
		fact string
		want string
	}{
		{events.StageFailed{Run: runID, Stage: "Test", Attempt: 1, Reason: "expected <b> & got <!here>\nsecond line"}, "stage/Test/1/failed",
			":x: *web* run <https://g.example/runs/" + runID + "|" + runID + ">: stage Test failed\n> expected &lt;b&gt; &amp; got &lt;!here&gt;"},
		{events.RunSucceeded{Run: runID}, "succeeded",
			":white_check_mark: *web* run <https://g.example/runs/" + runID + "|" + runID + ">: succeeded"},
	} {
		e, err := events.New(events.RunID(runID, tc.fact), "/test", runID, time.Unix(0, 0), tc.p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := chatops.SlackMessage(codec, "https://g.example/", "web", raw).Text; got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.p.EventType(), got, tc.want)
		}
	}
	// A waiting approval says what to look at and how to answer.
	waitingRaw := []byte(`{"specversion":"1.0","id":"w","source":"/s","type":"dev.gantry.action.waiting","subject":"` + runID +
		`","time":"2026-01-01T00:00:00Z","data":{"run":"` + runID + `","stage":"Prod","action":"sign-off","attempt":1,` +
		`"instructions":"check <staging>","url":"https://staging.example.com","approvers":["slack:U1"],"expires":"2026-01-08T00:00:00Z"}}`)
	want := ":hourglass_flowing_sand: *web* run `" + runID + "`: approval Prod/sign-off is waiting\n> check &lt;staging&gt;\n" +
		"<https://staging.example.com|https://staging.example.com>\napprovers: slack:U1\n" +
		"`/gantry approve " + runID + "` or `/gantry reject " + runID + "` before 2026-01-08T00:00:00Z"
	if got := chatops.SlackMessage(codec, "", "web", waitingRaw).Text; got != want {
		t.Errorf("waiting:\n got %q\nwant %q", got, want)
	}
	// A type this build does not know is still announced, by its type.
	raw := []byte(`{"specversion":"1.0","id":"x","source":"/s","type":"dev.gantry.build.cached","subject":"` + runID + `","time":"2026-01-01T00:00:00Z","data":{}}`)
	if got, want := chatops.SlackMessage(codec, "", "web", raw).Text, ":information_source: *web* run `"+runID+"`: build.cached"; got != want {
		t.Errorf("unknown type: %q, want %q", got, want)
	}
}
