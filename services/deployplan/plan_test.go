package deployplan

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// hosts returns h1 … hn.
func hosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d", i+1)
	}
	return out
}

// batchSizes formats the sizes of a plan's batches, e.g. "4+4+1".
func batchSizes(p Plan) string {
	var s []string
	for _, b := range p.Batches {
		s = append(s, fmt.Sprint(len(b)))
	}
	return strings.Join(s, "+")
}

// TestNewWorkedExamples encodes CodeDeploy's rules for EC2/on-premises
// deployments and the examples of its documentation.
func TestNewWorkedExamples(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        Config
		n          int
		minHealthy int
		batch      int
		batches    string
	}{
		// AllAtOnce: every host at once; one success is enough.
		{"AllAtOnce 9", AllAtOnce, 9, 0, 9, "9"},
		{"AllAtOnce 1", AllAtOnce, 1, 0, 1, "1"},
		// HalfAtATime: at most half (rounded down) at a time; at least half
		// (rounded up) must succeed.
		{"HalfAtATime 9", HalfAtATime, 9, 5, 4, "4+4+1"},
		{"HalfAtATime 5", HalfAtATime, 5, 3, 2, "2+2+1"},
		{"HalfAtATime 4", HalfAtATime, 4, 2, 2, "2+2"},
		{"HalfAtATime 2", HalfAtATime, 2, 1, 1, "1+1"},
		{"HalfAtATime 1", HalfAtATime, 1, 1, 1, "1"},
		// OneAtATime: one at a time, all but one kept healthy.
		{"OneAtATime 9", OneAtATime, 9, 8, 1, "1+1+1+1+1+1+1+1+1"},
		{"OneAtATime 3", OneAtATime, 3, 2, 1, "1+1+1"},
		{"OneAtATime 1", OneAtATime, 1, 0, 1, "1"},
		// The MinimumHealthyHosts examples: 9 hosts.
		{"HOST_COUNT 6 of 9", Config{Type: HostCount, Value: 6}, 9, 6, 3, "3+3+3"},
		{"FLEET_PERCENT 40 of 9", Config{Type: FleetPercent, Value: 40}, 9, 4, 5, "5+4"},
		// The instance-health example: 85% of 10 keeps 9 healthy.
		{"FLEET_PERCENT 85 of 10", Config{Type: FleetPercent, Value: 85}, 10, 9, 1, "1+1+1+1+1+1+1+1+1+1"},
		// Edges.
		{"HOST_COUNT 0 of 3", Config{Type: HostCount, Value: 0}, 3, 0, 3, "3"},
		{"HOST_COUNT 8 of 9", Config{Type: HostCount, Value: 8}, 9, 8, 1, "1+1+1+1+1+1+1+1+1"},
		{"FLEET_PERCENT 100 of 3", Config{Type: FleetPercent, Value: 100}, 3, 3, 1, "1+1+1"},
		{"FLEET_PERCENT 1 of 3", Config{Type: FleetPercent, Value: 1}, 3, 1, 2, "2+1"},
		{"FLEET_PERCENT 0 of 2", Config{Type: FleetPercent, Value: 0}, 2, 0, 2, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg, hosts(tc.n))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if p.MinHealthy != tc.minHealthy || p.BatchSize != tc.batch || batchSizes(p) != tc.batches {
				t.Errorf("got min healthy %d, batch %d, batches %s; want %d, %d, %s",
					p.MinHealthy, p.BatchSize, batchSizes(p), tc.minHealthy, tc.batch, tc.batches)
			}
			if got := p.Hosts(); !reflect.DeepEqual(got, hosts(tc.n)) {
				t.Errorf("Hosts() = %v, want the hosts in order", got)
			}
		})
	}
}

func TestNewKeepsOrderAndCopies(t *testing.T) {
	in := []string{"web-3", "web-1", "web-2"}
	p, err := New(HalfAtATime, in)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"web-3"}, {"web-1"}, {"web-2"}}
	if !reflect.DeepEqual(p.Batches, want) {
		t.Fatalf("Batches = %v, want %v", p.Batches, want)
	}
	in[0] = "changed"
	if p.Batches[0][0] != "web-3" {
		t.Error("the plan shares the caller's slice")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		hosts []string
		is    []error
		msg   string
	}{
		{"HOST_COUNT equal to n", Config{Name: "six", Type: HostCount, Value: 9}, hosts(9),
			[]error{ErrInvalidConfig, ErrTooFewHosts},
			`invalid deployment configuration "six": value: HOST_COUNT must be less than the number of hosts, 9, got 9: minimum healthy hosts leaves no host to deploy to`},
		{"HOST_COUNT above n", Config{Type: HostCount, Value: 4}, hosts(3),
			[]error{ErrInvalidConfig, ErrTooFewHosts},
			`invalid deployment configuration (unnamed): value: HOST_COUNT must be less than the number of hosts, 3, got 4: minimum healthy hosts leaves no host to deploy to`},
		{"HOST_COUNT 1 on one host", Config{Type: HostCount, Value: 1}, hosts(1),
			[]error{ErrTooFewHosts},
			`invalid deployment configuration (unnamed): value: HOST_COUNT must be less than the number of hosts, 1, got 1: minimum healthy hosts leaves no host to deploy to`},
		{"HOST_COUNT negative", Config{Name: "neg", Type: HostCount, Value: -1}, hosts(3),
			[]error{ErrInvalidConfig},
			`invalid deployment configuration "neg": value: HOST_COUNT must be at least 0, got -1`},
		{"FLEET_PERCENT above 100", Config{Name: "p", Type: FleetPercent, Value: 101}, hosts(3),
			[]error{ErrInvalidConfig},
			`invalid deployment configuration "p": value: FLEET_PERCENT must be between 0 and 100, got 101`},
		{"FLEET_PERCENT negative", Config{Name: "p", Type: FleetPercent, Value: -5}, hosts(3),
			[]error{ErrInvalidConfig},
			`invalid deployment configuration "p": value: FLEET_PERCENT must be between 0 and 100, got -5`},
		{"MOST_CONCURRENCY 2", Config{Name: "m", Type: MostConcurrency, Value: 2}, hosts(3),
			[]error{ErrInvalidConfig},
			`invalid deployment configuration "m": value: MOST_CONCURRENCY must be 1, got 2`},
		{"unknown type", Config{Name: "x", Type: "HOST_PERCENT", Value: 2}, hosts(3),
			[]error{ErrInvalidConfig},
			`invalid deployment configuration "x": type: must be HOST_COUNT, FLEET_PERCENT or MOST_CONCURRENCY, got "HOST_PERCENT"`},
		{"no hosts", HalfAtATime, nil, []error{ErrNoHosts}, `no hosts to deploy to`},
		{"every problem at once", Config{Type: "", Value: 0}, nil, []error{ErrInvalidConfig, ErrNoHosts},
			"invalid deployment configuration (unnamed): type: must be HOST_COUNT, FLEET_PERCENT or MOST_CONCURRENCY, got \"\"\nno hosts to deploy to"},
		{"empty and duplicate hosts", AllAtOnce, []string{"a", "", "b", "a"}, []error{ErrInvalidHosts},
			"invalid host list: hosts[1]: must not be empty\ninvalid host list: hosts[3]: \"a\" is listed twice (first at hosts[0])"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg, tc.hosts)
			if err == nil {
				t.Fatalf("New succeeded: %+v", p)
			}
			for _, target := range tc.is {
				if !errors.Is(err, target) {
					t.Errorf("error does not wrap %v: %v", target, err)
				}
			}
			if err.Error() != tc.msg {
				t.Errorf("message:\n got %s\nwant %s", err, tc.msg)
			}
		})
	}
}

func TestConfigByName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Config
	}{
		{"AllAtOnce", AllAtOnce},
		{"CodeDeployDefault.AllAtOnce", AllAtOnce},
		{"HalfAtATime", HalfAtATime},
		{"CodeDeployDefault.HalfAtATime", HalfAtATime},
		{"OneAtATime", OneAtATime},
		{"CodeDeployDefault.OneAtATime", OneAtATime},
	} {
		got, err := ConfigByName(tc.name)
		if err != nil || got != tc.want {
			t.Errorf("ConfigByName(%q) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	for _, name := range []string{"", "halfatatime", "CodeDeployDefault.", "CodeDeployDefault.LambdaAllAtOnce", "Gantry.HalfAtATime"} {
		_, err := ConfigByName(name)
		if !errors.Is(err, ErrUnknownConfig) {
			t.Errorf("ConfigByName(%q): err = %v, want ErrUnknownConfig", name, err)
		}
	}
	_, err := ConfigByName("OneAtTime")
	want := `unknown deployment configuration "OneAtTime": the predefined ones are AllAtOnce, HalfAtATime, OneAtATime (optionally prefixed CodeDeployDefault.)`
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
}

func TestPredefinedAreValid(t *testing.T) {
	for _, c := range Predefined {
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", c, err)
		}
	}
	if got := HalfAtATime.String(); got != "CodeDeployDefault.HalfAtATime (FLEET_PERCENT 50)" {
		t.Errorf("String() = %q", got)
	}
}
