package loader_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/filter"
	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/snmp"
	"github.com/udptrace/udptrace/internal/testutil"
)

func TestRecordSizeMatchesC(t *testing.T) {
	size, err := loader.CStructSize("event")
	if err != nil {
		t.Fatal(err)
	}
	if size != events.RecordSize {
		t.Fatalf("C struct event is %d bytes in the BPF object's BTF, events.RecordSize is %d", size, events.RecordSize)
	}
	if got := loader.EventSize; got != events.RecordSize {
		t.Fatalf("C struct event is %d bytes, events.RecordSize is %d", got, events.RecordSize)
	}
	if got := unsafe.Sizeof(filter.LPMKey{}); got != loader.LPMKeySize {
		t.Fatalf("filter.LPMKey is %d bytes, C struct lpm_key is %d", got, loader.LPMKeySize)
	}
}

// seen is the part of an event a test can predict exactly.
type seen struct {
	Family     events.Family
	Src, Dst   netip.AddrPort
	Len        uint16
	IfName     string
	Netns      uint32
	ICMP       events.ICMPVerdict
	Kind       events.Kind
	IfIndexSet bool
}

func project(e *events.Event) seen {
	return seen{
		Family: e.Family, Src: netip.AddrPortFrom(e.Src, e.SPort), Dst: netip.AddrPortFrom(e.Dst, e.DPort),
		Len: e.Len, IfName: e.IfNameString(), Netns: e.Netns, ICMP: e.ICMP, Kind: e.Kind, IfIndexSet: e.IfIndex != 0,
	}
}

func sortSeen(s []seen) {
	sort.Slice(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Src != b.Src {
			return a.Src.String() < b.Src.String()
		}
		return a.Dst.String() < b.Dst.String()
	})
}

func TestMain(m *testing.M) {
	os.Exit(testutil.RunMain(m, func(b string) error { return loader.Check(loader.Backend(b)) }))
}

// open starts a tracer with the backend under test (UDPTRACE_BACKEND).
func open(t *testing.T, cfg loader.Config) *loader.Tracer {
	t.Helper()
	cfg.Backend = loader.Backend(testutil.Backend())
	tr, err := loader.Open(cfg)
	if err != nil {
		t.Fatalf("open tracer: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// waitNoPorts waits until the namespace counted want4/want6 more no-port
// datagrams than in before, and the tracer saw as many: the receive path may
// run in ksoftirqd after send() returned.
func waitNoPorts(t *testing.T, tr *loader.Tracer, ns *testutil.NS, before snmp.Counters, want4, want6 uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := testutil.ReadCounters(t, ns)
		d4 := snmp.Sub(now, before).Get("Udp.NoPorts")
		d6 := snmp.Sub(now, before).Get("Udp6NoPorts")
		c, err := tr.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if d4 == want4 && d6 == want6 && c.NoPort4NS+c.NoPort6NS >= want4+want6 {
			return
		}
		if d4 > want4 || d6 > want6 || time.Now().After(deadline) {
			t.Fatalf("NoPorts delta ipv4 %d ipv6 %d, want %d and %d (tracer saw %d+%d)", d4, d6, want4, want6, c.NoPort4NS, c.NoPort6NS)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain detaches the tracer and returns the no-port events left in its
// ring (the datagrams; their chains' other records are left out).
func drain(t *testing.T, tr *loader.Tracer) []events.Event {
	t.Helper()
	var out []events.Event
	for _, e := range drainAll(t, tr) {
		if e.Kind == events.KindNoPort {
			out = append(out, e)
		}
	}
	return out
}

// drainAll detaches the tracer and returns every record left in its ring.
func drainAll(t *testing.T, tr *loader.Tracer) []events.Event {
	t.Helper()
	if err := tr.Detach(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Reader.Flush(); err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	var rec ringbuf.Record
	for {
		err := tr.Reader.ReadInto(&rec)
		if errors.Is(err, ringbuf.ErrFlushed) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var e events.Event
		if err := events.Decode(rec.RawSample, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

var addrPorts = cmpopts.EquateComparable(netip.AddrPort{})

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestEventsLoopback(t *testing.T) {
	ns := testutil.NewNS(t)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
	before := testutil.ReadCounters(t, ns)
	start := time.Now()

	type send struct {
		local     string
		remote    netip.AddrPort
		connected bool
		n, size   int
	}
	sends := []send{
		{"127.0.0.1:40001", ap("127.0.0.1:9"), false, 2, 10},
		{"127.0.0.1:40002", ap("127.0.0.2:7"), true, 3, 1},
		{"[::1]:40003", ap("[::1]:9"), false, 2, 100},
		{"[::1]:40004", ap("[::1]:19"), true, 1, 0},
	}
	var want []seen
	var n4, n6 uint64
	for _, s := range sends {
		c := testutil.UDPSocket(t, ns, s.local, s.remote, s.connected)
		testutil.Send(t, c, s.remote, s.n, s.size)
		fam := events.FamilyIPv4
		if s.remote.Addr().Is6() {
			fam = events.FamilyIPv6
			n6 += uint64(s.n)
		} else {
			n4 += uint64(s.n)
		}
		for i := 0; i < s.n; i++ {
			want = append(want, seen{Family: fam, Src: ap(s.local), Dst: s.remote, Len: uint16(8 + s.size),
				IfName: "lo", Netns: ns.Inode, ICMP: events.ICMPSent, Kind: events.KindNoPort, IfIndexSet: true})
		}
	}
	waitNoPorts(t, tr, ns, before, n4, n6)
	evs := drain(t, tr)
	end := time.Now()

	var got []seen
	clock := events.NewClock()
	for i := range evs {
		got = append(got, project(&evs[i]))
		if ts := clock.Time(evs[i].BootNS); ts.Before(start.Add(-time.Second)) || ts.After(end.Add(time.Second)) {
			t.Errorf("event time %v outside the test's [%v, %v]", ts, start, end)
		}
	}
	sortSeen(got)
	sortSeen(want)
	if diff := cmp.Diff(want, got, addrPorts); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	after := testutil.ReadCounters(t, ns)
	c, _ := tr.Counters()
	if d := snmp.Sub(after, before).Get("IcmpMsg.OutType3"); d != n4 || c.ICMP4SentNS != n4 {
		t.Errorf("ICMP port unreachable: OutType3 delta %d, tracer %d, want %d", d, c.ICMP4SentNS, n4)
	}
	if d := snmp.Sub(after, before).Get("Icmp6OutDestUnreachs"); d != n6 || c.ICMP6SentNS != n6 {
		t.Errorf("ICMPv6 dest unreachable: delta %d, tracer %d, want %d", d, c.ICMP6SentNS, n6)
	}
}

// traffic is a fixed mix of datagrams used to check each filter.
var traffic = []struct {
	local, remote string
}{
	{"127.0.0.1:41001", "127.0.0.1:9"},
	{"127.0.0.2:41002", "127.0.0.1:101"},
	{"127.0.0.3:41003", "127.0.0.4:5353"},
	{"[::1]:41004", "[::1]:9"},
	{"[::1]:41005", "[::1]:8050"},
}

func TestFilters(t *testing.T) {
	pfx := netip.MustParsePrefix
	cases := []struct {
		name string
		cfg  loader.Config
		keep func(src, dst netip.AddrPort) bool
	}{
		{"none", loader.Config{}, func(_, _ netip.AddrPort) bool { return true }},
		{"port 9", loader.Config{DPorts: []filter.PortRange{{Lo: 9, Hi: 9}}},
			func(_, d netip.AddrPort) bool { return d.Port() == 9 }},
		{"ports 100-102,5353", loader.Config{DPorts: []filter.PortRange{{Lo: 100, Hi: 102}, {Lo: 5353, Hi: 5353}}},
			func(_, d netip.AddrPort) bool { return d.Port() == 101 || d.Port() == 5353 }},
		{"sport 41002-41004", loader.Config{SPorts: []filter.PortRange{{Lo: 41002, Hi: 41004}}},
			func(s, _ netip.AddrPort) bool { return s.Port() >= 41002 && s.Port() <= 41004 }},
		{"src 127.0.0.2/31", loader.Config{Src: []netip.Prefix{pfx("127.0.0.2/31")}},
			func(s, _ netip.AddrPort) bool { return pfx("127.0.0.2/31").Contains(s.Addr()) }},
		{"dst ::1 or 127.0.0.4", loader.Config{Dst: []netip.Prefix{pfx("::1/128"), pfx("127.0.0.4/32")}},
			func(_, d netip.AddrPort) bool {
				return d.Addr() == netip.IPv6Loopback() || d.Addr().String() == "127.0.0.4"
			}},
		{"ipv4", loader.Config{Family: 4}, func(s, _ netip.AddrPort) bool { return s.Addr().Is4() }},
		{"ipv6", loader.Config{Family: 6}, func(s, _ netip.AddrPort) bool { return s.Addr().Is6() }},
		{"ipv6 port 8000-8100", loader.Config{Family: 6, DPorts: []filter.PortRange{{Lo: 8000, Hi: 8100}}},
			func(s, d netip.AddrPort) bool { return s.Addr().Is6() && d.Port() == 8050 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := testutil.NewNS(t)
			cfg := tc.cfg
			cfg.TargetNetns, cfg.StatsNetns = ns.Inode, ns.Inode
			tr := open(t, cfg)
			before := testutil.ReadCounters(t, ns)
			var want []seen
			var n4, n6 uint64
			for _, tf := range traffic {
				src, dst := ap(tf.local), ap(tf.remote)
				testutil.Send(t, testutil.UDPSocket(t, ns, tf.local, dst, false), dst, 1, 4)
				if dst.Addr().Is4() {
					n4++
				} else {
					n6++
				}
				if tc.keep(src, dst) {
					want = append(want, seen{Src: src, Dst: dst})
				}
			}
			waitNoPorts(t, tr, ns, before, n4, n6)
			evs := drain(t, tr)
			var got []seen
			for _, e := range evs {
				got = append(got, seen{Src: netip.AddrPortFrom(e.Src, e.SPort), Dst: netip.AddrPortFrom(e.Dst, e.DPort)})
			}
			sortSeen(got)
			sortSeen(want)
			if diff := cmp.Diff(want, got, addrPorts); diff != "" {
				t.Fatalf("kept (-want +got):\n%s", diff)
			}
			c, _ := tr.Counters()
			if c.NoPort4NS != n4 || c.NoPort6NS != n6 || c.PassedNS != uint64(len(want)) {
				t.Fatalf("counters %+v, want %d/%d seen and %d passed", c, n4, n6, len(want))
			}
		})
	}
}

func TestNetnsFilter(t *testing.T) {
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	tr := open(t, loader.Config{TargetNetns: b.Inode, StatsNetns: b.Inode})
	beforeA, beforeB := testutil.ReadCounters(t, a), testutil.ReadCounters(t, b)
	dst := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, a, "127.0.0.1:0", dst, false), dst, 5, 1)
	testutil.Send(t, testutil.UDPSocket(t, b, "127.0.0.1:0", dst, false), dst, 3, 1)
	if d := snmp.Sub(testutil.ReadCounters(t, a), beforeA).Get("Udp.NoPorts"); d != 5 {
		t.Fatalf("namespace a NoPorts delta %d, want 5", d)
	}
	waitNoPorts(t, tr, b, beforeB, 3, 0)
	evs := drain(t, tr)
	if len(evs) != 3 {
		t.Fatalf("got %d events, want the 3 from namespace b", len(evs))
	}
	for _, e := range evs {
		if e.Netns != b.Inode {
			t.Errorf("event from netns %d, want %d", e.Netns, b.Inode)
		}
	}
}

func TestListeningPortIsNotAnEvent(t *testing.T) {
	ns := testutil.NewNS(t)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
	before := testutil.ReadCounters(t, ns)
	l := testutil.UDPSocket(t, ns, "127.0.0.1:5000", netip.AddrPort{}, false)
	open := ap("127.0.0.1:5000")
	closed := ap("127.0.0.1:5001")
	c := testutil.UDPSocket(t, ns, "127.0.0.1:0", open, false)
	testutil.Send(t, c, open, 5, 3)
	testutil.Send(t, c, closed, 2, 3)
	buf := make([]byte, 16)
	for i := 0; i < 5; i++ {
		l.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := l.Read(buf); err != nil {
			t.Fatalf("listener read %d: %v", i, err)
		}
	}
	waitNoPorts(t, tr, ns, before, 2, 0)
	evs := drain(t, tr)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (only the closed port)", len(evs))
	}
	for _, e := range evs {
		if e.DPort != 5001 {
			t.Errorf("event for port %d, want 5001", e.DPort)
		}
	}
}

func TestTwoInstances(t *testing.T) {
	ns := testutil.NewNS(t)
	cfg := loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode}
	tr1, tr2 := open(t, cfg), open(t, cfg)
	before := testutil.ReadCounters(t, ns)
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d4, false), d4, 500, 8)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", d6, false), d6, 300, 8)
	waitNoPorts(t, tr1, ns, before, 500, 300)
	waitNoPorts(t, tr2, ns, before, 500, 300)
	for i, tr := range []*loader.Tracer{tr1, tr2} {
		if n := len(drain(t, tr)); n != 800 {
			t.Errorf("instance %d saw %d events, want 800", i+1, n)
		}
	}
}

func TestFlood(t *testing.T) {
	const n = 100_000
	ns := testutil.NewNS(t)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
	before := testutil.ReadCounters(t, ns)

	got := make(chan map[events.Kind]uint64)
	go func() {
		var rec ringbuf.Record
		var e events.Event
		counts := map[events.Kind]uint64{}
		for {
			err := tr.Reader.ReadInto(&rec)
			if err != nil {
				got <- counts
				return
			}
			if events.Decode(rec.RawSample, &e) == nil && e.DPort == 9 {
				counts[e.Kind]++
			}
		}
	}()
	dst := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", dst, false), dst, n, 16)
	delta := testutil.SettledDelta(t, ns, before, "Udp.NoPorts", n)
	waitNoPorts(t, tr, ns, before, delta, 0)
	// Every reply sent has arrived (or was dropped) before the detach.
	in3 := testutil.SettledDelta(t, ns, before, "IcmpMsg.InType3", delta)
	tr.Detach()
	tr.Reader.Flush()
	counts := <-got
	c, _ := tr.Counters()
	if c.Lost != 0 || counts[events.KindNoPort] != delta {
		t.Fatalf("%d events, lost %d; want the NoPorts delta %d (sent %d), none lost", counts[events.KindNoPort], c.Lost, delta, n)
	}
	// Each reply that came back to the (unconnected) sender was ignored:
	// one delivery record per port-unreachable the namespace received (under
	// QEMU the loopback backlog drops some replies before icmp_rcv).
	if tr.Delivery && counts[events.KindDelivery] != in3 {
		t.Errorf("%d delivery records, want one per port-unreachable received (IcmpMsg InType3 delta %d)", counts[events.KindDelivery], in3)
	}
}

// Over a veth pair, with the per-destination ICMP rate limit tightened, some
// replies are suppressed: every verdict must agree with the kernel's counter.
func TestICMPRateLimitedOverVeth(t *testing.T) {
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	testutil.Veth(t, a, "va", "10.200.0.1/24,fd00:200::1/64", b, "vb", "10.200.0.2/24,fd00:200::2/64")
	b.Sysctl(t, "net.ipv4.icmp_ratelimit", "100000")
	b.Sysctl(t, "net.ipv6.icmp.ratelimit", "100000")
	// PrimeNetns: the tracepoint backend reads b's counters on every CPU
	// at start, so the very first suppressed reply is named too.
	tr := open(t, loader.Config{TargetNetns: b.Inode, StatsNetns: b.Inode, PrimeNetns: []string{b.Path}})
	before := testutil.ReadCounters(t, b)
	const n = 30
	d4, d6 := ap("10.200.0.2:9"), ap("[fd00:200::2]:9")
	testutil.Send(t, testutil.UDPSocket(t, a, "10.200.0.1:42000", d4, false), d4, n, 20)
	testutil.Send(t, testutil.UDPSocket(t, a, "[fd00:200::1]:42001", d6, false), d6, n, 20)
	waitNoPorts(t, tr, b, before, n, n)
	evs := drain(t, tr)
	after := testutil.ReadCounters(t, b)

	verdicts := map[events.Family]map[events.ICMPVerdict]uint64{4: {}, 6: {}}
	link, err := b.Netlink(t).LinkByName("vb")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		verdicts[e.Family][e.ICMP]++
		if e.IfNameString() != "vb" || e.IfIndex != uint32(link.Attrs().Index) {
			t.Errorf("event on %q (%d), want vb (%d)", e.IfNameString(), e.IfIndex, link.Attrs().Index)
		}
	}
	if len(evs) != 2*n {
		t.Fatalf("%d events, want %d", len(evs), 2*n)
	}
	delta := snmp.Sub(after, before)
	out3 := delta.Get("IcmpMsg.OutType3")
	// Suppressed replies are rate-limited by name where the kernel counts
	// them (6.6+, 6.1.113+): exactly as many as its counters moved.
	rlHost4, rlGlobal4, rlHost6 := delta.Get("Icmp.OutRateLimitHost"), delta.Get("Icmp.OutRateLimitGlobal"), delta.Get("Icmp6OutRateLimitHost")
	if !tr.RateLimits && rlHost4+rlGlobal4+rlHost6 != 0 {
		t.Errorf("the tracer found no rate-limit counters, but they moved: %d %d %d", rlHost4, rlGlobal4, rlHost6)
	}
	if verdicts[4][events.ICMPSent] != out3 || verdicts[4][events.ICMPRateLimitedHost] != rlHost4 ||
		verdicts[4][events.ICMPRateLimitedGlobal] != rlGlobal4 || verdicts[4][events.ICMPNotSent] != n-out3-rlHost4-rlGlobal4 || out3 == n {
		t.Errorf("IPv4 verdicts %v, OutType3 delta %d of %d, OutRateLimitHost %d, OutRateLimitGlobal %d (want some suppressed, each verdict exact)",
			verdicts[4], out3, n, rlHost4, rlGlobal4)
	}
	out6 := delta.Get("Icmp6OutDestUnreachs")
	// Only the tracepoint backend cannot prove an ICMPv6 reply was not sent.
	unsent6 := events.ICMPNotSent
	if tr.Backend == loader.Tracepoint {
		unsent6 = events.ICMPUnknown
	}
	if verdicts[6][events.ICMPSent] != out6 || verdicts[6][events.ICMPRateLimitedHost] != rlHost6 ||
		verdicts[6][unsent6] != n-out6-rlHost6 || out6 == n {
		t.Errorf("IPv6 verdicts %v, Icmp6OutDestUnreachs delta %d of %d, Icmp6OutRateLimitHost %d", verdicts[6], out6, n, rlHost6)
	}
	c, err := tr.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimited4NS != rlHost4+rlGlobal4 || c.RateLimited6NS != rlHost6 {
		t.Errorf("rate-limited counters %d/%d, want %d/%d", c.RateLimited4NS, c.RateLimited6NS, rlHost4+rlGlobal4, rlHost6)
	}
	if tr.RateLimits && rlHost4 == 0 {
		t.Errorf("no IPv4 reply was rate-limited: the test did not test rate limiting")
	}
}

// Datagrams that take the less common paths: reassembled fragments, IPv6
// extension headers, and broadcast (which never counts as NoPorts).
func TestUnusualDatagrams(t *testing.T) {
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	testutil.Veth(t, a, "va", "10.201.0.1/24,fd00:201::1/64", b, "vb", "10.201.0.2/24,fd00:201::2/64")
	tr := open(t, loader.Config{TargetNetns: b.Inode, StatsNetns: b.Inode})
	before := testutil.ReadCounters(t, b)

	// 4000 bytes over a 1500-byte MTU: fragmented, reassembled before UDP.
	d4, d6 := ap("10.201.0.2:9"), ap("[fd00:201::2]:9")
	testutil.Send(t, testutil.UDPSocket(t, a, "10.201.0.1:45001", d4, false), d4, 1, 4000)
	testutil.Send(t, testutil.UDPSocket(t, a, "[fd00:201::1]:45002", d6, false), d6, 1, 4000)

	// A hop-by-hop options header in front of UDP (PadN, 8 bytes).
	hbh := testutil.UDPSocket(t, a, "[fd00:201::1]:45003", d6, false)
	rc, err := hbh.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.IPPROTO_IPV6, unix.IPV6_HOPOPTS, string([]byte{0, 0, 1, 4, 0, 0, 0, 0}))
	})
	if serr != nil {
		t.Fatalf("IPV6_HOPOPTS: %v", serr)
	}
	testutil.Send(t, hbh, d6, 1, 5)

	// Broadcast to a closed port: dropped without touching NoPorts.
	bc := testutil.UDPSocket(t, a, "10.201.0.1:45004", ap("10.201.0.255:9"), false)
	rc, _ = bc.SyscallConn()
	rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1) })
	if serr != nil {
		t.Fatal(serr)
	}
	testutil.Send(t, bc, ap("10.201.0.255:9"), 3, 5)

	waitNoPorts(t, tr, b, before, 1, 2)
	var got []seen
	for _, e := range drain(t, tr) {
		got = append(got, seen{Src: netip.AddrPortFrom(e.Src, e.SPort), Dst: netip.AddrPortFrom(e.Dst, e.DPort), Len: e.Len})
	}
	want := []seen{
		{Src: ap("10.201.0.1:45001"), Dst: d4, Len: 4008},
		{Src: ap("[fd00:201::1]:45002"), Dst: d6, Len: 4008},
		{Src: ap("[fd00:201::1]:45003"), Dst: d6, Len: 13},
	}
	sortSeen(got)
	sortSeen(want)
	if diff := cmp.Diff(want, got, addrPorts); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

// A datagram with a bad checksum to a closed port is a checksum error, not a
// NoPorts hit. IPv6 drops it with reason NO_SOCKET all the same (the reason
// is set before the checksum checks), so the BPF side must tell them apart.
func TestBadChecksumIsNotAnEvent(t *testing.T) {
	ns := testutil.NewNS(t)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
	before := testutil.ReadCounters(t, ns)
	// Raw sockets send the UDP header as written, checksum included.
	bad := func(family int, dst unix.Sockaddr, check uint16) {
		t.Helper()
		err := ns.Do(func() error {
			fd, err := unix.Socket(family, unix.SOCK_RAW, unix.IPPROTO_UDP)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			pkt := []byte{0x9c, 0x40, 0, 9, 0, 12, byte(check >> 8), byte(check), 'a', 'b', 'c', 'd'}
			return unix.Sendto(fd, pkt, 0, dst)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	bad(unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, 0x1234)
	bad(unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, 0) // zero is invalid in IPv6
	bad(unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, 0x1234)
	d6 := ap("[::1]:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:46001", d6, false), d6, 1, 4)
	waitNoPorts(t, tr, ns, before, 0, 1)
	after := testutil.ReadCounters(t, ns)
	if d := snmp.Sub(after, before).Get("Udp6InCsumErrors"); d != 2 {
		t.Errorf("Udp6InCsumErrors delta %d, want 2", d)
	}
	if d := snmp.Sub(after, before).Get("Udp.InCsumErrors"); d != 1 {
		t.Errorf("Udp InCsumErrors delta %d, want 1", d)
	}
	evs := drain(t, tr)
	if len(evs) != 1 || evs[0].SPort != 46001 {
		t.Fatalf("got %d events (%v), want only the valid datagram from port 46001", len(evs), evs)
	}
	if c, _ := tr.Counters(); c.NoPort4NS != 0 || c.NoPort6NS != 1 {
		t.Fatalf("counters %+v, want 0 IPv4 and 1 IPv6", c)
	}
}

// A firewall's REJECT answers with the same ICMP port-unreachable as a closed
// port, through the same icmp_send, but the datagram never reached UDP and is
// not a NoPorts hit: no backend may report it.
func TestFirewallRejectIsNotAnEvent(t *testing.T) {
	ns := testutil.NewNS(t)
	testutil.RejectUDP(t, ns, 7777)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
	before := testutil.ReadCounters(t, ns)
	r4, r6, c4, c6 := ap("127.0.0.1:7777"), ap("[::1]:7777"), ap("127.0.0.1:9"), ap("[::1]:9")
	s4 := testutil.UDPSocket(t, ns, "127.0.0.1:47001", c4, false)
	s6 := testutil.UDPSocket(t, ns, "[::1]:47002", c6, false)
	for i := 0; i < 5; i++ { // interleaved, so a stale mark would be noticed
		testutil.Send(t, s4, r4, 1, 3)
		testutil.Send(t, s6, r6, 1, 3)
		if i < 2 {
			testutil.Send(t, s4, c4, 1, 3)
		}
		if i < 1 {
			testutil.Send(t, s6, c6, 1, 3)
		}
	}
	waitNoPorts(t, tr, ns, before, 2, 1)
	evs := drain(t, tr)
	after := testutil.ReadCounters(t, ns)
	if d := snmp.Sub(after, before).Get("IcmpMsg.OutType3"); d != 7 {
		t.Errorf("OutType3 delta %d, want 7 (5 from the firewall, 2 from the closed port)", d)
	}
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3 (only the closed port)", len(evs))
	}
	for _, e := range evs {
		if e.DPort != 9 || e.ICMP != events.ICMPSent {
			t.Errorf("event to port %d with icmp %s, want port 9 and sent", e.DPort, e.ICMP)
		}
	}
	if c, _ := tr.Counters(); c.ICMP4SentNS != 2 || c.ICMP6SentNS != 1 {
		t.Errorf("tracer counted %d/%d replies, want 2/1", c.ICMP4SentNS, c.ICMP6SentNS)
	}
}

// The sender is the process whose socket sent the datagram (recorded when it
// left that socket), whatever task ran the receive path; a datagram that
// arrived from outside (here through a tun device) has sender "remote".
func TestSender(t *testing.T) {
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	testutil.Veth(t, a, "va", "10.203.0.1/24,fd00:203::1/64", b, "vb", "10.203.0.2/24,fd00:203::2/64,10.203.0.3/24,fd00:203::3/64")
	tun := testutil.NewTUN(t, b, "tun0", "10.204.0.1/24")
	d4, d6, lo := ap("10.203.0.2:9"), ap("[fd00:203::2]:9"), ap("127.0.0.1:9")
	// Resolve the neighbours first: a datagram that waits for ARP or ND
	// leaves later, from softirq, and its task is then unknown (pid 0).
	warm := testutil.ReadCounters(t, b)
	testutil.Send(t, testutil.UDPSocket(t, a, "10.203.0.1:0", d4, false), d4, 1, 1)
	testutil.Send(t, testutil.UDPSocket(t, a, "[fd00:203::1]:0", d6, false), d6, 1, 1)
	testutil.WaitDelta(t, b, warm, "Udp.NoPorts", 1)
	testutil.WaitDelta(t, b, warm, "Udp6NoPorts", 1)
	tr := open(t, loader.Config{TargetNetns: b.Inode, StatsNetns: b.Inode})
	before := testutil.ReadCounters(t, b)

	testutil.Send(t, testutil.UDPSocket(t, a, "10.203.0.1:48001", d4, true), d4, 1, 1)
	testutil.Send(t, testutil.UDPSocket(t, a, "[fd00:203::1]:48002", d6, false), d6, 1, 1)
	testutil.Send(t, testutil.UDPSocket(t, b, "127.0.0.1:48003", lo, false), lo, 1, 1)
	tun.InjectUDP4(t, ap("10.204.0.2:48004"), ap("10.204.0.1:9"), 5)
	// Fresh neighbours: these wait for ARP/ND and may leave from softirq.
	f4, f6 := ap("10.203.0.3:9"), ap("[fd00:203::3]:9")
	testutil.Send(t, testutil.UDPSocket(t, a, "10.203.0.1:48005", f4, false), f4, 1, 1)
	testutil.Send(t, testutil.UDPSocket(t, a, "[fd00:203::1]:48006", f6, false), f6, 1, 1)
	waitNoPorts(t, tr, b, before, 4, 2)
	evs := drain(t, tr)

	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	self := strings.TrimSpace(string(comm))
	got := map[uint16]events.Event{}
	for _, e := range evs {
		if e.Netns == b.Inode {
			got[e.SPort] = e
		}
	}
	for port, ns := range map[uint16]*testutil.NS{48001: a, 48002: a, 48003: b} {
		e, ok := got[port]
		if !ok {
			t.Errorf("no event from port %d", port)
			continue
		}
		if e.Sender != events.SenderLocal || e.SenderPID != uint32(os.Getpid()) || e.SenderCommString() != self ||
			e.SenderUID != uint32(os.Getuid()) || e.SenderNetns != ns.Inode || e.SenderTID == 0 || e.SenderCgroup == 0 {
			t.Errorf("port %d: sender %s pid %d tid %d uid %d comm %q netns %d cgroup %d; want local, pid %d, comm %q, netns %d",
				port, e.Sender, e.SenderPID, e.SenderTID, e.SenderUID, e.SenderCommString(), e.SenderNetns, e.SenderCgroup,
				os.Getpid(), self, ns.Inode)
		}
	}
	for _, port := range []uint16{48005, 48006} {
		e, ok := got[port]
		if !ok || e.Sender != events.SenderLocal || e.SenderNetns != a.Inode ||
			(e.SenderPID != 0 && e.SenderPID != uint32(os.Getpid())) {
			t.Errorf("port %d (after neighbour resolution): %s pid %d netns %d; want local from netns %d, pid %d or unknown (0)",
				port, e.Sender, e.SenderPID, e.SenderNetns, a.Inode, os.Getpid())
		}
	}
	if e, ok := got[48004]; !ok || e.Sender != events.SenderRemote || e.SenderPID != 0 || e.IfNameString() != "tun0" {
		t.Errorf("injected datagram: %+v, want sender remote on tun0", e)
	}
}

// --pid and --comm select the datagrams of one of two concurrent clients.
func TestSenderFilters(t *testing.T) {
	dst := ap("127.0.0.1:9")
	for _, tc := range []struct {
		name string
		cfg  func(one, two *testutil.Client) loader.Config
		want int // which client's datagrams are kept
	}{
		{"pid", func(one, _ *testutil.Client) loader.Config { return loader.Config{PIDs: []uint32{uint32(one.PID)}} }, 1},
		{"comm", func(_, _ *testutil.Client) loader.Config { return loader.Config{Comms: []string{"udpclient-two"}} }, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testutil.NewNS(t)
			one := testutil.StartClient(t, ns, "udpclient-one", dst, 3)
			two := testutil.StartClient(t, ns, "udpclient-two", dst, 4)
			cfg := tc.cfg(one, two)
			cfg.TargetNetns, cfg.StatsNetns = ns.Inode, ns.Inode
			tr := open(t, cfg)
			before := testutil.ReadCounters(t, ns)
			one.Go(t)
			two.Go(t)
			waitNoPorts(t, tr, ns, before, 7, 0)
			keep, n := one, 3
			if tc.want == 2 {
				keep, n = two, 4
			}
			evs := drain(t, tr)
			if len(evs) != n {
				t.Fatalf("%d events, want the %d of client %d", len(evs), n, tc.want)
			}
			for _, e := range evs {
				if e.SenderPID != uint32(keep.PID) {
					t.Errorf("event from pid %d (%s), want %d", e.SenderPID, e.SenderCommString(), keep.PID)
				}
			}
		})
	}
}

// A server answering many peers from one socket is one sender record, not
// one per peer: each of its datagrams still names it, and the record count
// stays 1 (the cost model of net_dev_queue: once per socket).
func TestSenderManyPeers(t *testing.T) {
	ns := testutil.NewNS(t)
	const peers = 300
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode,
		DPorts: []filter.PortRange{{Lo: 20000, Hi: 20000 + peers - 1}}})
	before := testutil.ReadCounters(t, ns)
	c := testutil.UDPSocket(t, ns, "127.0.0.1:0", ap("127.0.0.1:20000"), false)
	for i := range peers {
		if _, err := c.WriteToUDPAddrPort([]byte{byte(i)}, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i))); err != nil {
			t.Fatal(err)
		}
	}
	waitNoPorts(t, tr, ns, before, peers, 0)
	n, err := loader.SenderRecords(tr)
	if err != nil {
		t.Fatal(err)
	}
	evs := drain(t, tr)
	if len(evs) != peers {
		t.Fatalf("%d events, want %d", len(evs), peers)
	}
	sport := c.LocalAddr().(*net.UDPAddr).Port
	ports := map[uint16]bool{}
	for _, e := range evs {
		ports[e.DPort] = true
		if e.Sender != events.SenderLocal || e.SenderPID != uint32(os.Getpid()) || e.SockIno == 0 ||
			e.SockIno != evs[0].SockIno || int(e.SPort) != sport || e.OriginNS == 0 {
			t.Fatalf("event to port %d: sender %s pid %d sock %d (first %d) sport %d origin %d; want local pid %d, one socket, sport %d",
				e.DPort, e.Sender, e.SenderPID, e.SockIno, evs[0].SockIno, e.SPort, e.OriginNS, os.Getpid(), sport)
		}
	}
	if len(ports) != peers {
		t.Errorf("%d distinct destination ports, want %d", len(ports), peers)
	}
	if n != 1 {
		t.Errorf("%d sender records after %d peers from one socket, want 1", n, peers)
	}
}

// --lean attaches only the drop's and the reply's hooks: every datagram is
// still an event and counted, its sender is untraced, and no hook that runs
// on healthy traffic (net_dev_queue, consume_skb, the socket calls) is there.
func TestLean(t *testing.T) {
	ns := testutil.NewNS(t)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode, Lean: true})
	for _, h := range tr.Hooks {
		for _, healthy := range []string{"net_dev_queue", "consume_skb", "sock_", "error_report", "udp4_err", "icmpv6_notify"} {
			if strings.Contains(h, healthy) {
				t.Errorf("hook %s attached with Lean", h)
			}
		}
	}
	if tr.Delivery || tr.SyscallHook != "" {
		t.Errorf("Lean: delivery %v, syscall hook %q; want neither", tr.Delivery, tr.SyscallHook)
	}
	before := testutil.ReadCounters(t, ns)
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d4, true), d4, 3, 1)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", d6, false), d6, 2, 1)
	waitNoPorts(t, tr, ns, before, 3, 2)
	all := drainAll(t, tr)
	if len(all) != 5 {
		t.Fatalf("%d records, want the 5 no-port ones only", len(all))
	}
	n4 := 0
	for _, e := range all {
		if e.Kind != events.KindNoPort || e.Sender != events.SenderUntraced || e.SenderPID != 0 || e.DPort != 9 {
			t.Errorf("record %s to port %d, sender %s pid %d; want noport to 9, untraced", e.Kind, e.DPort, e.Sender, e.SenderPID)
		}
		if e.Family == events.FamilyIPv4 {
			n4++
			if tr.ICMP4 && e.ICMP != events.ICMPSent {
				t.Errorf("IPv4 verdict %s, want sent", e.ICMP)
			}
		}
	}
	if n4 != 3 {
		t.Errorf("%d IPv4 records, want 3", n4)
	}
}
