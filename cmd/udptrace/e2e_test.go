package main

// End-to-end tests of the built binary: start it inside a namespace of the
// test's own with --ready-file, send real traffic, stop it like a user would,
// and parse everything it printed.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/udptrace/udptrace/internal/loader"

	"github.com/udptrace/udptrace/internal/testutil"
)

// binary is the udptrace under test: $UDPTRACE_BIN when set (a prebuilt
// static binary, as in the vmtest guest, which has no Go toolchain),
// otherwise built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	if bin := os.Getenv("UDPTRACE_BIN"); bin != "" {
		binary = bin
		os.Exit(runMain(m))
	}
	dir, err := os.MkdirTemp("", "udptrace-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "udptrace")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build udptrace: %v\n%s", err, out)
		os.Exit(1)
	}
	code := runMain(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// runMain runs the tests unless the backend chosen with UDPTRACE_BACKEND
// cannot run on this kernel (then it prints VMTEST-UNSUPPORTED, see
// testutil.RunMain).
func runMain(m *testing.M) int {
	return testutil.RunMain(m, func(b string) error { return loader.Check(loader.Backend(b)) })
}

// syncBuffer is a bytes.Buffer that the exec package's copying goroutine
// may write while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withBackend returns udptrace's arguments args with backendArgs added,
// after the subcommand if args start with one (flags are per command).
func withBackend(args ...string) []string {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return append(append([]string{args[0]}, backendArgs()...), args[1:]...)
	}
	return append(backendArgs(), args...)
}

// backendArgs passes the backend chosen with UDPTRACE_BACKEND to udptrace;
// without the variable udptrace picks its own default.
func backendArgs() []string {
	if os.Getenv(testutil.BackendEnv) == "" {
		return nil
	}
	return []string{"--backend", testutil.Backend()}
}

type proc struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
	stderr syncBuffer
	drain  chan struct{} // closed: start reading stdout
	lines  chan []string // stdout's lines, once it is closed
}

// start runs udptrace inside ns (its own namespace is then ns) and waits
// until it says it is ready.
func start(t *testing.T, ns *testutil.NS, args ...string) *proc {
	t.Helper()
	p := startStalled(t, ns, args...)
	close(p.drain)
	return p
}

// startStalled is start, but nothing reads udptrace's stdout until
// p.drain is closed.
func startStalled(t *testing.T, ns *testutil.NS, args ...string) *proc {
	t.Helper()
	return startStalledEnv(t, ns, nil, args...)
}

// startStalledEnv is startStalled with env (KEY=VALUE) added to
// udptrace's environment.
func startStalledEnv(t *testing.T, ns *testutil.NS, env []string, args ...string) *proc {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	args = append(withBackend(args...), "--ready-file", ready)
	cmd := exec.Command(binary, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	return launch(t, ns, cmd, ready)
}

// launch starts cmd, a udptrace told to create the file ready, inside ns
// and waits until it is ready; nothing reads its stdout until p.drain is
// closed.
func launch(t *testing.T, ns *testutil.NS, cmd *exec.Cmd, ready string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, drain: make(chan struct{}), lines: make(chan []string, 1)}
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdout, err = p.cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	// A child forked from a thread inside ns starts in ns.
	if err := ns.Do(p.cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	go func() {
		<-p.drain
		var lines []string
		sc := bufio.NewScanner(p.stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		p.lines <- lines
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The ready file, and the ready line (the last one udptrace
		// writes at start) copied from its stderr.
		if _, err := os.Stat(ready); err == nil && strings.Contains(p.stderr.String(), "Ctrl-C to stop.\n") {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("udptrace not ready after 30s; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopOK sends SIGINT, like Ctrl-C, and returns stdout's lines; waitOK
// waits for udptrace to stop by itself. Both require exit code 0.
func (p *proc) stopOK(t *testing.T) []string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	return p.waitOK(t)
}

func (p *proc) waitOK(t *testing.T) []string {
	t.Helper()
	lines, code := p.wait(t)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, p.stderr.String())
	}
	return lines
}

func (p *proc) wait(t *testing.T) ([]string, int) {
	t.Helper()
	select {
	case <-p.drain:
	default:
		close(p.drain)
	}
	lines := <-p.lines
	err := p.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return lines, code
}

// jsonEvent mirrors the documented JSON schema.
type jsonEvent struct {
	Type    string  `json:"type"`
	Time    string  `json:"time"`
	Kind    string  `json:"kind"`
	Family  string  `json:"family"`
	Src     string  `json:"src"`
	Sport   uint16  `json:"sport"`
	Dst     string  `json:"dst"`
	Dport   uint16  `json:"dport"`
	Len     uint16  `json:"len"`
	Ifindex uint32  `json:"ifindex"`
	Ifname  string  `json:"ifname"`
	Netns   uint32  `json:"netns"`
	ICMP    string  `json:"icmp"`
	CPU     *int    `json:"cpu"`
	CtxPID  *int    `json:"ctx_pid"`
	CtxComm *string `json:"ctx_comm"`
}

type jsonSummary struct {
	Type         string `json:"type"`
	Netns        uint32 `json:"netns"`
	Printed      uint64 `json:"printed"`
	PrintedNetns uint64 `json:"printed_netns"`
	Lost         uint64 `json:"lost"`
	LostNetns    uint64 `json:"lost_netns"`
	SeenIPv4     uint64 `json:"seen_ipv4"`
	SeenIPv6     uint64 `json:"seen_ipv6"`
	UDPNoPorts   uint64 `json:"udp_noports"`
	UDP6NoPorts  uint64 `json:"udp6_noports"`
	OutType3     uint64 `json:"icmp_out_type3"`
	Icmp6Unreach uint64 `json:"icmp6_out_dest_unreachs"`
	Match        bool   `json:"match"`
	Complete     bool   `json:"complete"`
}

// parseJSON parses udptrace's output, keeping the no-port events of
// namespace ns: other tests may run at the same time in namespaces of their
// own.
func parseJSON(t *testing.T, lines []string, ns uint32) ([]jsonEvent, jsonSummary) {
	t.Helper()
	all, sum := parseAll(t, lines, ns)
	var evs []jsonEvent
	for _, e := range all {
		if e.Kind == "noport" {
			evs = append(evs, e)
		}
	}
	return evs, sum
}

// parseAll is parseJSON keeping every record of the namespace: datagrams
// and the rest of their chains.
func parseAll(t *testing.T, lines []string, ns uint32) ([]jsonEvent, jsonSummary) {
	t.Helper()
	var evs []jsonEvent
	var sum jsonSummary
	for i, l := range lines {
		var probe struct{ Type string }
		if err := json.Unmarshal([]byte(l), &probe); err != nil {
			t.Fatalf("line %d is not JSON: %q: %v", i+1, l, err)
		}
		switch probe.Type {
		case "event":
			var e jsonEvent
			dec := json.NewDecoder(strings.NewReader(l))
			if err := dec.Decode(&e); err != nil {
				t.Fatal(err)
			}
			if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
				t.Errorf("time %q: %v", e.Time, err)
			}
			if e.CPU == nil || e.CtxPID == nil || e.CtxComm == nil {
				t.Errorf("event lacks cpu/ctx_pid/ctx_comm: %s", l)
			}
			if e.Netns == ns {
				evs = append(evs, e)
			}
		case "summary":
			if i != len(lines)-1 {
				t.Errorf("summary on line %d of %d, want last", i+1, len(lines))
			}
			if err := json.Unmarshal([]byte(l), &sum); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("line %d has type %q", i+1, probe.Type)
		}
	}
	if sum.Type != "summary" {
		t.Fatalf("no summary line in %d lines", len(lines))
	}
	return evs, sum
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestE2EJSON(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "--json")
	before := testutil.ReadCounters(t, ns)
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:53")
	c4 := testutil.UDPSocket(t, ns, "127.0.0.1:43001", d4, true)
	testutil.Send(t, c4, d4, 7, 12)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:43002", d6, false), d6, 4, 30)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 7)
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", 4)
	lines := p.stopOK(t)
	evs, sum := parseJSON(t, lines, ns.Inode)
	var n4, n6 int
	for _, e := range evs {
		want := jsonEvent{Type: "event", Kind: "noport", Family: "ipv4", Src: "127.0.0.1", Sport: 43001, Dst: "127.0.0.1", Dport: 9, Len: 20,
			Ifindex: 1, Ifname: "lo", Netns: ns.Inode, ICMP: "sent"}
		if e.Family == "ipv6" {
			want = jsonEvent{Type: "event", Kind: "noport", Family: "ipv6", Src: "::1", Sport: 43002, Dst: "::1", Dport: 53, Len: 38,
				Ifindex: 1, Ifname: "lo", Netns: ns.Inode, ICMP: "sent"}
			n6++
		} else {
			n4++
		}
		got := e
		got.Time, got.CPU, got.CtxPID, got.CtxComm = "", nil, nil, nil
		if got != want {
			t.Errorf("event\n got %+v\nwant %+v", got, want)
		}
	}
	if n4 != 7 || n6 != 4 {
		t.Errorf("got %d IPv4 and %d IPv6 events, want 7 and 4", n4, n6)
	}
	sum.Printed, sum.Lost = 0, 0 // every namespace's: concurrent tests add theirs
	wantSum := jsonSummary{Type: "summary", Netns: ns.Inode, PrintedNetns: 11, SeenIPv4: 7, SeenIPv6: 4,
		UDPNoPorts: 7, UDP6NoPorts: 4, OutType3: 7, Icmp6Unreach: 4, Match: true, Complete: true}
	if sum != wantSum {
		t.Errorf("summary\n got %+v\nwant %+v", sum, wantSum)
	}
	if !strings.Contains(p.stderr.String(), "result: MATCH") {
		t.Errorf("stderr lacks the MATCH statement:\n%s", p.stderr.String())
	}
}

func TestE2EFiltersAndCount(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "--json", "-4", "--port", "9", "-c", "3", "--netns", ns.Path)
	before := testutil.ReadCounters(t, ns)
	other, v6, nine := ap("127.0.0.1:10"), ap("[::1]:9"), ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", other, false), other, 2, 1)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", v6, false), v6, 2, 1)
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", nine, false), nine, 3, 1)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 5)
	lines := p.waitOK(t) // -c 3 stops it by itself
	evs, sum := parseJSON(t, lines, ns.Inode)
	if len(evs) != 3 || sum.PrintedNetns != 3 {
		t.Fatalf("%d events, summary printed %d; want 3", len(evs), sum.Printed)
	}
	for _, e := range evs {
		if e.Family != "ipv4" || e.Dport != 9 {
			t.Errorf("event %+v passed -4 --port 9", e)
		}
	}
}

func TestE2ENetnsFlagAndText(t *testing.T) {
	traced, other := testutil.NewNS(t), testutil.NewNS(t)
	// udptrace runs in `other` and traces `traced` by path.
	p := start(t, other, "--netns", traced.Path)
	before := testutil.ReadCounters(t, traced)
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:9")
	testutil.Send(t, testutil.UDPSocket(t, other, "127.0.0.1:0", d4, false), d4, 4, 1)
	testutil.Send(t, testutil.UDPSocket(t, traced, "127.0.0.1:44001", d4, false), d4, 1, 1)
	testutil.Send(t, testutil.UDPSocket(t, traced, "[::1]:44002", d6, false), d6, 1, 1)
	testutil.WaitDelta(t, traced, before, "Udp.NoPorts", 1)
	testutil.WaitDelta(t, traced, before, "Udp6NoPorts", 1)
	lines := p.stopOK(t)
	// Each datagram's row is followed by its chain: the port-unreachable
	// reached the (unconnected) sending socket and was ignored; unless this
	// kernel hides that from the backend in use.
	chains := !strings.Contains(p.stderr.String(), "are not traced here")
	step, want := 2, 5
	if !chains {
		step, want = 1, 3
	}
	if len(lines) != want || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("want a header and 2 rows (with their chains: %v), got:\n%s", chains, strings.Join(lines, "\n"))
	}
	for i, want := range []string{"127.0.0.1:44001", "[::1]:44002"} {
		row := strings.Fields(lines[step*i+1])
		if len(row) < 9 || row[2] != want || row[3] != strings.Replace(want, want[strings.LastIndex(want, ":")+1:], "9", 1) ||
			row[5] != "lo" || row[6] != fmt.Sprint(traced.Inode) || row[7] != "sent" {
			t.Errorf("row %q: want src %s, dst port 9, lo, netns %d, sent", lines[step*i+1], want, traced.Inode)
		}
		if !chains {
			continue
		}
		chain := lines[2*i+2]
		if f := strings.Fields(chain); len(f) < 3 || f[1] != row[1] || !strings.Contains(chain, "↳ port-unreachable for "+want) ||
			!strings.Contains(chain, "ignored: socket not connected, no IP_RECVERR") {
			t.Errorf("chain line %q: want chain %s, the datagram %s, ignored", chain, row[1], want)
		}
	}
	stderr := p.stderr.String()
	if !strings.Contains(stderr, fmt.Sprintf("reconciled in netns %d", traced.Inode)) || !strings.Contains(stderr, "result: MATCH") {
		t.Errorf("summary does not reconcile the traced namespace:\n%s", stderr)
	}
}

// A stalled reader (stdout not drained) overflows a small ring: the loss is
// reported live and at exit, and events + lost still equal NoPorts.
func TestE2ELostIsReported(t *testing.T) {
	ns := testutil.NewNS(t)
	p := startStalled(t, ns, "--json", "--ring-size", "4K")
	before := testutil.ReadCounters(t, ns)
	const n = 20000
	dst := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", dst, false), dst, n, 1)
	delta := testutil.SettledDelta(t, ns, before, "Udp.NoPorts", n)
	time.Sleep(1500 * time.Millisecond) // let the live report fire
	lines := p.stopOK(t)
	evs, sum := parseJSON(t, lines, ns.Inode)
	if sum.LostNetns == 0 || uint64(len(evs))+sum.LostNetns != delta || sum.UDPNoPorts != delta || !sum.Match || sum.Complete {
		t.Fatalf("events %d + lost %d, NoPorts %d, match %v complete %v; want sum %d, lost > 0, match, incomplete",
			len(evs), sum.LostNetns, sum.UDPNoPorts, sum.Match, sum.Complete, delta)
	}
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "events lost in the last second") || !strings.Contains(stderr, "INCOMPLETE") {
		t.Errorf("loss not reported live and at exit:\n%s", stderr)
	}
}

// The whole pipeline (ring, decode, JSON, pipe) keeps up with a loopback
// flood without losing an event.
func TestE2EFlood(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "--json")
	before := testutil.ReadCounters(t, ns)
	const n = 100_000
	dst := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", dst, false), dst, n, 16)
	delta := testutil.SettledDelta(t, ns, before, "Udp.NoPorts", n)
	lines := p.stopOK(t)
	evs, sum := parseJSON(t, lines, ns.Inode)
	if uint64(len(evs)) != delta {
		t.Fatalf("%d events, want the NoPorts delta %d; stderr:\n%s", len(evs), delta, p.stderr.String())
	}
	if sum.PrintedNetns != delta || sum.LostNetns != 0 || sum.UDPNoPorts != delta || !sum.Match || !sum.Complete {
		t.Fatalf("summary %+v, want %d printed, none lost, match", sum, delta)
	}
}

// doctor's verdict on each backend must be what loading it really gives, and
// its choice the first one that works.
func TestE2EDoctor(t *testing.T) {
	testutil.RequireRoot(t)
	out, err := exec.Command(binary, "doctor").Output()
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	text := string(out)
	chosen := ""
	for _, b := range loader.Backends {
		works := loader.Check(b) == nil
		yes := strings.Contains(text, "\n  yes     "+string(b)+"\n")
		no := strings.Contains(text, "\n  no      "+string(b)+" ")
		if works != yes || works == no {
			t.Errorf("backend %s: Check says works=%v, doctor says:\n%s", b, works, text)
		}
		if works && chosen == "" {
			chosen = string(b)
		}
	}
	if chosen == "" || !strings.Contains(text, "chosen by --backend auto: "+chosen+"\n") {
		t.Errorf("doctor should choose %q:\n%s", chosen, text)
	}
	for _, want := range []string{"BTF", "ring buffer", "privileges", "__udp4_lib_rcv", "icmp6_send", "kfree_skb drop reason"} {
		if !strings.Contains(text, want) {
			t.Errorf("doctor output lacks %q", want)
		}
	}
	if err := exec.Command(binary, "doctor", "extra").Run(); err == nil || err.(*exec.ExitError).ExitCode() != 2 {
		t.Errorf("doctor extra: %v, want exit code 2", err)
	}
}

// The seed experiment, as the README tells it: a client connects, sends to
// a closed port and reads. One chain shows the sender, the NoPorts hit, the
// ICMP reply, the error on its socket and the read(2) that returned it, all
// with the client's pid.
func TestE2ESeedExperiment(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			ns := testutil.NewNS(t)
			client := testutil.StartSeedClient(t, ns, "seed-client", ap("127.0.0.1:9"))
			args := []string{"-c", "1", "--netns", ns.Path}
			if format == "json" {
				args = append(args, "--json")
			}
			p := start(t, ns, args...)
			if strings.Contains(p.stderr.String(), "are not traced here") {
				t.Skipf("VMTEST-UNSUPPORTED: %s", p.stderr.String())
			}
			client.Go(t)
			lines := p.waitOK(t) // -c 1: the datagram, then the rest of its chain
			pid := fmt.Sprint(client.PID)
			if format == "text" {
				if len(lines) != 4 {
					t.Fatalf("want a header, the datagram and 2 chain lines:\n%s", strings.Join(lines, "\n"))
				}
				chain := strings.Fields(lines[1])[1]
				for i, want := range []string{pid + "/seed-client", "reached " + pid + "/seed-client socket:[", "read(fd "} {
					if !strings.Contains(lines[i+1], want) || strings.Fields(lines[i+1])[1] != chain {
						t.Errorf("line %q: want chain %s and %q", lines[i+1], chain, want)
					}
				}
				if !strings.Contains(lines[3], "returned ECONNREFUSED to "+pid+"/seed-client") {
					t.Errorf("syscall line %q does not name the client", lines[3])
				}
				return
			}
			type record struct {
				Kind      string `json:"kind"`
				Chain     string `json:"chain"`
				ICMP      string `json:"icmp"`
				SenderPID int    `json:"sender_pid"`
				CtxPID    int    `json:"ctx_pid"`
				Delivery  string `json:"delivery"`
				Syscall   string `json:"syscall"`
				FD        int    `json:"fd"`
				Errno     string `json:"errno"`
				Since     int64  `json:"since_send_ns"`
			}
			var recs []record
			for _, l := range lines {
				var r record
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatal(err)
				}
				if r.Kind != "" {
					recs = append(recs, r)
				}
			}
			if len(recs) != 3 {
				t.Fatalf("%d records, want 3:\n%s", len(recs), strings.Join(lines, "\n"))
			}
			want := []record{
				{Kind: "noport", Chain: recs[0].Chain, ICMP: "sent", SenderPID: client.PID, FD: -1},
				{Kind: "delivery", Chain: recs[0].Chain, ICMP: "sent", SenderPID: client.PID, Delivery: "econnrefused", FD: -1, Errno: "ECONNREFUSED"},
				{Kind: "syscall", Chain: recs[0].Chain, ICMP: "sent", SenderPID: client.PID, CtxPID: client.PID, Delivery: "econnrefused", Syscall: "read", FD: recs[2].FD, Errno: "ECONNREFUSED"},
			}
			for i := range recs {
				got := recs[i]
				if i != 2 {
					got.CtxPID = 0
				}
				if i == 2 && (got.Since <= 0 || got.FD < 3) {
					t.Errorf("syscall: fd %d, %d ns after the send; want an fd > 2 and a positive delay", got.FD, got.Since)
				}
				got.Since = 0
				if len(recs[0].Chain) != 16 || got != want[i] {
					t.Errorf("record %d\n got %+v\nwant %+v", i, got, want[i])
				}
			}
		})
	}
}

// TestE2ERecordReplay: the live table of a session with --record, replayed
// from the file by a user without privileges (so without BPF), is the same
// table byte for byte, and the same summary; replay --json gives back the
// file.
func TestE2ERecordReplay(t *testing.T) {
	ns := testutil.NewNS(t)
	dir, bin := nobodyCopy(t)
	record := filepath.Join(dir, "class.jsonl")
	client := testutil.StartSeedClient(t, ns, "seed-client", ap("127.0.0.1:9"))
	p := start(t, ns, "--record", record)
	delivery := !strings.Contains(p.stderr.String(), "are not traced here")
	before := testutil.ReadCounters(t, ns)
	client.Go(t) // a connected socket, its error and the read that got it
	d4, d6 := ap("127.0.0.1:10"), ap("[::1]:11")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d4, false), d4, 3, 5)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:0", d6, false), d6, 2, 9)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:45001", d6, true), d6, 2, 9)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 4)
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", 4)
	lines := p.stopOK(t)
	live := strings.Join(lines, "\n") + "\n"
	liveErr := p.stderr.String()
	i := strings.Index(liveErr, "--- udptrace summary")
	if i < 0 {
		t.Fatalf("no summary on stderr:\n%s", liveErr)
	}
	liveSummary := liveErr[i:]
	t.Logf("live table:\n%s", live)
	wants := []string{"127.0.0.1:9 ", "127.0.0.1:10 ", "[::1]:11 ", "[::1]:45001 "}
	if delivery {
		wants = append(wants, "↳ read(fd ", "(lo): ignored: socket not connected", "(lo): ECONNREFUSED set on the connected socket")
	}
	for _, want := range wants {
		if !strings.Contains(live, want) {
			t.Errorf("the live table lacks %q:\n%s", want, live)
		}
	}

	// Replay as nobody: no capability, no BPF, only the file.
	if err := os.Chmod(record, 0o644); err != nil {
		t.Fatal(err)
	}
	replay := func(stdin io.Reader, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"replay"}, args...)...)
		asNobody(cmd)
		cmd.Dir, cmd.Stdin = dir, stdin
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("replay %v as nobody: %v\n%s", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	stdout, stderr := replay(nil, record)
	if stdout != live {
		t.Errorf("replay's table differs from the live one (-live +replay):\n%s", cmp.Diff(strings.Split(live, "\n"), strings.Split(stdout, "\n")))
	}
	if stderr != liveSummary {
		t.Errorf("replay's summary\n%s\nthe live one\n%s", stderr, liveSummary)
	}
	saved, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(record)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if stdout, stderr = replay(f, "--json", "-"); stdout != string(saved) || stderr != liveSummary {
		t.Errorf("replay --json - differs from the file:\n%s\nstderr:\n%s", stdout, stderr)
	}
	if !strings.HasSuffix(string(saved), "\n") || !strings.HasPrefix(strings.SplitAfter(string(saved), "\n")[len(lines)-1], `{"type":"summary",`) {
		t.Errorf("the record is not the %d records and the summary:\n%s", len(lines)-1, saved)
	}

	// The same user cannot trace: what replay did needed no privilege.
	cmd := exec.Command(bin, "-d", "1s")
	asNobody(cmd)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil || err.(*exec.ExitError).ExitCode() != 1 {
		t.Errorf("udptrace as nobody: %v, want exit code 1:\n%s", err, out)
	}
}

// TestE2ERecordJSON: with --json, --record writes what stdout gets.
func TestE2ERecordJSON(t *testing.T) {
	ns := testutil.NewNS(t)
	record := filepath.Join(t.TempDir(), "record.jsonl")
	p := start(t, ns, "--json", "--record", record, "--netns", ns.Path)
	before := testutil.ReadCounters(t, ns)
	d := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d, false), d, 2, 1)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 2)
	lines := p.stopOK(t)
	saved, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if live := strings.Join(lines, "\n") + "\n"; string(saved) != live {
		t.Errorf("record\n%s\nstdout\n%s", saved, live)
	}
	if evs, sum := parseJSON(t, lines, ns.Inode); len(evs) != 2 || !sum.Match {
		t.Errorf("%d events, match %v; want 2, true", len(evs), sum.Match)
	}

	// A record file that cannot be made is a runtime error.
	cmd := exec.Command(binary, append(backendArgs(), "--record", filepath.Join(t.TempDir(), "no", "such.jsonl"), "-d", "1s")...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "--record: open ") {
		t.Errorf("--record in a missing directory: %v, want exit code 1 naming --record:\n%s", err, out)
	}
}

// TestE2EColor: --color always colours the live table as documented.
func TestE2EColor(t *testing.T) {
	ns := testutil.NewNS(t)
	p := start(t, ns, "--color", "always", "-c", "1", "--netns", ns.Path)
	delivery := !strings.Contains(p.stderr.String(), "are not traced here")
	d := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:46001", d, false), d, 1, 1)
	lines := p.waitOK(t)
	if len(lines) < 2 || lines[0] != "\x1b[1mTIME            CHAIN    SRC                   DST                     LEN IFACE           NETNS ICMP     SENDER                  CPU CTX\x1b[0m" {
		t.Fatalf("no bold header:\n%q", lines)
	}
	if !strings.Contains(lines[1], " 127.0.0.1:46001       127.0.0.1:9               9 lo         "+fmt.Sprint(ns.Inode)+" \x1b[32msent\x1b[0m     ") {
		t.Errorf("row %q: want sent in green, the columns aligned", lines[1])
	}
	if delivery && (len(lines) != 3 || !strings.HasPrefix(lines[2], "\x1b[2m") ||
		!strings.HasSuffix(lines[2], ": \x1b[22mignored: socket not connected, no IP_RECVERR\x1b[0m")) {
		t.Errorf("want a dim chain line but for its outcome:\n%q", lines)
	}
}

// TestE2EExplain: --explain follows each record with its kernel path, the
// same live and in replay, in the table and in JSON.
func TestE2EExplain(t *testing.T) {
	ns := testutil.NewNS(t)
	record := filepath.Join(t.TempDir(), "record.jsonl")
	client := testutil.StartSeedClient(t, ns, "seed-client", ap("127.0.0.1:9"))
	p := start(t, ns, "--explain", "--json", "--record", record, "-c", "1", "--netns", ns.Path)
	client.Go(t)
	lines := p.waitOK(t)
	var paths []string
	for _, l := range lines[:len(lines)-1] {
		var r struct{ Explain *string }
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Explain == nil || *r.Explain == "" {
			t.Fatalf("record without explain (%v): %s", err, l)
		}
		paths = append(paths, *r.Explain)
	}
	if len(paths) == 0 || !strings.Contains(paths[0], "__udp4_lib_rcv") {
		t.Errorf("the datagram's path does not name __udp4_lib_rcv: %q", paths)
	}
	if saved, err := os.ReadFile(record); err != nil || string(saved) != strings.Join(lines, "\n")+"\n" {
		t.Errorf("record (%v):\n%s\nstdout:\n%s", err, saved, strings.Join(lines, "\n"))
	}
	out, err := exec.Command(binary, "replay", "--explain", record).Output()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(text) != 1+2*len(paths) {
		t.Fatalf("replay --explain: %d lines, want the header and 2 per record:\n%s", len(text), out)
	}
	for i, path := range paths {
		if got := text[2+2*i]; got != "    ⤷ kernel: "+path {
			t.Errorf("replay line %d %q, want the live path %q", 3+2*i, got, path)
		}
	}
}
