package deployplan

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// simulate runs a deployment to the end: every host Next starts ends at
// once with its outcome (Failed if listed in fail, else Succeeded). It
// returns the start decisions as "h1 h2 | h3" and the outcome.
func simulate(t *testing.T, p Plan, fail []string) (string, Done, map[string]HostStatus) {
	t.Helper()
	status := map[string]HostStatus{}
	var steps []string
	for range len(p.Hosts()) + 2 {
		d := Next(p, status)
		if d.Done != nil {
			if len(d.Start) > 0 {
				t.Fatalf("a decision both starts hosts and ends: %+v", d)
			}
			for _, h := range d.Skip {
				status[h] = Skipped
			}
			return strings.Join(steps, " | "), *d.Done, status
		}
		if len(d.Skip) > 0 {
			t.Fatalf("skips hosts while running: %+v", d)
		}
		if len(d.Start) == 0 {
			t.Fatalf("nothing in progress, nothing started, not done; status %v", status)
		}
		steps = append(steps, strings.Join(d.Start, " "))
		for _, h := range d.Start {
			status[h] = Succeeded
			if slices.Contains(fail, h) {
				status[h] = Failed
			}
		}
	}
	t.Fatalf("no end after %d decisions: %s", len(p.Hosts())+2, strings.Join(steps, " | "))
	return "", Done{}, nil
}

// TestNextScenarios: given a configuration, hosts and which of them fail,
// then these batches start and the deployment ends so.
func TestNextScenarios(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		n       int
		fail    []string
		starts  string
		success bool
		reason  string
		skipped []string
	}{
		// AllAtOnce: one success is enough; none is a failure.
		{"AllAtOnce all succeed", AllAtOnce, 3, nil,
			"h1 h2 h3", true, "3 of 3 hosts succeeded (at least 1 required)", nil},
		{"AllAtOnce two of three fail", AllAtOnce, 3, []string{"h1", "h3"},
			"h1 h2 h3", true, "1 of 3 hosts succeeded (at least 1 required)", nil},
		{"AllAtOnce all fail", AllAtOnce, 3, []string{"h1", "h2", "h3"},
			"h1 h2 h3", false, "3 of 3 hosts failed: at least 1 must succeed, at most 0 still can", nil},

		// HalfAtATime, 9 hosts: 4 at a time, 5 must succeed.
		{"HalfAtATime 9 all succeed", HalfAtATime, 9, nil,
			"h1 h2 h3 h4 | h5 h6 h7 h8 | h9", true, "9 of 9 hosts succeeded (at least 5 required)", nil},
		{"HalfAtATime 9 one failure shrinks the next batch", HalfAtATime, 9, []string{"h1"},
			"h1 h2 h3 h4 | h5 h6 h7 | h8 | h9", true, "8 of 9 hosts succeeded (at least 5 required)", nil},
		{"HalfAtATime 9 four failures, last batch", HalfAtATime, 9, []string{"h1", "h2", "h3", "h9"},
			"h1 h2 h3 h4 | h5 | h6 | h7 | h8 | h9", true, "5 of 9 hosts succeeded (at least 5 required)", nil},
		{"HalfAtATime 9 first batch fails", HalfAtATime, 9, []string{"h1", "h2", "h3", "h4"},
			"h1 h2 h3 h4", false,
			"4 of 9 hosts failed with 5 still to deploy: deploying another would leave fewer than 5 of 9 hosts healthy",
			[]string{"h5", "h6", "h7", "h8", "h9"}},

		// HalfAtATime, 5 hosts: 2 at a time, 3 must succeed.
		{"HalfAtATime 5 all succeed", HalfAtATime, 5, nil,
			"h1 h2 | h3 h4 | h5", true, "5 of 5 hosts succeeded (at least 3 required)", nil},
		{"HalfAtATime 5 two failures, one last", HalfAtATime, 5, []string{"h1", "h5"},
			"h1 h2 | h3 | h4 | h5", true, "3 of 5 hosts succeeded (at least 3 required)", nil},
		{"HalfAtATime 5 two failures early", HalfAtATime, 5, []string{"h1", "h2"},
			"h1 h2", false,
			"2 of 5 hosts failed with 3 still to deploy: deploying another would leave fewer than 3 of 5 hosts healthy",
			[]string{"h3", "h4", "h5"}},

		// HalfAtATime, 4 hosts: 2 at a time, 2 must succeed.
		{"HalfAtATime 4 all succeed", HalfAtATime, 4, nil,
			"h1 h2 | h3 h4", true, "4 of 4 hosts succeeded (at least 2 required)", nil},
		{"HalfAtATime 4 last batch fails", HalfAtATime, 4, []string{"h3", "h4"},
			"h1 h2 | h3 h4", true, "2 of 4 hosts succeeded (at least 2 required)", nil},
		{"HalfAtATime 4 first batch fails", HalfAtATime, 4, []string{"h1", "h2"},
			"h1 h2", false,
			"2 of 4 hosts failed with 2 still to deploy: deploying another would leave fewer than 2 of 4 hosts healthy",
			[]string{"h3", "h4"}},
		{"HalfAtATime 4 one failure in each batch", HalfAtATime, 4, []string{"h1", "h3"},
			"h1 h2 | h3", false,
			"2 of 4 hosts failed with 1 still to deploy: deploying another would leave fewer than 2 of 4 hosts healthy",
			[]string{"h4"}},

		// HalfAtATime, 2 hosts: one at a time, one must succeed.
		{"HalfAtATime 2 first fails", HalfAtATime, 2, []string{"h1"},
			"h1", false,
			"1 of 2 hosts failed with 1 still to deploy: deploying another would leave fewer than 1 of 2 hosts healthy",
			[]string{"h2"}},
		{"HalfAtATime 2 second fails", HalfAtATime, 2, []string{"h2"},
			"h1 | h2", true, "1 of 2 hosts succeeded (at least 1 required)", nil},

		// One host.
		{"HalfAtATime 1 fails", HalfAtATime, 1, []string{"h1"},
			"h1", false, "1 of 1 hosts failed: at least 1 must succeed, at most 0 still can", nil},
		{"OneAtATime 1 succeeds", OneAtATime, 1, nil,
			"h1", true, "1 of 1 hosts succeeded (at least 1 required)", nil},
		{"OneAtATime 1 fails", OneAtATime, 1, []string{"h1"},
			"h1", false, "1 of 1 hosts failed: at least 1 must succeed, at most 0 still can", nil},
		{"AllAtOnce 1 fails", AllAtOnce, 1, []string{"h1"},
			"h1", false, "1 of 1 hosts failed: at least 1 must succeed, at most 0 still can", nil},

		// OneAtATime: any failure but the last fails the deployment.
		{"OneAtATime 3 all succeed", OneAtATime, 3, nil,
			"h1 | h2 | h3", true, "3 of 3 hosts succeeded (at least 2 required)", nil},
		{"OneAtATime 3 first fails", OneAtATime, 3, []string{"h1"},
			"h1", false,
			"1 of 3 hosts failed with 2 still to deploy: deploying another would leave fewer than 2 of 3 hosts healthy",
			[]string{"h2", "h3"}},
		{"OneAtATime 3 middle fails", OneAtATime, 3, []string{"h2"},
			"h1 | h2", false,
			"1 of 3 hosts failed with 1 still to deploy: deploying another would leave fewer than 2 of 3 hosts healthy",
			[]string{"h3"}},
		{"OneAtATime 3 last fails", OneAtATime, 3, []string{"h3"},
			"h1 | h2 | h3", true, "2 of 3 hosts succeeded (at least 2 required)", nil},

		// HOST_COUNT 6 of 9: 3 at a time, 6 must succeed.
		{"HOST_COUNT 6 of 9 all succeed", Config{Type: HostCount, Value: 6}, 9, nil,
			"h1 h2 h3 | h4 h5 h6 | h7 h8 h9", true, "9 of 9 hosts succeeded (at least 6 required)", nil},
		{"HOST_COUNT 6 of 9 last batch fails", Config{Type: HostCount, Value: 6}, 9, []string{"h7", "h8", "h9"},
			"h1 h2 h3 | h4 h5 h6 | h7 h8 h9", true, "6 of 9 hosts succeeded (at least 6 required)", nil},
		{"HOST_COUNT 6 of 9 first and last fail", Config{Type: HostCount, Value: 6}, 9, []string{"h1", "h9"},
			"h1 h2 h3 | h4 h5 | h6 | h7 h8 | h9", true, "7 of 9 hosts succeeded (at least 6 required)", nil},
		{"HOST_COUNT 6 of 9 first batch fails", Config{Type: HostCount, Value: 6}, 9, []string{"h1", "h2", "h3"},
			"h1 h2 h3", false,
			"3 of 9 hosts failed with 6 still to deploy: deploying another would leave fewer than 6 of 9 hosts healthy",
			[]string{"h4", "h5", "h6", "h7", "h8", "h9"}},

		// FLEET_PERCENT 40 of 9: 5 at a time, 4 must succeed.
		{"FLEET_PERCENT 40 of 9 all succeed", Config{Type: FleetPercent, Value: 40}, 9, nil,
			"h1 h2 h3 h4 h5 | h6 h7 h8 h9", true, "9 of 9 hosts succeeded (at least 4 required)", nil},
		{"FLEET_PERCENT 40 of 9 four fail first", Config{Type: FleetPercent, Value: 40}, 9, []string{"h1", "h2", "h3", "h4"},
			"h1 h2 h3 h4 h5 | h6 | h7 | h8 | h9", true, "5 of 9 hosts succeeded (at least 4 required)", nil},
		{"FLEET_PERCENT 40 of 9 five fail first", Config{Type: FleetPercent, Value: 40}, 9, []string{"h1", "h2", "h3", "h4", "h5"},
			"h1 h2 h3 h4 h5", false,
			"5 of 9 hosts failed with 4 still to deploy: deploying another would leave fewer than 4 of 9 hosts healthy",
			[]string{"h6", "h7", "h8", "h9"}},

		// 85% of 10 (CodeDeploy's instance-health example): a single failure
		// fails the deployment, unless it is the last host.
		{"FLEET_PERCENT 85 of 10 one failure", Config{Type: FleetPercent, Value: 85}, 10, []string{"h4"},
			"h1 | h2 | h3 | h4", false,
			"1 of 10 hosts failed with 6 still to deploy: deploying another would leave fewer than 9 of 10 hosts healthy",
			[]string{"h5", "h6", "h7", "h8", "h9", "h10"}},
		{"FLEET_PERCENT 85 of 10 last fails", Config{Type: FleetPercent, Value: 85}, 10, []string{"h10"},
			"h1 | h2 | h3 | h4 | h5 | h6 | h7 | h8 | h9 | h10", true, "9 of 10 hosts succeeded (at least 9 required)", nil},

		// FLEET_PERCENT 100: every host must succeed.
		{"FLEET_PERCENT 100 last fails", Config{Type: FleetPercent, Value: 100}, 3, []string{"h3"},
			"h1 | h2 | h3", false, "1 of 3 hosts failed: at least 3 must succeed, at most 2 still can", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg, hosts(tc.n))
			if err != nil {
				t.Fatal(err)
			}
			starts, done, status := simulate(t, p, tc.fail)
			if starts != tc.starts {
				t.Errorf("starts:\n got %s\nwant %s", starts, tc.starts)
			}
			if done.Succeeded != tc.success || done.Reason != tc.reason {
				t.Errorf("done: got %v %q\nwant %v %q", done.Succeeded, done.Reason, tc.success, tc.reason)
			}
			var skipped []string
			for _, h := range p.Hosts() {
				if status[h] == Skipped {
					skipped = append(skipped, h)
				}
			}
			if !reflect.DeepEqual(skipped, tc.skipped) {
				t.Errorf("skipped %v, want %v", skipped, tc.skipped)
			}
		})
	}
}

// TestNextStates: given statuses, then this decision.
func TestNextStates(t *testing.T) {
	half9, _ := New(HalfAtATime, hosts(9))
	one3, _ := New(OneAtATime, hosts(3))
	for _, tc := range []struct {
		name   string
		plan   Plan
		status map[string]HostStatus
		want   Decision
	}{
		{"nothing started: the first batch", half9, nil,
			Decision{Start: []string{"h1", "h2", "h3", "h4"}}},
		{"empty status is pending", half9, map[string]HostStatus{"h1": ""},
			Decision{Start: []string{"h1", "h2", "h3", "h4"}}},
		{"a batch in progress: wait", half9,
			map[string]HostStatus{"h1": InProgress, "h2": InProgress, "h3": InProgress, "h4": InProgress},
			Decision{}},
		{"the next batch waits for the whole batch to end", half9,
			map[string]HostStatus{"h1": Succeeded, "h2": Succeeded, "h3": Succeeded, "h4": InProgress},
			Decision{}},
		{"fill the rest of a batch started in part", half9,
			map[string]HostStatus{"h1": Failed, "h2": Succeeded, "h3": Succeeded, "h4": Succeeded, "h5": Succeeded, "h6": Succeeded, "h7": Succeeded},
			Decision{Start: []string{"h8"}}},
		{"a failure limits the room", half9,
			map[string]HostStatus{"h1": Failed, "h2": Failed, "h3": Succeeded, "h4": Succeeded, "h5": InProgress},
			Decision{Start: []string{"h6"}}},
		{"a status the planner does not know counts as in progress", half9,
			map[string]HostStatus{"h1": "Unknown", "h2": Succeeded, "h3": Succeeded, "h4": Succeeded},
			Decision{}},
		{"hosts outside the plan are ignored", one3,
			map[string]HostStatus{"other": Failed, "h1": Succeeded},
			Decision{Start: []string{"h2"}}},
		{"a failure with hosts in progress ends at once", half9,
			map[string]HostStatus{"h1": Failed, "h2": Failed, "h3": Failed, "h4": Failed, "h5": Failed, "h6": InProgress},
			Decision{Skip: []string{"h7", "h8", "h9"}, Done: &Done{Reason: "5 of 9 hosts failed: at least 5 must succeed, at most 4 still can"}}},
		{"a failed deployment stays failed once hosts are skipped", one3,
			map[string]HostStatus{"h1": Failed, "h2": Skipped, "h3": Skipped},
			Decision{Done: &Done{Reason: "1 of 3 hosts failed and 2 were skipped: at least 2 must succeed, at most 0 still can"}}},
		{"a succeeded deployment stays succeeded", one3,
			map[string]HostStatus{"h1": Succeeded, "h2": Succeeded, "h3": Succeeded},
			Decision{Done: &Done{Succeeded: true, Reason: "3 of 3 hosts succeeded (at least 2 required)"}}},
		{"no hosts", Plan{}, nil,
			Decision{Done: &Done{Reason: "the plan has no hosts"}}},
		{"a host listed twice starts once", Plan{MinHealthy: 0, BatchSize: 3, Batches: [][]string{{"a", "a"}, {"b"}}}, nil,
			Decision{Start: []string{"a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Next(tc.plan, tc.status)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v %+v\nwant %+v %+v", got, got.Done, tc.want, tc.want.Done)
			}
		})
	}
}
