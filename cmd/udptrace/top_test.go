package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/udptrace/udptrace/internal/snmp"
	"github.com/udptrace/udptrace/internal/testutil"
)

type topSnapshot struct {
	Type     string   `json:"type"`
	Overflow uint64   `json:"overflow"`
	Keys     int      `json:"keys"`
	Rows     []topKey `json:"rows"`
}

type topKey struct {
	Family     string `json:"family"`
	DPort      uint16 `json:"dport"`
	Src        string `json:"src"`
	Netns      uint32 `json:"netns"`
	Sender     string `json:"sender"`
	SenderComm string `json:"sender_comm"`
	Count      uint64 `json:"count"`
	Sent       uint64 `json:"sent"`
	Total      uint64 `json:"total"`
}

// parseTop reads top's JSON snapshots and sums each key's per-interval
// counts; it also returns the last snapshot.
func parseTop(t *testing.T, lines []string) (map[string]topKey, topSnapshot) {
	t.Helper()
	sums := map[string]topKey{}
	var last topSnapshot
	for _, l := range lines {
		var s topSnapshot
		if err := json.Unmarshal([]byte(l), &s); err != nil || s.Type != "top" {
			t.Fatalf("not a top snapshot: %q (%v)", l, err)
		}
		for _, r := range s.Rows {
			k := fmt.Sprintf("%s %s %d", r.Family, r.Src, r.DPort)
			sum := sums[k]
			sum.Count += r.Count
			sum.Sent += r.Sent
			sum.Total = r.Total
			sum.SenderComm = r.SenderComm
			sum.Sender = r.Sender
			sums[k] = sum
		}
		last = s
	}
	return sums, last
}

// top counts every datagram, per key, in the kernel: the per-interval counts
// add up to the totals, which equal the kernel's NoPorts deltas.
func TestE2ETop(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "top", "--json", "--interval", "200ms", "--netns", ns.Path)
	before := testutil.ReadCounters(t, ns)
	d9, d53 := ap("127.0.0.1:9"), ap("[::1]:53")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d9, false), d9, 30, 1)
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.2:0", d9, false), d9, 7, 1)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", d53, false), d53, 12, 1)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 37)
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", 12)
	lines := p.stopOK(t)
	sums, last := parseTop(t, lines)
	comm, _ := os.ReadFile("/proc/self/comm")
	self := strings.TrimSpace(string(comm))
	for k, want := range map[string]uint64{"ipv4 127.0.0.1 9": 30, "ipv4 127.0.0.2 9": 7, "ipv6 ::1 53": 12} {
		got := sums[k]
		if got.Count != want || got.Total != want || got.Sent != want || got.Sender != "local" || got.SenderComm != self {
			t.Errorf("%s: %+v, want %d datagrams, all replied, sent by local %q", k, got, want, self)
		}
	}
	if len(sums) != 3 || last.Overflow != 0 {
		t.Errorf("keys %v, overflow %d; want exactly 3 keys, no overflow", sums, last.Overflow)
	}
	d := snmp.Sub(testutil.ReadCounters(t, ns), before)
	if d.Get("Udp.NoPorts") != 37 || d.Get("Udp6NoPorts") != 12 {
		t.Errorf("NoPorts deltas %d/%d, want 37/12", d.Get("Udp.NoPorts"), d.Get("Udp6NoPorts"))
	}
}

// A full table is never silent: datagrams of keys that do not fit are
// counted as overflow, in JSON and on the screen.
func TestE2ETopOverflow(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "top", "--json", "--interval", "200ms", "--table-size", "4", "--netns", ns.Path)
	before := testutil.ReadCounters(t, ns)
	dst := ap("127.0.0.1:9")
	for i := 1; i <= 6; i++ { // 6 sources, 3 datagrams each, for 4 slots
		testutil.Send(t, testutil.UDPSocket(t, ns, fmt.Sprintf("127.0.0.%d:0", i), dst, false), dst, 3, 1)
	}
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 18)
	lines := p.stopOK(t)
	sums, last := parseTop(t, lines)
	var counted uint64
	for _, s := range sums {
		counted += s.Count
	}
	if len(sums) != 4 || counted != 12 || last.Overflow != 6 {
		t.Errorf("%d keys, %d counted, overflow %d; want 4 keys, 12 counted, 6 overflowed", len(sums), counted, last.Overflow)
	}
	// The table says so too.
	p = start(t, ns, "top", "--interval", "200ms", "--table-size", "1", "--netns", ns.Path, "-d", "1s")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", dst, false), dst, 1, 1)
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.2:0", dst, false), dst, 1, 1)
	text := strings.Join(p.waitOK(t), "\n")
	if !strings.Contains(text, "OVERFLOW: 1 datagrams not counted") {
		t.Errorf("the table does not show the overflow:\n%s", text)
	}
}

// top --metrics: the counters follow the kernel's table, and overflow is
// exported too.
func TestE2ETopMetrics(t *testing.T) {
	ns := testutil.NewNS(t)
	const addr = "127.0.0.1:9478"
	p := start(t, ns, "top", "--json", "--interval", "200ms", "--table-size", "2", "--metrics", addr, "--netns", ns.Path)
	before := testutil.ReadCounters(t, ns)
	d9 := ap("127.0.0.1:9")
	for i := 1; i <= 3; i++ { // the third source overflows the 2-key table
		testutil.Send(t, testutil.UDPSocket(t, ns, fmt.Sprintf("127.0.0.%d:0", i), d9, false), d9, 5, 1)
	}
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 15)
	series := fmt.Sprintf(`udptrace_noport_datagrams_total{family="ipv4",netns="%d",port="9"}`, ns.Inode)
	sent := fmt.Sprintf(`udptrace_icmp_replies_total{family="ipv4",netns="%d",port="9",verdict="sent"}`, ns.Inode)
	c := nsHTTP(ns)
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := scrapeMetrics(c, addr)
		if err == nil && m[series] == 10 && m[sent] == 10 && m["udptrace_aggregation_overflow_total"] == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v (err %v); want %s 10, %s 10, overflow 5", m, err, series, sent)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.stopOK(t)
}
