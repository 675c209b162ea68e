package main

// Soak: millions of no-port datagrams, IPv4 and IPv6 from several sockets at
// once, through the live tracer and through top, in a namespace of the
// test's own so that the kernel's counters are exactly this traffic. What
// udptrace reports must add up to the kernel's count, to the datagram, and
// its memory and goroutines must stay bounded.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/snmp"
	"github.com/udptrace/udptrace/internal/testutil"
)

const (
	soakDatagrams = 2_000_000 // per run, half IPv4, half IPv6
	soakSenders   = 4         // sockets and goroutines: 2 IPv4, 2 IPv6
	soakBatch     = 64        // datagrams per sendmmsg
	soakMaxRSS    = 64 << 20  // bytes
	soakMetrics   = "127.0.0.1:9479"
)

func TestSoak(t *testing.T) {
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("-short: the soak floods 2 x 2,000,000 datagrams")
	}
	if os.Getenv("UDPTRACE_IN_VM") == "1" {
		t.Skip("too slow under emulation")
	}
	t.Run("trace", soakTrace)
	t.Run("top", soakTop)
}

// soakTrace: udptrace --json to a pipe the test reads. Every datagram the
// kernel counted is either an event on stdout or counted lost.
func soakTrace(t *testing.T) {
	ns := testutil.NewNS(t)
	p := startStalled(t, ns, "--json", "--netns", ns.Path, "--metrics", soakMetrics)
	type result struct {
		noport, foreign uint64
		summary         []byte
		err             error
	}
	read := make(chan result, 1)
	go func() { // the reader: counts the datagrams' records as they come
		var r result
		own := []byte(fmt.Sprintf(`"netns":%d,`, ns.Inode))
		br := bufio.NewReaderSize(p.stdout, 1<<20)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				if len(line) > 0 || err != io.EOF {
					r.err = fmt.Errorf("read stdout: %v (%d bytes of a line)", err, len(line))
				}
				break
			}
			switch {
			case bytes.Contains(line, []byte(`"kind":"noport"`)):
				r.noport++
				if !bytes.Contains(line, own) {
					r.foreign++
				}
			case bytes.HasPrefix(line, []byte(`{"type":"summary"`)):
				r.summary = append([]byte(nil), line...)
			}
		}
		read <- r
	}()
	m, sent4, sent6, d4, d6, elapsed := soak(t, ns, p)
	r := <-read
	if _, code := p.wait(t); code != 0 || r.err != nil {
		t.Fatalf("exit code %d, reader %v; stderr:\n%s", code, r.err, p.stderr.String())
	}
	var sum jsonSummary
	if err := json.Unmarshal(r.summary, &sum); err != nil {
		t.Fatalf("summary %q: %v", r.summary, err)
	}
	t.Logf("trace: %d datagrams sent (%d IPv4, %d IPv6) in %v (%.0f/s); NoPorts delta %d + Udp6NoPorts delta %d = %d; events %d + lost %d = %d",
		sent4+sent6, sent4, sent6, elapsed.Round(time.Millisecond), float64(sent4+sent6)/elapsed.Seconds(), d4, d6, d4+d6,
		r.noport, sum.LostNetns, r.noport+sum.LostNetns)
	m.report(t)
	if r.noport+sum.LostNetns != d4+d6 || r.noport != sum.PrintedNetns || r.foreign != 0 {
		t.Errorf("events %d (%d of another netns) + lost %d != NoPorts deltas %d + %d; the summary says %d printed",
			r.noport, r.foreign, sum.LostNetns, d4, d6, sum.PrintedNetns)
	}
	if sum.UDPNoPorts != d4 || sum.UDP6NoPorts != d6 || sum.SeenIPv4 != d4 || sum.SeenIPv6 != d6 || !sum.Match || sum.Complete != (sum.LostNetns == 0) {
		t.Errorf("summary %+v; want the kernel's deltas %d and %d, seen, match", sum, d4, d6)
	}
}

// soakTop: udptrace top --json. The per-interval counts of its snapshots,
// plus the datagrams its table could not hold, add up to the kernel's count.
func soakTop(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "top", "--json", "--interval", "1s", "-n", "100", "--netns", ns.Path, "--metrics", soakMetrics)
	m, sent4, sent6, d4, d6, elapsed := soak(t, ns, p)
	lines, code := p.wait(t)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr.String())
	}
	sums, last := parseTop(t, lines)
	var c4, c6 uint64
	for k, s := range sums {
		if strings.HasPrefix(k, "ipv6 ") {
			c6 += s.Count
		} else {
			c4 += s.Count
		}
	}
	t.Logf("top: %d datagrams sent (%d IPv4, %d IPv6) in %v (%.0f/s); NoPorts delta %d + Udp6NoPorts delta %d = %d; %d snapshots, %d keys: counted %d + %d, overflow %d",
		sent4+sent6, sent4, sent6, elapsed.Round(time.Millisecond), float64(sent4+sent6)/elapsed.Seconds(), d4, d6, d4+d6,
		len(lines), len(sums), c4, c6, last.Overflow)
	m.report(t)
	if c4+c6+last.Overflow != d4+d6 || (last.Overflow == 0 && (c4 != d4 || c6 != d6)) {
		t.Errorf("top counted %d IPv4 + %d IPv6 + overflow %d; want the kernel's %d + %d", c4, c6, last.Overflow, d4, d6)
	}
	if len(sums) != soakSenders*2 {
		t.Errorf("%d keys, want %d (a source and 2 ports per sender)", len(sums), soakSenders*2)
	}
}

// soak floods ns while udptrace p runs, watched, then stops it with
// SIGINT: the datagrams sent and the kernel's NoPorts deltas, per family.
func soak(t *testing.T, ns *testutil.NS, p *proc) (m *soakWatch, sent4, sent6, d4, d6 uint64, elapsed time.Duration) {
	t.Helper()
	m = watch(t, p, ns)
	sent4, sent6, elapsed = flood(t, ns)
	d4 = testutil.SettledDelta(t, ns, m.before, "Udp.NoPorts", sent4)
	d6 = testutil.SettledDelta(t, ns, m.before, "Udp6NoPorts", sent6)
	m.finish(t)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	return m, sent4, sent6, d4, d6, elapsed
}

// flood sends soakDatagrams from soakSenders sockets of ns at once, each to
// 2 closed ports of its own, half over IPv4 and half over IPv6.
func flood(t *testing.T, ns *testutil.NS) (sent4, sent6 uint64, elapsed time.Duration) {
	t.Helper()
	senders := make([]*mmsgSender, soakSenders)
	for i := range senders {
		ports := []uint16{uint16(9 + 2*i), uint16(10 + 2*i)}
		senders[i] = newMmsgSender(t, ns, i%2 == 1, ports)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(senders))
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.send(soakDatagrams / soakSenders)
		}()
	}
	wg.Wait()
	elapsed = time.Since(start)
	for i, s := range senders {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if s.v6 {
			sent6 += s.sent
		} else {
			sent4 += s.sent
		}
	}
	return sent4, sent6, elapsed
}

// mmsgSender is one UDP socket of a namespace that sends to closed ports of
// its loopback with sendmmsg, cycling over ports.
type mmsgSender struct {
	fd   int
	v6   bool
	msgs []unix.Mmsghdr
	sent uint64

	payload [16]byte
	iov     unix.Iovec
	sa4     []unix.RawSockaddrInet4
	sa6     []unix.RawSockaddrInet6
}

func newMmsgSender(t *testing.T, ns *testutil.NS, v6 bool, ports []uint16) *mmsgSender {
	t.Helper()
	s := &mmsgSender{v6: v6, msgs: make([]unix.Mmsghdr, soakBatch)}
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	err := ns.Do(func() error {
		var err error
		s.fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(s.fd) })
	s.iov.Base = &s.payload[0]
	s.iov.SetLen(len(s.payload))
	if v6 {
		s.sa6 = make([]unix.RawSockaddrInet6, soakBatch)
	} else {
		s.sa4 = make([]unix.RawSockaddrInet4, soakBatch)
	}
	for i := range s.msgs {
		port := ports[i%len(ports)]
		h := &s.msgs[i].Hdr
		h.Iov = &s.iov
		h.SetIovlen(1)
		if v6 {
			sa := &s.sa6[i]
			sa.Family = unix.AF_INET6
			sa.Addr[15] = 1 // ::1
			setPort(&sa.Port, port)
			h.Name, h.Namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet6
		} else {
			sa := &s.sa4[i]
			sa.Family = unix.AF_INET
			sa.Addr = [4]byte{127, 0, 0, 1}
			setPort(&sa.Port, port)
			h.Name, h.Namelen = (*byte)(unsafe.Pointer(sa)), unix.SizeofSockaddrInet4
		}
	}
	return s
}

// setPort stores port in network byte order.
func setPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// send sends exactly n datagrams.
func (s *mmsgSender) send(n int) error {
	for left := n; left > 0; {
		k := min(left, soakBatch)
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(k), 0, 0, 0)
		switch errno {
		case 0:
			left -= int(r)
			s.sent += uint64(r)
		case unix.EINTR, unix.ENOBUFS, unix.EAGAIN:
		default:
			return fmt.Errorf("sendmmsg: %w", errno)
		}
	}
	return nil
}

// soakWatch samples a running udptrace: its RSS (/proc/PID/status), and
// its goroutines (go_goroutines from --metrics) at the start, each second,
// and once the traffic is over.
type soakWatch struct {
	before   snmp.Counters // the namespace's counters at the start
	pid      int
	client   *http.Client
	stop     chan struct{}
	done     chan struct{}
	startRSS uint64 // bytes

	mu                  sync.Mutex
	maxRSS, hwm, endRSS uint64 // bytes
	rssSamples          int
	goroutines          []float64 // each second
	startGo, endGo      float64
	scrapeErr           error
}

func watch(t *testing.T, p *proc, ns *testutil.NS) *soakWatch {
	t.Helper()
	w := &soakWatch{pid: p.cmd.Process.Pid, client: nsHTTP(ns), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if w.startGo, err = w.scrapeGoroutines(); err != nil {
		t.Fatalf("scrape --metrics: %v", err)
	}
	w.startRSS, _ = w.sampleRSS()
	w.before = testutil.ReadCounters(t, ns)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			w.sampleRSS()
			if i%10 == 0 {
				g, err := w.scrapeGoroutines()
				w.mu.Lock()
				if err != nil && w.scrapeErr == nil {
					w.scrapeErr = err
				}
				w.goroutines = append(w.goroutines, g)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *soakWatch) scrapeGoroutines() (float64, error) {
	m, err := scrapeMetrics(w.client, soakMetrics)
	if err != nil {
		return 0, err
	}
	g, ok := m["go_goroutines"]
	if !ok {
		return 0, fmt.Errorf("no go_goroutines in the scrape")
	}
	return g, nil
}

// sampleRSS reads VmRSS and VmHWM, keeping the largest.
func (w *soakWatch) sampleRSS() (rss, hwm uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxRSS, w.hwm = max(w.maxRSS, rss), max(w.hwm, hwm)
	w.rssSamples++
	return rss, hwm
}

// finish stops the sampling, once the traffic is over and counted, and
// takes the last goroutine count: it must not have grown.
func (w *soakWatch) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	var err error
	if w.endGo, err = w.scrapeGoroutines(); err != nil {
		t.Fatalf("scrape --metrics: %v", err)
	}
	w.endRSS, _ = w.sampleRSS()
	if w.scrapeErr != nil {
		t.Errorf("a scrape during the flood failed: %v", w.scrapeErr)
	}
}

// report logs what was measured and checks the bounds: RSS under
// soakMaxRSS throughout (VmHWM too: the peak between samples, and at
// start), and no more goroutines at the end than at the
// start (2 spare: the scrape's own connection may not have ended yet).
func (w *soakWatch) report(t *testing.T) {
	t.Helper()
	var peakGo float64
	for _, g := range w.goroutines {
		peakGo = max(peakGo, g)
	}
	t.Logf("RSS: %.1f MiB at start, max %.1f MiB (VmHWM %.1f MiB) over %d samples, %.1f MiB at the end; goroutines: %v at start, max %v during, %v at the end (%d scrapes)",
		mib(w.startRSS), mib(w.maxRSS), mib(w.hwm), w.rssSamples, mib(w.endRSS), w.startGo, peakGo, w.endGo, len(w.goroutines)+2)
	if max(w.maxRSS, w.hwm) >= soakMaxRSS || w.rssSamples < 10 {
		t.Errorf("RSS reached %.1f MiB (VmHWM %.1f MiB, %d samples), want < %.0f MiB", mib(w.maxRSS), mib(w.hwm), w.rssSamples, mib(soakMaxRSS))
	}
	if w.endGo > w.startGo+2 {
		t.Errorf("goroutines grew from %v to %v", w.startGo, w.endGo)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
