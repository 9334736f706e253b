package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gantry-ci/gantry/events"
	"github.com/gantry-ci/gantry/events/bus"
)

// TestReadRunInBatches reads a run longer than one batch, interleaved with
// another run and holding messages that do not decode, and checks it
// against a one-message-at-a-time read, and that it took a round trip per
// batch rather than one per event.
func TestReadRunInBatches(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	const other = "01a2154b-ea92-7634-ac3c-6b12b7b33cb6"
	garbage := func(run string) {
		t.Helper()
		if _, err := b.JetStream().Publish(ctx, events.RunSubject("p", run), []byte("{not an event")); err != nil {
			t.Fatal(err)
		}
	}
	const n = 1300
	for i := range n {
		for _, run := range []string{runID, other} {
			if run == other && i%3 != 0 {
				continue
			}
			e, err := events.New(events.RunID(run, fmt.Sprintf("x-%d", i)), "/test", run, time.Now(), events.RunStarted{Run: run})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Append(ctx, "p", e, nil); err != nil {
				t.Fatal(err)
			}
		}
		if i == 700 {
			garbage(runID)
		}
	}
	garbage(runID) // the tip is a message that does not decode
	garbage(other)

	// The reference: one direct get per message, as the bus used to read.
	s, err := b.JetStream().Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	var wantTip uint64
	for next := uint64(1); ; {
		m, err := s.GetMsg(ctx, next, jetstream.WithGetMsgSubject(events.RunSubject("p", runID)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		wantTip, next = m.Sequence, m.Sequence+1
		if _, err := b.Codec().Decode(m.Data); err == nil {
			want = append(want, m.Sequence)
		}
	}
	if len(want) != n {
		t.Fatalf("reference read %d events, want %d", len(want), n)
	}

	var requests atomic.Int64
	sub, err := b.Conn().Subscribe("$JS.API.DIRECT.GET."+events.StreamEvents, func(*nats.Msg) { requests.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	evs, tip, err := b.ReadRunTip(ctx, "p", runID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tip != wantTip {
		t.Errorf("tip %d, want %d (the undecodable last message counts)", tip, wantTip)
	}
	if len(evs) != len(want) {
		t.Fatalf("read %d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Seq != want[i] || e.Subject != runID {
			t.Fatalf("event %d: seq %d subject %s, want seq %d subject %s", i, e.Seq, e.Subject, want[i], runID)
		}
	}
	_ = b.Conn().Flush()
	time.Sleep(50 * time.Millisecond) // let the counting subscriber catch up
	if got, most := requests.Load(), int64((n+2+511)/512); got > most {
		t.Errorf("read %d messages with %d requests, want at most %d", n+2, got, most)
	}

	// From the middle, up to a bound.
	after, until := want[99], want[1099]
	part, err := b.ReadRunUntil(ctx, "p", runID, after, until)
	if err != nil {
		t.Fatal(err)
	}
	if len(part) != 1000 || part[0].Seq != want[100] || part[len(part)-1].Seq != until {
		t.Fatalf("ReadRunUntil(%d, %d): %d events from %d to %d", after, until, len(part), part[0].Seq, part[len(part)-1].Seq)
	}
	// Nothing after the tip, nothing on an empty subject: no error.
	if evs, tip2, err := b.ReadRunTip(ctx, "p", runID, tip); err != nil || len(evs) != 0 || tip2 != tip {
		t.Fatalf("after the tip: %d events, tip %d, %v", len(evs), tip2, err)
	}
	if evs, tip0, err := b.ReadRunTip(ctx, "p", "01a2154b-ea92-7634-ac3c-6b12b7b33cb7", 0); err != nil || len(evs) != 0 || tip0 != 0 {
		t.Fatalf("empty run: %d events, tip %d, %v", len(evs), tip0, err)
	}
	// A cancelled read is an error, never a short log.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := b.ReadRunTip(cctx, "p", runID, 0); err == nil {
		t.Fatal("cancelled read returned no error")
	}
}

func TestDeploysReadTipCountsRefusedMessages(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	d, err := b.Deploys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const dep = "01a2154b-ea92-7634-ac3c-6b12b7b33cb8"
	e, err := events.New(events.DeployHostID(dep, "h1", "succeeded"), "/test", dep, time.Now(),
		events.DeployHostSucceeded{Deployment: dep, Group: "g", Host: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	seq, _, err := d.Append(ctx, "g", e, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := b.JetStream().Publish(ctx, events.DeploySubject("g", dep), []byte("garbage"))
	if err != nil {
		t.Fatal(err)
	}
	evs, tip, err := d.ReadTip(ctx, "g", dep, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Seq != seq || tip != ack.Sequence {
		t.Fatalf("ReadTip: %d events, first seq %d, tip %d; want 1 event at %d, tip %d", len(evs), evs[0].Seq, tip, seq, ack.Sequence)
	}
}

// TestConcurrentReadsShareOneInbox: reads from many goroutines on one bus
// each get their own run's events, through one reply subscription; a read
// that gave up does not disturb the next.
func TestConcurrentReadsShareOneInbox(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	const runs, each = 16, 40
	ids := make([]string, runs)
	for r := range runs {
		ids[r] = events.RunIDForTrigger(fmt.Sprint("concurrent-", r), time.Now().UnixMilli())
		for i := range each {
			e, err := events.New(events.RunID(ids[r], fmt.Sprint("x-", i)), "/test", ids[r], time.Now(), events.RunStarted{Run: ids[r]})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := b.Append(ctx, "p", e, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := b.ReadRunTip(gone, "p", ids[0], 0); err == nil {
		t.Fatal("a cancelled read returned no error")
	}
	var wg sync.WaitGroup
	errs := make(chan error, runs*4)
	for range 4 {
		for r := range runs {
			wg.Go(func() {
				evs, _, err := b.ReadRunTip(ctx, "p", ids[r], 0)
				if err != nil {
					errs <- err
					return
				}
				if len(evs) != each {
					errs <- fmt.Errorf("run %d: %d events, want %d", r, len(evs), each)
				}
				for _, e := range evs {
					if e.Subject != ids[r] {
						errs <- fmt.Errorf("run %d got an event of %s", r, e.Subject)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := b.Conn().NumSubscriptions(); n > 2 {
		t.Errorf("%d subscriptions on the connection after 64 reads, want the request mux and the read mux at most", n)
	}
}

// TestScanDeploymentsOfAGroup: Scan reads a wildcard filter past one
// batch, in stream order, leaving out other groups and messages that do
// not decode.
func TestScanDeploymentsOfAGroup(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	d, err := b.Deploys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 600 {
		dep := events.RunIDForTrigger(fmt.Sprint("scan-", i%7), 1)
		for _, g := range []string{"g", "other"} {
			e, err := events.New(events.DeployHostID(dep, fmt.Sprint("h", i), g), "/test", dep, time.Now(),
				events.DeployHostSucceeded{Deployment: dep, Group: g, Host: fmt.Sprint("h", i)})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := d.Append(ctx, g, e, nil); err != nil {
				t.Fatal(err)
			}
			if g == "g" {
				want = append(want, e.ID)
			}
		}
		if i == 300 {
			if _, err := b.JetStream().Publish(ctx, events.DeploySubject("g", dep), []byte("garbage")); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	var last uint64
	if err := d.Scan(ctx, events.GroupDeploys("g"), func(e events.Event) {
		if e.Seq <= last {
			t.Fatalf("out of order: %d after %d", e.Seq, last)
		}
		last = e.Seq
		got = append(got, e.ID)
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scanned %d events, want %d in order", len(got), len(want))
	}
	if err := d.Scan(ctx, events.GroupDeploys("none"), func(events.Event) { t.Fatal("an event of no group") }); err != nil {
		t.Fatal(err)
	}
}

// TestAppendIfGroupAt: an append expecting the group's tip lands only if
// nothing was appended to any deployment of the group since; other groups
// do not count.
func TestAppendIfGroupAt(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	d, err := b.Deploys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(group, dep, fact string) events.Event {
		e, err := events.New(events.DeployID(dep, fact), "/test", dep, time.Now(),
			events.DeploymentSucceeded{Deployment: dep, Group: group})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tip, err := d.ScanTip(ctx, events.GroupDeploys("g"), func(events.Event) {})
	if err != nil || tip != 0 {
		t.Fatalf("empty group tip = %d, %v", tip, err)
	}
	seq, _, err := d.AppendIfGroupAt(ctx, "g", ev("g", "d1", "a"), 0)
	if err != nil {
		t.Fatalf("first append at tip 0: %v", err)
	}
	// Another group moving does not conflict.
	if _, _, err := d.Append(ctx, "other", ev("other", "x", "a"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.AppendIfGroupAt(ctx, "g", ev("g", "d2", "a"), seq); err != nil {
		t.Fatalf("append at the group's tip: %v", err)
	}
	// The group moved (d2): a decision taken at seq is stale, on any subject
	// of the group.
	if _, _, err := d.AppendIfGroupAt(ctx, "g", ev("g", "d3", "a"), seq); !errors.Is(err, bus.ErrConflict) {
		t.Fatalf("append at a stale group tip: %v, want ErrConflict", err)
	}
	tip, err = d.ScanTip(ctx, events.GroupDeploys("g"), func(events.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.AppendIfGroupAt(ctx, "g", ev("g", "d3", "a"), tip); err != nil {
		t.Fatalf("append at the rescanned tip %d: %v", tip, err)
	}
}
