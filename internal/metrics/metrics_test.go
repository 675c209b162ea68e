package metrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/udptrace/udptrace/internal/events"
)

const (
	v4 = events.FamilyIPv4
	v6 = events.FamilyIPv6
)

func TestAddExactValues(t *testing.T) {
	m := New(10)
	m.Add(v4, 9, 4026531833, events.ICMPSent, 37)
	m.Add(v4, 9, 4026531833, events.ICMPRateLimitedGlobal, 2)
	m.Add(v4, 9, 4026531833, events.ICMPRateLimitedHost, 3)
	m.Add(v6, 53, 4026531833, events.ICMPSent, 11)
	m.Add(v6, 53, 4026532000, events.ICMPUnknown, 1)
	m.Add(v6, 53, 4026532000, events.ICMPNotSent, 4)
	m.Add(v6, 53, 4026532000, events.ICMPVerdict(99), 1) // not a verdict: "unknown"
	m.Add(v4, 7, 1, events.ICMPSent, 0)                  // nothing: no series either
	want := `
# HELP udptrace_noport_datagrams_total UDP datagrams dropped because no socket listened on their destination port (Udp NoPorts, Udp6NoPorts) that udptrace reported, by family, destination port ("other" beyond the port bound) and network namespace inode.
# TYPE udptrace_noport_datagrams_total counter
udptrace_noport_datagrams_total{family="ipv4",netns="4026531833",port="9"} 42
udptrace_noport_datagrams_total{family="ipv6",netns="4026531833",port="53"} 11
udptrace_noport_datagrams_total{family="ipv6",netns="4026532000",port="53"} 6
# HELP udptrace_icmp_replies_total The ICMP port-unreachable verdict for each of those datagrams: sent, rate-limited, not-sent or unknown.
# TYPE udptrace_icmp_replies_total counter
udptrace_icmp_replies_total{family="ipv4",netns="4026531833",port="9",verdict="rate-limited"} 5
udptrace_icmp_replies_total{family="ipv4",netns="4026531833",port="9",verdict="sent"} 37
udptrace_icmp_replies_total{family="ipv6",netns="4026531833",port="53",verdict="sent"} 11
udptrace_icmp_replies_total{family="ipv6",netns="4026532000",port="53",verdict="not-sent"} 4
udptrace_icmp_replies_total{family="ipv6",netns="4026532000",port="53",verdict="unknown"} 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"udptrace_noport_datagrams_total", "udptrace_icmp_replies_total"); err != nil {
		t.Error(err)
	}
}

func TestObserve(t *testing.T) {
	m := New(DefaultMaxPorts)
	for _, e := range []events.Event{
		{Kind: events.KindNoPort, Family: v4, DPort: 9, Netns: 5, ICMP: events.ICMPSent},
		{Kind: events.KindNoPort, Family: v4, DPort: 9, Netns: 5, ICMP: events.ICMPSent},
		{Kind: events.KindDelivery, Family: v4, DPort: 9, Outcome: events.OutcomeRefused},
		{Kind: events.KindSyscall, Family: v4, DPort: 9, Outcome: events.OutcomeRefused},
		{Kind: events.KindNoPort, Family: v6, DPort: 53, Netns: 5, ICMP: events.ICMPRateLimitedHost},
		{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeQueued},
		{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeIgnored},
		{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeIgnored},
		{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeNoSocket},
		{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeUnknown},
		{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeNone}, // malformed: "unknown"
		{Kind: events.KindSyscall, Family: v6},
		{Kind: events.KindSyscall, Family: v6},
		{Kind: events.Kind(9), Family: v6}, // not a kind: ignored
	} {
		m.Observe(&e)
	}
	want := `
# HELP udptrace_icmp_deliveries_total Port-unreachables that came back to the sending socket on this host, by what the kernel did with them: econnrefused, errqueue, ignored, no-socket or unknown.
# TYPE udptrace_icmp_deliveries_total counter
udptrace_icmp_deliveries_total{family="ipv4",outcome="econnrefused"} 1
udptrace_icmp_deliveries_total{family="ipv4",outcome="errqueue"} 0
udptrace_icmp_deliveries_total{family="ipv4",outcome="ignored"} 0
udptrace_icmp_deliveries_total{family="ipv4",outcome="no-socket"} 0
udptrace_icmp_deliveries_total{family="ipv4",outcome="unknown"} 0
udptrace_icmp_deliveries_total{family="ipv6",outcome="econnrefused"} 0
udptrace_icmp_deliveries_total{family="ipv6",outcome="errqueue"} 1
udptrace_icmp_deliveries_total{family="ipv6",outcome="ignored"} 2
udptrace_icmp_deliveries_total{family="ipv6",outcome="no-socket"} 1
udptrace_icmp_deliveries_total{family="ipv6",outcome="unknown"} 2
# HELP udptrace_refused_calls_total Socket calls that returned ECONNREFUSED to the process after such a port-unreachable.
# TYPE udptrace_refused_calls_total counter
udptrace_refused_calls_total{family="ipv4"} 1
udptrace_refused_calls_total{family="ipv6"} 2
# HELP udptrace_noport_datagrams_total UDP datagrams dropped because no socket listened on their destination port (Udp NoPorts, Udp6NoPorts) that udptrace reported, by family, destination port ("other" beyond the port bound) and network namespace inode.
# TYPE udptrace_noport_datagrams_total counter
udptrace_noport_datagrams_total{family="ipv4",netns="5",port="9"} 2
udptrace_noport_datagrams_total{family="ipv6",netns="5",port="53"} 1
# HELP udptrace_icmp_replies_total The ICMP port-unreachable verdict for each of those datagrams: sent, rate-limited, not-sent or unknown.
# TYPE udptrace_icmp_replies_total counter
udptrace_icmp_replies_total{family="ipv4",netns="5",port="9",verdict="sent"} 2
udptrace_icmp_replies_total{family="ipv6",netns="5",port="53",verdict="rate-limited"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"udptrace_icmp_deliveries_total", "udptrace_refused_calls_total",
		"udptrace_noport_datagrams_total", "udptrace_icmp_replies_total"); err != nil {
		t.Error(err)
	}
}

// The first maxPorts ports get their own label, for good; every later port
// is "other", for good, whatever the family or namespace: the number of
// series is bounded and none is ever reset.
func TestPortBound(t *testing.T) {
	m := New(3)
	m.Add(v4, 10, 1, events.ICMPSent, 1)
	m.Add(v6, 11, 2, events.ICMPSent, 1)
	m.Add(v4, 12, 1, events.ICMPSent, 1)
	for p := uint16(13); p < 1000; p++ {
		m.Add(v4, p, 1, events.ICMPSent, 1)
		m.Add(v6, p, 2, events.ICMPSent, 2)
	}
	m.Add(v4, 10, 1, events.ICMPSent, 5) // still its own
	m.Add(v4, 11, 1, events.ICMPSent, 1) // its own in another family and netns too
	want := `
# HELP udptrace_noport_datagrams_total UDP datagrams dropped because no socket listened on their destination port (Udp NoPorts, Udp6NoPorts) that udptrace reported, by family, destination port ("other" beyond the port bound) and network namespace inode.
# TYPE udptrace_noport_datagrams_total counter
udptrace_noport_datagrams_total{family="ipv4",netns="1",port="10"} 6
udptrace_noport_datagrams_total{family="ipv4",netns="1",port="11"} 1
udptrace_noport_datagrams_total{family="ipv4",netns="1",port="12"} 1
udptrace_noport_datagrams_total{family="ipv4",netns="1",port="other"} 987
udptrace_noport_datagrams_total{family="ipv6",netns="2",port="11"} 1
udptrace_noport_datagrams_total{family="ipv6",netns="2",port="other"} 1974
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "udptrace_noport_datagrams_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.icmp); n != 6 {
		t.Errorf("%d icmp series, want 6", n)
	}

	// No bound: everything is "other".
	m = New(0)
	m.Add(v4, 10, 1, events.ICMPSent, 1)
	if got := testutil.ToFloat64(m.noport.WithLabelValues("ipv4", OtherPort, "1")); got != 1 {
		t.Errorf("New(0): port 10 counted %v under other, want 1", got)
	}
}

// Every counter only grows: scraping after each change never shows a lower
// value for a series, nor loses one.
func TestMonotonic(t *testing.T) {
	m := New(2)
	lost := []uint64{0, 3, 3, 0, 7} // a source that fails (0) in the middle
	var i int
	m.SetSources(func() uint64 { return lost[i] }, func() uint64 { return uint64(i) })
	prev := map[string]float64{}
	for i = range lost {
		m.Add(v4, uint16(i%4), 1, events.ICMPVerdict(i%5), uint64(i))
		m.Observe(&events.Event{Kind: events.KindSyscall, Family: v4})
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		cur := map[string]float64{}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "udptrace_") {
				continue
			}
			for _, mt := range mf.GetMetric() {
				cur[mf.GetName()+fmt.Sprint(mt.GetLabel())] = mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			}
		}
		for k, v := range prev {
			if c, ok := cur[k]; !ok || c < v {
				t.Errorf("step %d: %s went from %v to %v (present %v)", i, k, v, c, ok)
			}
		}
		prev = cur
	}
	want := `
# HELP udptrace_lost_events_total Records the BPF programs could not queue because the ring buffer was full (raise --ring-size).
# TYPE udptrace_lost_events_total counter
udptrace_lost_events_total 7
# HELP udptrace_aggregation_overflow_total Datagrams udptrace top could not count per key because its aggregation map was full.
# TYPE udptrace_aggregation_overflow_total counter
udptrace_aggregation_overflow_total 4
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"udptrace_lost_events_total", "udptrace_aggregation_overflow_total"); err != nil {
		t.Error(err)
	}
}

func TestSources(t *testing.T) {
	m := New(1)
	names := []string{"udptrace_lost_events_total", "udptrace_aggregation_overflow_total"}
	if n, err := testutil.GatherAndCount(m.Registry(), names...); err != nil || n != 0 {
		t.Errorf("without sources: %d series (%v), want none", n, err)
	}
	m.SetSources(func() uint64 { return 5 }, nil)
	want := `
# HELP udptrace_lost_events_total Records the BPF programs could not queue because the ring buffer was full (raise --ring-size).
# TYPE udptrace_lost_events_total counter
udptrace_lost_events_total 5
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	m.SetBuildInfo("v1.2.3", "tracepoint")
	m.SetBuildInfo("v1.2.3", "fentry")
	want = `
# HELP udptrace_build_info 1, labelled with udptrace's version and the BPF backend in use.
# TYPE udptrace_build_info gauge
udptrace_build_info{backend="fentry",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "udptrace_build_info"); err != nil {
		t.Error(err)
	}
}

// The registry passes promlint (names, units, help) and holds the process
// and Go collectors.
func TestRegistry(t *testing.T) {
	m := New(DefaultMaxPorts)
	m.Add(v4, 9, 1, events.ICMPSent, 1)
	m.SetSources(func() uint64 { return 0 }, func() uint64 { return 0 })
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "udptrace_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	for _, name := range []string{"go_goroutines", "go_build_info", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total"} {
		if n, err := testutil.GatherAndCount(m.Registry(), name); err != nil || n == 0 {
			if name == "process_cpu_seconds_total" && n == 0 && err == nil {
				continue // not on every platform
			}
			t.Errorf("%s: %d series (%v)", name, n, err)
		}
	}
}

// Add and Observe allocate nothing once their labels exist.
func TestNoAllocs(t *testing.T) {
	m := New(DefaultMaxPorts)
	noport := events.Event{Kind: events.KindNoPort, Family: v4, DPort: 9, Netns: 7, ICMP: events.ICMPSent}
	delivery := events.Event{Kind: events.KindDelivery, Family: v6, Outcome: events.OutcomeIgnored}
	call := events.Event{Kind: events.KindSyscall, Family: v4}
	m.Observe(&noport)
	if n := testing.AllocsPerRun(1000, func() {
		m.Observe(&noport)
		m.Observe(&delivery)
		m.Observe(&call)
		m.Add(v4, 9, 7, events.ICMPSent, 3)
	}); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	m := New(DefaultMaxPorts)
	e := events.Event{Kind: events.KindNoPort, Family: v4, DPort: 9, Netns: 7, ICMP: events.ICMPSent}
	b.ReportAllocs()
	for b.Loop() {
		m.Observe(&e)
	}
}

func TestServe(t *testing.T) {
	m := New(DefaultMaxPorts)
	m.Add(v4, 9, 1, events.ICMPSent, 2)
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := Start(ctx, "127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, "http://"+addr.String()+Path)
	if !strings.Contains(body, `udptrace_noport_datagrams_total{family="ipv4",netns="1",port="9"} 2`+"\n") {
		t.Errorf("scrape lacks the datagrams:\n%s", body)
	}
	if body := get(t, "http://"+addr.String()+"/"); !strings.Contains(body, "/metrics") {
		t.Errorf("/ says %q", body)
	}

	// A second server on the same address fails at once.
	errc := make(chan error, 1)
	go func() { errc <- Serve(context.Background(), addr.String(), m) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "cannot listen on "+addr.String()) || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("Serve on a busy address: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve on a busy address did not return")
	}

	// Cancelled, the server lets the address go.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr.String())
		if err == nil {
			ln.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("address still busy after cancel: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Serve returns nil once its context is done.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { errc <- Serve(ctx, "127.0.0.1:0", m) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(b)
}
