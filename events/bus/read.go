package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// readBatch bounds one batched direct get: large enough that a run or a
// deployment usually comes back in a single request.
const readBatch = 512

// readTimeout bounds one batch when the caller's context has no deadline.
const readTimeout = 10 * time.Second

// Headers of a batched direct get's replies.
const (
	headerStatus      = "Status"
	headerDescription = "Description"
	headerSequence    = "Nats-Sequence"
	// headerNumPending is how many messages matching the request remain
	// after this one in the server's snapshot of the stream.
	headerNumPending = "Nats-Num-Pending"
)

// readSubject calls fn with each message of subject in stream stored after
// sequence `after` and, when until > 0, at most until, in order, and
// returns the last sequence it passed to fn (after when none).
//
// It asks for readBatch messages per request (a batched direct get,
// nats-server 2.11 or later), so reading a log of n events costs
// n/readBatch round trips instead of n+1: twenty agents and a deploy
// service folding a growing deployment one message at a time spent seconds
// in round trips. The server answers each batch from one isolated snapshot
// of the stream, and the last message's pending count says whether
// anything remains. A read that times out is an error, never a short log.
func (b *Bus) readSubject(ctx context.Context, stream, subject string, after, until uint64, fn func(seq uint64, data []byte)) (uint64, error) {
	tip := after
	for until == 0 || tip < until {
		last, pending, err := b.batch(ctx, stream, subject, tip+1, until, fn)
		if err != nil {
			return tip, fmt.Errorf("read %s from %d: %w", subject, tip+1, err)
		}
		if last == 0 {
			return tip, nil // nothing (more) on the subject
		}
		tip = last
		if pending == 0 {
			return tip, nil
		}
	}
	return tip, nil
}

// batch makes one batched direct get from sequence `from`, passing
// messages up to until (when > 0) to fn. It returns the last sequence
// passed (0 for none) and how many matching messages the server had left
// after it.
func (b *Bus) batch(ctx context.Context, stream, subject string, from, until uint64, fn func(seq uint64, data []byte)) (last, pending uint64, err error) {
	req, err := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
		Batch   int    `json:"batch"`
	}{from, subject, readBatch})
	if err != nil {
		return 0, 0, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readTimeout)
		defer cancel()
	}
	replies, done, err := b.replies.open(b.nc)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	prefix := b.js.Options().APIPrefix
	if prefix == "" {
		prefix = "$JS.API."
	} else if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	if err := b.nc.PublishRequest(prefix+"DIRECT.GET."+stream, replies.inbox, req); err != nil {
		return 0, 0, err
	}
	for {
		var m *nats.Msg
		select {
		case m = <-replies.ch:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		switch status := m.Header.Get(headerStatus); {
		case status == "404" && len(m.Data) == 0:
			return last, 0, nil // no message from `from` on
		case status == "204": // end of batch
			return last, pending, nil
		case status != "":
			return 0, 0, fmt.Errorf("direct get: status %s %s", status, m.Header.Get(headerDescription))
		}
		seq, err := strconv.ParseUint(m.Header.Get(headerSequence), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("direct get: bad %s header: %w", headerSequence, err)
		}
		np := m.Header.Get(headerNumPending)
		if np == "" {
			return 0, 0, errors.New("the NATS server does not answer batched direct gets; Gantry needs nats-server 2.11 or later")
		}
		if pending, err = strconv.ParseUint(np, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("direct get: bad %s header: %w", headerNumPending, err)
		}
		if until > 0 && seq > until {
			return last, 0, nil
		}
		last = seq
		fn(seq, m.Data)
	}
}

// replyMux routes the replies of batched reads, as nats.go routes those of
// requests: one wildcard inbox subscription for the connection and a token
// per read. A subscription per read (what jetstreamext.GetBatch does)
// allocated a 512 KiB channel each time and cost the server a SUB and an
// UNSUB; in the no-op load test that was half of all bytes allocated.
type replyMux struct {
	mu      sync.Mutex
	prefix  string
	sub     *nats.Subscription
	waiting map[string]chan *nats.Msg
	next    uint64
}

// replyBox is one read's inbox and the channel its replies arrive on.
type replyBox struct {
	inbox string
	ch    chan *nats.Msg
}

// open returns a fresh inbox, subscribing the connection's wildcard inbox
// on first use; done forgets it.
func (r *replyMux) open(nc *nats.Conn) (replyBox, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sub == nil || !r.sub.IsValid() {
		r.prefix = nc.NewInbox() + "." // under a custom inbox prefix too
		sub, err := nc.Subscribe(r.prefix+"*", r.route)
		if err != nil {
			return replyBox{}, nil, fmt.Errorf("subscribe to read replies: %w", err)
		}
		// A batch is at most readBatch messages and its end marker, all
		// buffered by route: never a slow consumer in the middle of one.
		_ = sub.SetPendingLimits(-1, -1)
		r.sub, r.waiting = sub, map[string]chan *nats.Msg{}
	}
	r.next++
	token := strconv.FormatUint(r.next, 36)
	box := replyBox{inbox: r.prefix + token, ch: make(chan *nats.Msg, readBatch+1)}
	r.waiting[token] = box.ch
	return box, func() {
		r.mu.Lock()
		delete(r.waiting, token)
		r.mu.Unlock()
	}, nil
}

// route hands a reply to its read. The channel holds a whole batch, so
// the send never blocks the connection's delivery; replies for a read that
// gave up are dropped.
func (r *replyMux) route(m *nats.Msg) {
	r.mu.Lock()
	// A reply to an inbox of an earlier subscription (the connection was
	// closed and the mux subscribed again) matches no token.
	ch := r.waiting[strings.TrimPrefix(m.Subject, r.prefix)]
	r.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- m:
	default:
	}
}
