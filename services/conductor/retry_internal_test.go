package conductor

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-ci/gantry/events/run"
)

func TestRetryable(t *testing.T) {
	state := func(phase, stage run.Phase) run.State {
		return run.State{Run: "r", Pipeline: "p", Phase: phase, Stages: []run.Stage{{Name: "S", Phase: stage}, {Name: "T"}}}
	}
	cases := []struct {
		st    run.State
		stage string
		want  string // "" for retryable
	}{
		{state(run.Failed, run.Failed), "S", ""},
		{state(run.Stopped, run.Running), "S", ""},
		{state(run.Stopped, run.Failed), "S", ""},
		{state(run.Running, run.Failed), "S", "still Running; stop it first"},
		{state(run.Stopping, run.Running), "S", "still Stopping"},
		{state(run.Succeeded, run.Succeeded), "S", "only a Failed or Stopped run"},
		{state("Superseded", run.Running), "S", "ended Superseded"},
		{state(run.Failed, run.Succeeded), "S", "stage S of run r is Succeeded"},
		{state(run.Failed, run.Failed), "T", "stage T of run r is not started"},
		{state(run.Failed, run.Failed), "X", `has no stage "X"`},
	}
	for _, c := range cases {
		err := retryable(c.st, c.stage)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s/%s stage %s: %v", c.st.Phase, c.st.Stages[0].Phase, c.stage, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrNotRetryable)):
			t.Errorf("%s/%s stage %s: %v, want %q", c.st.Phase, c.st.Stages[0].Phase, c.stage, err, c.want)
		}
	}
}
