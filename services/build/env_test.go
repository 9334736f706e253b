package build

import "testing"

func TestTaskVariables(t *testing.T) {
	got, err := taskVariables(map[string]string{"GANTRY_RUN_ID": "r", "TAG": "old"},
		map[string]string{"env.TAG": `x"; $(id)`, "buildspec": "b.yml", "env.OTHER": "o"})
	if err != nil {
		t.Fatal(err)
	}
	if got["TAG"] != `x"; $(id)` || got["OTHER"] != "o" || got["GANTRY_RUN_ID"] != "r" || len(got) != 3 {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"env.GANTRY_RUN_ID", "env.1X", "env.A-B", "env."} {
		if _, err := taskVariables(nil, map[string]string{bad: "v"}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
