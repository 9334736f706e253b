package metrics_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/services/access"
	"github.com/gantry-ci/gantry/services/worker"
)

// The KEDA example scales on the consumer the build fleet really shares,
// in the account Gantry's users live in: a rename in code must show here.
func TestKEDAExampleNamesTheBuildConsumer(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/build-workers-keda.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, doc := range bytes.Split(b, []byte("\n---\n")) {
		var so struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Triggers []struct {
					Type     string            `yaml:"type"`
					Metadata map[string]string `yaml:"metadata"`
				} `yaml:"triggers"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(doc, &so); err != nil {
			t.Fatal(err)
		}
		if so.Kind != "ScaledObject" {
			continue
		}
		for _, tr := range so.Spec.Triggers {
			if tr.Type != "nats-jetstream" {
				continue
			}
			found = true
			m := tr.Metadata
			if m["stream"] != events.StreamTasks || m["consumer"] != worker.ConsumerName("build", "default") || m["account"] != access.Account {
				t.Errorf("scaler watches %s/%s in account %s, want %s/%s in %s", m["stream"], m["consumer"], m["account"],
					events.StreamTasks, worker.ConsumerName("build", "default"), access.Account)
			}
		}
	}
	if !found {
		t.Fatal("no nats-jetstream trigger in the KEDA example")
	}
}
