package main

// Tests of --metrics: the address check, the exit codes of a bad address,
// a direct scrape whose values must equal what udptrace printed, and a real
// Prometheus scraping udptrace whose query results must equal the kernel's
// counters.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/udptrace/udptrace/internal/snmp"
	"github.com/udptrace/udptrace/internal/testutil"
)

func TestMetricsAddr(t *testing.T) {
	for _, addr := range []string{":9477", "127.0.0.1:9477", "0.0.0.0:0", "[::1]:9477", "[::]:65535", "localhost:9477", "node-1.example:80", "[fe80::1%eth0]:9477"} {
		if err := checkMetricsAddr(addr); err != nil {
			t.Errorf("%q: %v, want valid", addr, err)
		}
	}
	for _, addr := range []string{"", "9477", "127.0.0.1", ":", ":x", ":70000", ":-1", "::1:9477", "a b:9", "[::1]9", "host/x:9", "http://127.0.0.1:9477"} {
		err := checkMetricsAddr(addr)
		if _, ok := err.(usageError); !ok || !strings.Contains(err.Error(), "--metrics") {
			t.Errorf("%q: %v, want a usage error naming --metrics", addr, err)
		}
	}
}

// --metrics reaches the configuration, checked.
func TestMetricsConfig(t *testing.T) {
	o := options{ringSize: "8M", backend: "auto", metrics: "127.0.0.1:9477"}
	if c, err := o.config(); err != nil || c.metrics != "127.0.0.1:9477" {
		t.Errorf("config: metrics %q, %v", c.metrics, err)
	}
	o.metrics = "9477"
	if _, err := o.config(); err == nil || !strings.Contains(err.Error(), "--metrics") {
		t.Errorf("config with --metrics 9477: %v, want a usage error", err)
	}
	o.metrics = ""
	if c, err := o.config(); err != nil || c.metrics != "" {
		t.Errorf("config without --metrics: %q, %v", c.metrics, err)
	}
}

// An address that does not parse is a usage error (exit code 2); one that
// cannot be listened on is a runtime error (exit code 1), found before any
// BPF is loaded. Both say so in one line.
func TestE2EMetricsBadAddr(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		addr string
		code int
		want string
	}{
		{"9477", 2, `--metrics "9477": want HOST:PORT`},
		{":http", 2, `port "http" is not a number`},
		{"127.0.0.1:99999", 2, `port "99999" is not a number`},
		{busy.Addr().String(), 1, "--metrics: cannot listen on " + busy.Addr().String() + ": bind: address already in use"},
		{"192.0.2.1:9477", 1, "--metrics: cannot listen on 192.0.2.1:9477: bind: cannot assign requested address"},
	} {
		cmd := exec.Command(binary, append(backendArgs(), "--metrics", tc.addr, "-d", "1s")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != tc.code {
			t.Errorf("--metrics %s: %v, want exit code %d; stderr:\n%s", tc.addr, err, tc.code, stderr.String())
			continue
		}
		msg := stderr.String()
		if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "udptrace: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("--metrics %s: stderr %q, want one line with %q", tc.addr, msg, tc.want)
		}
	}
}

// nsHTTP is an HTTP client whose connections are made inside ns, where
// udptrace and Prometheus listen.
func nsHTTP(ns *testutil.NS) *http.Client {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

// scrapeMetrics reads udptrace's /metrics (text format): series -> value,
// the series as written, e.g. `udptrace_refused_calls_total{family="ipv4"}`.
func scrapeMetrics(c *http.Client, addr string) (map[string]float64, error) {
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	m := map[string]float64{}
	for _, l := range strings.Split(string(body), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			return nil, fmt.Errorf("bad line %q", l)
		}
		m[l[:i]] = v
	}
	return m, nil
}

// The four labelled families that count records.
var recordMetrics = []string{"udptrace_noport_datagrams_total", "udptrace_icmp_replies_total",
	"udptrace_icmp_deliveries_total", "udptrace_refused_calls_total"}

// recordSeries keeps the series of recordMetrics, without the zeros (the
// delivery and call series exist from the start).
func recordSeries(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		for _, name := range recordMetrics {
			if strings.HasPrefix(k, name+"{") && v != 0 {
				out[k] = v
			}
		}
	}
	return out
}

// expectedSeries is what the records udptrace printed (JSON lines) must
// have counted.
func expectedSeries(t *testing.T, lines []string) map[string]float64 {
	t.Helper()
	want := map[string]float64{}
	for _, l := range lines {
		var r struct {
			Type, Kind, Family, ICMP, Delivery string
			Dport                              uint16
			Netns                              uint32
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if r.Type != "event" {
			continue
		}
		switch r.Kind {
		case "noport":
			want[fmt.Sprintf(`udptrace_noport_datagrams_total{family="%s",netns="%d",port="%d"}`, r.Family, r.Netns, r.Dport)]++
			want[fmt.Sprintf(`udptrace_icmp_replies_total{family="%s",netns="%d",port="%d",verdict="%s"}`, r.Family, r.Netns, r.Dport, r.ICMP)]++
		case "delivery":
			want[fmt.Sprintf(`udptrace_icmp_deliveries_total{family="%s",outcome="%s"}`, r.Family, r.Delivery)]++
		case "syscall":
			want[fmt.Sprintf(`udptrace_refused_calls_total{family="%s"}`, r.Family)]++
		}
	}
	return want
}

func diffSeries(got, want map[string]float64) string {
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if got[k] != want[k] {
			fmt.Fprintf(&b, "  %s: got %v, want %v\n", k, got[k], want[k])
		}
	}
	return b.String()
}

// TestE2EMetricsScrape: udptrace's /metrics, scraped while it traces, counts
// exactly the records it printed: datagrams per port and namespace with
// their verdicts, deliveries per outcome, refused calls; and the datagrams
// equal the kernel's NoPorts deltas. It needs no Prometheus, so it also runs
// in the vmtest guests, on every backend.
func TestE2EMetricsScrape(t *testing.T) {
	ns := testutil.NewNS(t)
	const addr = "127.0.0.1:9477" // free: the namespace is the test's own
	client := testutil.StartSeedClient(t, ns, "seed-client", ap("127.0.0.1:9"))
	p := start(t, ns, "--metrics", addr, "--netns", ns.Path, "--json")
	hc := nsHTTP(ns)
	before := testutil.ReadCounters(t, ns)
	client.Go(t) // connected: the port-unreachable sets ECONNREFUSED, read() returns it
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:53")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d4, false), d4, 3, 8)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", d6, false), d6, 2, 8)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 4)
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", 2)
	delta := snmp.Sub(testutil.ReadCounters(t, ns), before)

	// What the scrape must show once every record is in: the datagrams,
	// and, where this kernel and backend trace the chain, the seed client's
	// refused delivery and read(), and the other replies ignored by their
	// unconnected sockets.
	inode := ns.Inode
	datagrams := map[string]float64{
		fmt.Sprintf(`udptrace_noport_datagrams_total{family="ipv4",netns="%d",port="9"}`, inode):  4,
		fmt.Sprintf(`udptrace_noport_datagrams_total{family="ipv6",netns="%d",port="53"}`, inode): 2,
	}
	chain := map[string]float64{
		`udptrace_icmp_deliveries_total{family="ipv4",outcome="econnrefused"}`: 1,
		`udptrace_icmp_deliveries_total{family="ipv4",outcome="ignored"}`:      3,
		`udptrace_icmp_deliveries_total{family="ipv6",outcome="ignored"}`:      2,
		`udptrace_refused_calls_total{family="ipv4"}`:                          1,
	}
	shows := func(got, want map[string]float64) bool {
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
	// Whether this kernel and backend trace the chain, stderr tells, but
	// only once udptrace has exited: until the chain shows, or for 3 s
	// after the datagrams did.
	var (
		got            map[string]float64
		err            error
		datagramsShown time.Time
	)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err = scrapeMetrics(hc, addr)
		if err == nil && shows(got, datagrams) {
			if shows(got, chain) {
				break
			}
			if datagramsShown.IsZero() {
				datagramsShown = time.Now()
			} else if time.Since(datagramsShown) > 3*time.Second {
				break
			}
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			p.wait(t)
			t.Fatalf("scrape (%v) never showed\n%v\nlast scrape:\n%v\nstderr:\n%s", err, datagrams, recordSeries(got), p.stderr.String())
		}
	}
	lines := p.stopOK(t)
	if !strings.Contains(p.stderr.String(), "are not traced here") && !shows(got, chain) {
		t.Errorf("the chain is traced here, but the scrape lacks\n%v\nit has\n%v", chain, recordSeries(got))
	}

	if d := diffSeries(recordSeries(got), expectedSeries(t, lines)); d != "" {
		t.Errorf("the metrics differ from the records printed:\n%s", d)
	}
	for fam, kernel := range map[string]uint64{"ipv4": delta.Get("IcmpMsg.OutType3"), "ipv6": delta.Get("Icmp6OutDestUnreachs")} {
		port := map[string]int{"ipv4": 9, "ipv6": 53}[fam]
		k := fmt.Sprintf(`udptrace_icmp_replies_total{family="%s",netns="%d",port="%d",verdict="sent"}`, fam, inode, port)
		if got[k] != float64(kernel) {
			t.Errorf("%s = %v, want the kernel's delta %d", k, got[k], kernel)
		}
	}
	if v, ok := got["udptrace_lost_events_total"]; !ok || v != 0 {
		t.Errorf("udptrace_lost_events_total = %v (present %v), want 0", v, ok)
	}
	if _, ok := got["udptrace_aggregation_overflow_total"]; ok {
		t.Error("udptrace_aggregation_overflow_total exported by the live tracer; it is top's")
	}
	info := false
	for k, v := range got {
		if strings.HasPrefix(k, "udptrace_build_info{") && strings.Contains(k, `backend="`) && v == 1 {
			info = true
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if !info {
		t.Error("no udptrace_build_info{backend=...} 1")
	}
	if !strings.Contains(p.stderr.String(), "udptrace: serving Prometheus metrics at /metrics on "+addr+"\n") {
		t.Errorf("stderr does not say where the metrics are:\n%s", p.stderr.String())
	}
}

// requirePrometheus returns the prometheus binary; in the vmtest guest,
// which has none, it skips the test.
func requirePrometheus(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("prometheus")
	if err == nil {
		return path
	}
	if os.Getenv("UDPTRACE_IN_VM") == "1" {
		t.Skip("no prometheus in the vmtest guest (UDPTRACE_IN_VM=1): this test runs on the host; TestE2EMetricsScrape covers --metrics here")
	}
	t.Fatalf("prometheus is not installed (%v): run `make deps` (scripts/deps.sh installs it)", err)
	return ""
}

// promQuery runs an instant PromQL query and returns its value, or false
// when the result is empty.
func promQuery(c *http.Client, addr, query string) (float64, bool, error) {
	resp, err := c.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, false, err
	}
	if r.Status != "success" {
		return 0, false, fmt.Errorf("query %s: %s %s", query, r.Status, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return 0, false, nil
	}
	if len(r.Data.Result) != 1 || r.Data.ResultType != "vector" {
		return 0, false, fmt.Errorf("query %s: %d %s results, want one sample", query, len(r.Data.Result), r.Data.ResultType)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, true, err
}

// TestE2EMetricsPrometheus: a real Prometheus scrapes udptrace --metrics
// every second; its query API must answer the numbers of datagrams sent,
// per family and port, and the replies the kernel counted as sent.
// Prometheus and udptrace both run, and listen, in the test's namespace.
func TestE2EMetricsPrometheus(t *testing.T) {
	ns := testutil.NewNS(t)
	prom := requirePrometheus(t)
	const (
		target  = "127.0.0.1:9477" // udptrace
		promWeb = "127.0.0.1:9090" // both free: the namespace is the test's own
	)
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: udptrace
    static_configs:
      - targets: ['%s']
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	p := start(t, ns, "--metrics", target, "--netns", ns.Path, "--json")

	promLog, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer promLog.Close()
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promWeb, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = promLog, promLog
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // before dir is removed
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	hc := nsHTTP(ns)

	// The datagrams, once Prometheus scrapes udptrace.
	wait := func(what string, cond func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ok, state := cond()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(promLog.Name())
				p.cmd.Process.Kill()
				p.wait(t)
				t.Fatalf("after 30s, %s: %s\nprometheus:\n%s\nudptrace:\n%s", what, state, log, p.stderr.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	wait("Prometheus does not scrape udptrace", func() (bool, string) {
		v, ok, err := promQuery(hc, promWeb, `up{job="udptrace"}`)
		return err == nil && ok && v == 1, fmt.Sprintf("up = %v (%v, %v)", v, ok, err)
	})

	before := testutil.ReadCounters(t, ns)
	const n4, n6 = 37, 11
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:53")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d4, false), d4, n4, 10)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", d6, false), d6, n6, 10)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", n4)
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", n6)
	delta := snmp.Sub(testutil.ReadCounters(t, ns), before)

	want := map[string]float64{
		`sum(udptrace_noport_datagrams_total{family="ipv4"})`:                                        n4,
		`sum(udptrace_noport_datagrams_total{family="ipv6"})`:                                        n6,
		fmt.Sprintf(`udptrace_noport_datagrams_total{family="ipv4",port="9",netns="%d"}`, ns.Inode):  n4,
		fmt.Sprintf(`udptrace_noport_datagrams_total{family="ipv6",port="53",netns="%d"}`, ns.Inode): n6,
		`sum(udptrace_icmp_replies_total{family="ipv4"})`:                                            n4,
		`sum(udptrace_icmp_replies_total{family="ipv6"})`:                                            n6,
		`sum(udptrace_icmp_replies_total{family="ipv4",verdict="sent"})`:                             float64(delta.Get("IcmpMsg.OutType3")),
		`sum(udptrace_icmp_replies_total{family="ipv6",verdict="sent"})`:                             float64(delta.Get("Icmp6OutDestUnreachs")),
		`udptrace_lost_events_total`:                                                                 0,
	}
	wait("Prometheus's answers are not the datagrams sent", func() (bool, string) {
		var bad []string
		for q, w := range want {
			v, ok, err := promQuery(hc, promWeb, q)
			if w == 0 && err == nil && (!ok || v == 0) {
				continue // a sum over no series is empty
			}
			if err != nil || !ok || v != w {
				bad = append(bad, fmt.Sprintf("%s = %v (present %v, %v), want %v", q, v, ok, err, w))
			}
		}
		sort.Strings(bad)
		return len(bad) == 0, "\n  " + strings.Join(bad, "\n  ")
	})
	if v, ok, err := promQuery(hc, promWeb, `count(udptrace_noport_datagrams_total)`); err != nil || !ok || v != 2 {
		t.Errorf("%v series of udptrace_noport_datagrams_total (%v, %v), want 2", v, ok, err)
	}
	lines := p.stopOK(t)
	if evs, sum := parseJSON(t, lines, ns.Inode); len(evs) != n4+n6 || !sum.Match {
		t.Errorf("udptrace printed %d datagrams (match %v), want %d", len(evs), sum.Match, n4+n6)
	}
}
