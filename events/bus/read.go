package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// readBatch bounds one batched direct get: large enough that a run or a
// deployment usually comes back in a single request.
const readBatch = 512

// headerNumPending is what a batched direct get puts on each message: how
// many messages matching the subject remain after it in the server's
// snapshot of the stream.
const headerNumPending = "Nats-Num-Pending"

// readSubject calls fn with each message of subject stored after sequence
// `after` and, when until > 0, at most until, in order, and returns the last
// sequence it passed to fn (after when none).
//
// It asks for readBatch messages per request (a batched direct get, nats-
// server 2.11 or later), so reading a log of n events costs n/readBatch
// round trips instead of n+1: twenty agents and a deploy service folding a
// growing deployment one message at a time spent seconds in round trips.
// The server answers each batch from one isolated snapshot of the stream,
// and the last message's pending count says whether anything remains.
func readSubject(ctx context.Context, js jetstream.JetStream, stream, subject string, after, until uint64, fn func(seq uint64, data []byte)) (uint64, error) {
	tip := after
	for until == 0 || tip < until {
		msgs, err := jetstreamext.GetBatch(ctx, js, stream, readBatch,
			jetstreamext.GetBatchSeq(tip+1), jetstreamext.GetBatchSubject(subject))
		if err != nil {
			return tip, fmt.Errorf("read %s from %d: %w", subject, tip+1, err)
		}
		got, pending := 0, uint64(0)
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				return tip, nil
			}
			if errors.Is(err, jetstreamext.ErrBatchUnsupported) {
				return tip, fmt.Errorf("read %s: the NATS server does not answer batched direct gets; Gantry needs nats-server 2.11 or later: %w", subject, err)
			}
			if err != nil {
				return tip, fmt.Errorf("read %s from %d: %w", subject, tip+1, err)
			}
			if until > 0 && m.Sequence > until {
				return tip, nil
			}
			if pending, err = strconv.ParseUint(m.Header.Get(headerNumPending), 10, 64); err != nil {
				return tip, fmt.Errorf("read %s at %d: bad %s header: %w", subject, m.Sequence, headerNumPending, err)
			}
			got++
			tip = m.Sequence
			fn(m.Sequence, m.Data)
		}
		if got == 0 {
			// The iterator ends quietly when the request times out or ctx
			// ends: that must not pass for the end of the log.
			if err := ctx.Err(); err != nil {
				return tip, fmt.Errorf("read %s from %d: %w", subject, tip+1, err)
			}
			return tip, fmt.Errorf("read %s from %d: no reply from the server", subject, tip+1)
		}
		if pending == 0 {
			return tip, nil
		}
	}
	return tip, nil
}
