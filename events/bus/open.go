package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// OpenRuns calls fn with the pipeline and run of every run subject whose
// last event does not end the run (or cannot be decoded): the runs a
// conductor starting up must look at, since their deadlines fire without
// any new event. It reads the stream's subject list and one message per
// run, so it costs one request per run the log holds.
func (b *Bus) OpenRuns(ctx context.Context, fn func(pipeline, run string)) error {
	info, err := b.events.Info(ctx, jetstream.WithSubjectFilter(events.SubjectEventsAll))
	if err != nil {
		return fmt.Errorf("list run subjects: %w", err)
	}
	for subject := range info.State.Subjects {
		parts := strings.Split(subject, ".")
		if len(parts) != 4 {
			continue
		}
		m, err := b.events.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("last event of %s: %w", subject, err)
		}
		if e, err := b.codec.Decode(m.Data); err == nil && EndsRun(e.Type) {
			continue
		}
		fn(parts[2], parts[3])
	}
	return nil
}

// EndsRun reports whether an event type ends a run.
func EndsRun(typ string) bool {
	return typ == events.TypeRunSucceeded || typ == events.TypeRunFailed || typ == events.TypeRunStopped ||
		typ == events.TypeRunSuperseded
}

// RunIDs lists the runs of a pipeline in the log, from the event stream's
// subjects (one request however many runs there are), newest first (run
// IDs are UUIDv7s): the pipeline's lane subject (events.LaneToken) is not
// a run and is left out.
func (b *Bus) RunIDs(ctx context.Context, pipeline string) ([]string, error) {
	info, err := b.events.Info(ctx, jetstream.WithSubjectFilter(events.PipelineEvents(pipeline)))
	if err != nil {
		return nil, fmt.Errorf("runs of %s: %w", pipeline, err)
	}
	prefix := events.RunSubject(pipeline, "")
	ids := make([]string, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		if id := strings.TrimPrefix(subject, prefix); id != events.LaneToken {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	return ids, nil
}
