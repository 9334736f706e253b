package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gantry-ci/gantry/events/run"
)

// TestNodeKillLosesNoRun: with 100 runs in flight on a three-node cluster
// of gantry-nats containers, one node is killed (SIGKILL); every run still
// completes, exactly once.
func TestNodeKillLosesNoRun(t *testing.T) {
	c := startCluster(t)
	newFleet(t, c, 2, 2)
	b := c.mustOpen("client")
	var runs []string
	for i := range 100 {
		runs = append(runs, request(t, b, fmt.Sprintf("node-kill-%d", i)))
	}
	time.Sleep(time.Second) // some runs under way, most still queued
	// 100 runs of two 250 ms tasks on 16 worker slots take over 3 s: the
	// last one cannot be done yet, so the kill lands with runs in flight.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if evs, err := b.ReadRun(ctx, def.Name, runs[len(runs)-1], 0); err != nil {
		t.Fatal(err)
	} else if st := run.Fold(run.State{}, evs...); st.Done() {
		t.Fatal("every run ended before the kill: nothing was in flight")
	}
	c.kill("nats2")
	waitDone(t, b, runs, 4*time.Minute)
}

// TestEventsLeaderKillNoFork: the GANTRY_EVENTS stream's leader is killed
// while runs are being requested and driven; appends resume once the other
// two elect a new leader, and every run's log is one linear history.
func TestEventsLeaderKillNoFork(t *testing.T) {
	c := startCluster(t)
	newFleet(t, c, 2, 2)
	b := c.mustOpen("client")
	var runs []string
	for i := range 30 {
		runs = append(runs, request(t, b, fmt.Sprintf("leader-kill-a-%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := eventsLeader(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	c.kill(leader)
	killed := time.Now()
	// Appends after the kill: they resume once a new leader is elected.
	for i := range 30 {
		runs = append(runs, request(t, b, fmt.Sprintf("leader-kill-b-%d", i)))
	}
	t.Logf("30 runs requested %s after killing leader %s", time.Since(killed).Round(time.Millisecond), leader)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		now, err := eventsLeader(ctx, b)
		if err == nil && now != leader {
			t.Logf("new GANTRY_EVENTS leader %s", now)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new leader after killing %s: %v", leader, err)
		}
	}
	waitDone(t, b, runs, 4*time.Minute)
}

// TestRollingRestartFailsNoRun: every Gantry service is restarted one by
// one (as SIGTERM and a new start would) while runs flow: none fails.
func TestRollingRestartFailsNoRun(t *testing.T) {
	c := startCluster(t)
	f := newFleet(t, c, 2, 2)
	b := c.mustOpen("client")
	var runs []string
	for i := range 40 {
		runs = append(runs, request(t, b, fmt.Sprintf("restart-a-%d", i)))
	}
	for _, s := range f.services {
		time.Sleep(500 * time.Millisecond)
		f.restart(s)
		t.Logf("restarted %s", s.name)
		runs = append(runs, request(t, b, "restart-after-"+s.name))
	}
	waitDone(t, b, runs, 4*time.Minute)
}
