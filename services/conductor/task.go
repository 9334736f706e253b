package conductor

import (
	"encoding/json"
	"fmt"

	"github.com/gantry-ci/gantry/events"
)

func encodeTask(t events.Task) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode task %s: %w", t.ID, err)
	}
	return b, nil
}
