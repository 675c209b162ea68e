package testutil

import (
	"testing"
	"time"

	"github.com/udptrace/udptrace/internal/snmp"
)

// ReadCounters reads the SNMP counters of ns.
func ReadCounters(t testing.TB, ns *NS) snmp.Counters {
	t.Helper()
	c, err := snmp.ReadNetns(ns.Path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SettledDelta waits until counter name of ns has grown by sent since before,
// or has stopped growing, and returns its delta. A flood can lose datagrams
// before UDP sees them (the backlog queue of a slow, emulated CPU overflows),
// so tests of a flood compare with what the kernel counted, not with what
// they sent; fewer than half of sent arriving means something else is wrong.
func SettledDelta(t testing.TB, ns *NS, before snmp.Counters, name string, sent uint64) uint64 {
	t.Helper()
	var last uint64
	lastChange := time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d := snmp.Sub(ReadCounters(t, ns), before).Get(name)
		switch {
		case d > sent:
			t.Fatalf("%s delta %d, more than the %d datagrams sent", name, d, sent)
		case d == sent:
			return d
		case d != last:
			last, lastChange = d, time.Now()
		case time.Since(lastChange) > 500*time.Millisecond || time.Now().After(deadline):
			if d < sent/2 {
				t.Fatalf("%s delta %d: fewer than half of %d datagrams reached UDP", name, d, sent)
			}
			t.Logf("%s delta %d of %d sent: the rest was dropped before UDP", name, d, sent)
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitDelta waits until counter name of ns has grown by exactly want.
func WaitDelta(t testing.TB, ns *NS, before snmp.Counters, name string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := snmp.Sub(ReadCounters(t, ns), before).Get(name)
		if d == want {
			return
		}
		if d > want || time.Now().After(deadline) {
			t.Fatalf("%s delta %d, want %d", name, d, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
