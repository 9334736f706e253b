package bus

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
)

// JetStream atomic batch publish headers (nats-server 2.12+, ADR-50).
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// Server error codes the batch commit can answer with that mean "your view
// of the run is stale": someone appended first, or one of the events is
// already stored.
const (
	errCodeBatchDuplicate = 10201 // atomic publish batch contains duplicate message id
	errCodeDuplicate      = 10158 // duplicate message id is in process
)

// Atomic reports whether the event stream takes atomic batches, so that
// AppendChain costs one round trip.
func (b *Bus) Atomic() bool { return b.atomicEnabled() }

func (b *Bus) atomicEnabled() bool {
	return b.events != nil && b.events.CachedInfo() != nil && b.events.CachedInfo().Config.AllowAtomicPublish
}

// AppendChain appends events to one run's log as one unit: all of them, in
// order, directly after sequence expect, or none (ErrConflict). It returns
// the sequence of each. On a stream with atomic publish (nats-server 2.12+)
// that is one round trip; otherwise the events are appended one by one,
// each expecting the previous, so a conflict can leave a prefix appended —
// which is still a valid log, since the decider only produces chains whose
// every prefix is a state it would have reached anyway.
func (b *Bus) AppendChain(ctx context.Context, pipeline string, evs []events.Event, expect uint64) ([]uint64, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	if len(evs) == 1 || !b.atomicEnabled() {
		seqs := make([]uint64, 0, len(evs))
		for _, e := range evs {
			exp := expect
			seq, dup, err := b.Append(ctx, pipeline, e, &exp)
			if err != nil {
				return seqs, err
			}
			if dup {
				return seqs, fmt.Errorf("%w: %s is already in the log", ErrConflict, e.ID)
			}
			seqs = append(seqs, seq)
			expect = seq
		}
		return seqs, nil
	}
	batch := uuid.NewString()
	var ack struct {
		Sequence  uint64 `json:"seq"`
		BatchSize int    `json:"count"`
		Error     *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	for i, e := range evs {
		data, err := b.codec.Encode(e)
		if err != nil {
			return nil, err
		}
		m := &nats.Msg{Subject: events.RunSubject(pipeline, runOf(e)), Data: data, Header: nats.Header{}}
		m.Header.Set(HeaderType, e.Type)
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		m.Header.Set(headerBatchID, batch)
		m.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
		}
		if i < len(evs)-1 {
			if err := b.nc.PublishMsg(m); err != nil {
				return nil, fmt.Errorf("append batch %s: %w", e.ID, err)
			}
			continue
		}
		m.Header.Set(headerBatchCommit, "1")
		reply, err := b.nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("commit batch ending %s: %w", e.ID, err)
		}
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return nil, fmt.Errorf("commit batch ending %s: bad reply: %w", e.ID, err)
		}
	}
	if ack.Error != nil {
		switch jetstream.ErrorCode(ack.Error.ErrCode) {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant,
			errCodeBatchDuplicate, errCodeDuplicate:
			return nil, fmt.Errorf("%w: append batch of %d to run %s: %s", ErrConflict, len(evs), runOf(evs[0]), ack.Error.Description)
		}
		return nil, fmt.Errorf("append batch of %d to run %s: %s (code %d)", len(evs), runOf(evs[0]), ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.BatchSize != len(evs) {
		return nil, fmt.Errorf("append batch to run %s: committed %d of %d events", runOf(evs[0]), ack.BatchSize, len(evs))
	}
	// An atomic batch is stored contiguously, ending at the acked sequence.
	seqs := make([]uint64, len(evs))
	for i := range evs {
		seqs[i] = ack.Sequence - uint64(len(evs)-1-i)
	}
	return seqs, nil
}
