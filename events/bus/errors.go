package bus

import "errors"

var (
	// ErrConflict is returned by Append when the run's subject has moved on
	// since the expected sequence: fold what you missed and decide again.
	ErrConflict = errors.New("run log moved on (wrong last subject sequence)")
	// ErrNoRun is returned when a run's subject holds no events.
	ErrNoRun = errors.New("run not found")
)
