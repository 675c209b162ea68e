package main

// Faults: the built binary, tracing real traffic, ended every way it can
// end (SIGINT, SIGTERM, SIGKILL, its stdout's reader going away, --record
// on a full disk, a panic in the event loop). Whatever the way, no program
// or link of udptrace may stay in the kernel, nothing may be pinned, and
// every way but SIGKILL must print a summary whose counts are exact.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/testutil"
)

// kernelObjects are the BPF programs and links a process holds, by ID.
type kernelObjects struct {
	progs map[ebpf.ProgramID]bool
	links map[link.ID]bool
}

// heldBy reads the BPF programs and links process pid holds open, from
// /proc/PID/fdinfo (a link's fdinfo also names its program).
func heldBy(pid int) kernelObjects {
	o := kernelObjects{progs: map[ebpf.ProgramID]bool{}, links: map[link.ID]bool{}}
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":")
			id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				continue
			}
			switch k {
			case "prog_id":
				o.progs[ebpf.ProgramID(id)] = true
			case "link_id":
				o.links[link.ID(id)] = true
			}
		}
	}
	return o
}

// heldByAnyone is heldBy of every process.
func heldByAnyone() kernelObjects {
	all := kernelObjects{progs: map[ebpf.ProgramID]bool{}, links: map[link.ID]bool{}}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		o := heldBy(pid)
		for id := range o.progs {
			all.progs[id] = true
		}
		for id := range o.links {
			all.links[id] = true
		}
	}
	return all
}

// udptracePrograms lists the programs in the kernel named as udptrace's
// are (the names of the loader's CollectionSpec, as the kernel truncates
// them), every process's.
func udptracePrograms(t *testing.T) map[ebpf.ProgramID]string {
	t.Helper()
	names, err := loader.ProgramNames()
	if err != nil {
		t.Fatal(err)
	}
	found := map[ebpf.ProgramID]string{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break // ENOENT: the last one
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // freed meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			continue
		}
		// cilium/ebpf may give the whole name, from the program's BTF.
		name := info.Name
		if len(name) > 15 {
			name = name[:15]
		}
		if names[name] {
			found[id] = name
		}
	}
	return found
}

// linksOf lists the links in the kernel that attach one of progs.
func linksOf(progs map[ebpf.ProgramID]string) map[link.ID]ebpf.ProgramID {
	found := map[link.ID]ebpf.ProgramID{}
	it := new(link.Iterator)
	for it.Next() {
		info, err := it.Link.Info()
		if err == nil && progs[info.Program] != "" {
			found[it.ID] = info.Program
		}
	}
	return found
}

// bpffsEntries lists every file of every bpffs mounted (where objects are
// pinned, /sys/fs/bpf by convention).
func bpffsEntries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, l := range strings.Split(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE ...
		f := strings.Fields(l)
		_, fs, ok := strings.Cut(l, " - ")
		if !ok || len(f) < 5 || strings.Fields(fs)[0] != "bpf" {
			continue
		}
		filepath.Walk(f[4], func(path string, _ os.FileInfo, err error) error {
			if err == nil && path != f[4] {
				entries = append(entries, path)
			}
			return nil
		})
	}
	return entries
}

// kernelBefore is what a fault test compares with at the end.
type kernelBefore struct {
	progs map[ebpf.ProgramID]string
	pins  map[string]bool
}

func snapshotKernel(t *testing.T) kernelBefore {
	t.Helper()
	k := kernelBefore{progs: udptracePrograms(t), pins: map[string]bool{}}
	for _, e := range bpffsEntries(t) {
		k.pins[e] = true
	}
	return k
}

// holdings reads what the running udptrace p holds: programs, each one of
// udptrace's, and links, each attaching one of them.
func holdings(t *testing.T, p *proc) kernelObjects {
	t.Helper()
	held := heldBy(p.cmd.Process.Pid)
	ours := udptracePrograms(t)
	for id := range held.progs {
		if ours[id] == "" {
			t.Errorf("udptrace holds program %d, not named as one of udptrace's", id)
		}
	}
	attached := 0
	for _, prog := range linksOf(ours) {
		if held.progs[prog] {
			attached++
		}
	}
	// Kprobes before Linux 5.15 attach through perf events, not links.
	minLinks := 3
	if testutil.Backend() == "kprobe" {
		minLinks = 0
	}
	if len(held.progs) < 3 || len(held.links) < minLinks || attached != len(held.links) {
		t.Fatalf("udptrace holds %d programs and %d links (%d attaching its programs); want at least 3 programs and %d links, each attaching one",
			len(held.progs), len(held.links), attached, minLinks)
	}
	return held
}

// requireReleased waits until none of the programs and links udptrace held
// is left in the kernel (the kernel frees tracing programs after an RCU
// tasks grace period: seconds), and checks that no program named as
// udptrace's appeared since before, but those another live process holds
// (a concurrent test's), and that nothing was pinned.
func requireReleased(t *testing.T, before kernelBefore, held kernelObjects) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(2 * time.Minute)
	for {
		var left []string
		for id := range held.progs {
			if p, err := ebpf.NewProgramFromID(id); err == nil {
				p.Close()
				left = append(left, fmt.Sprintf("program %d", id))
			}
		}
		for id := range held.links {
			if l, err := link.NewFromID(id); err == nil {
				l.Close()
				left = append(left, fmt.Sprintf("link %d", id))
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after udptrace exited, %s are still in the kernel", strings.Join(left, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("udptrace's %d programs and %d links were freed %v after it exited", len(held.progs), len(held.links), time.Since(start).Round(time.Millisecond))
	for {
		others := heldByAnyone()
		var orphans []string
		for id, name := range udptracePrograms(t) {
			if before.progs[id] == "" && !others.progs[id] {
				orphans = append(orphans, fmt.Sprintf("%d (%s)", id, name))
			}
		}
		if len(orphans) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("udptrace programs %s held by no process are still in the kernel", strings.Join(orphans, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range bpffsEntries(t) {
		if !before.pins[e] {
			t.Errorf("%s was pinned while udptrace ran", e)
		}
	}
}

// textSummary is the summary udptrace prints on stderr.
type textSummary struct {
	printed, printedNS, unprinted, lost, lostNS uint64
	noPorts, seen4, udp6NoPorts, seen6          uint64
	result                                      string // MATCH, "MATCH, INCOMPLETE" or MISMATCH
	rest                                        string // what stderr says after the summary
}

var (
	summaryRE = regexp.MustCompile(`(?m)^--- udptrace summary: .*, reconciled in netns (\d+) ---\n` +
		`events printed: (\d+) \((\d+) from this netns\)(?:, (\d+) more captured but not printed [^;]*)?; lost in the ring buffer: (\d+) \((\d+) from this netns\)\n` +
		`.*\n` +
		`  Udp NoPorts +(\d+) +(\d+) .*\n` +
		`  Udp6NoPorts +(\d+) +(\d+) .*\n` +
		`(?:  .*\n)*` +
		`result: (MATCH, INCOMPLETE|MATCH|MISMATCH) .*\n`)
)

// parseSummary finds the one summary in udptrace's stderr, of namespace ns.
func parseSummary(t *testing.T, stderr string, ns uint32) textSummary {
	t.Helper()
	all := summaryRE.FindAllStringSubmatchIndex(stderr, -1)
	if len(all) != 1 {
		t.Fatalf("%d summaries on stderr, want 1:\n%s", len(all), stderr)
	}
	m := summaryRE.FindStringSubmatch(stderr)
	n := func(i int) uint64 {
		v, _ := strconv.ParseUint(m[i], 10, 64)
		return v
	}
	if n(1) != uint64(ns) {
		t.Fatalf("summary of netns %d, want %d:\n%s", n(1), ns, stderr)
	}
	return textSummary{printed: n(2), printedNS: n(3), unprinted: n(4), lost: n(5), lostNS: n(6),
		noPorts: n(7), seen4: n(8), udp6NoPorts: n(9), seen6: n(10), result: m[11], rest: stderr[all[0][1]:]}
}

// requireExact checks a summary against the datagrams the test sent, all
// counted by the kernel: seen, and printed or counted unprinted, none lost.
func requireExact(t *testing.T, s textSummary, sent4, sent6 uint64) {
	t.Helper()
	if s.noPorts != sent4 || s.seen4 != sent4 || s.udp6NoPorts != sent6 || s.seen6 != sent6 ||
		s.printedNS+s.unprinted != sent4+sent6 || s.lostNS != 0 || s.result != "MATCH" {
		t.Errorf("summary %+v; want NoPorts = seen = %d, Udp6NoPorts = seen = %d, printed + unprinted = %d, none lost, MATCH",
			s, sent4, sent6, sent4+sent6)
	}
}

// exitStatus is how p ended: its exit code, or the signal that killed it.
func exitStatus(p *proc) (code int, sig syscall.Signal) {
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

// exited reports whether process pid has ended (a zombie, not yet reaped).
func exited(pid int) bool {
	st := procState(pid)
	return st == "" || st == "Z" || st == "X"
}

// procState is process pid's state letter from /proc (R, S, T, Z, ...), or
// "" once it is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// sendUntilExit sends bursts of n IPv4 and n IPv6 datagrams until
// udptrace exits by itself (each burst counted by the kernel first), and
// returns the datagrams sent per family. Each burst is made to end it (its
// records meet the broken output), so udptrace gets seconds to stop before
// the next: none may be in flight when it takes its closing snapshot, even
// on a busy machine.
func sendUntilExit(t *testing.T, ns *testutil.NS, p *proc, n int) (sent4, sent6 uint64) {
	t.Helper()
	for i := 0; i < 10; i++ {
		// Whole bursts: udptrace may stop at the first record of one.
		whileStopped(t, p, func() { sendBurst(t, ns, n, n) })
		sent4, sent6 = sent4+uint64(n), sent6+uint64(n)
		for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
			if exited(p.cmd.Process.Pid) {
				return sent4, sent6
			}
		}
		t.Logf("udptrace still runs after %d + %d datagrams", sent4, sent6)
	}
	t.Fatalf("udptrace still running after %d datagrams; stderr:\n%s", sent4+sent6, p.stderr.String())
	return
}

// whileStopped runs f while udptrace is stopped (SIGSTOP): its programs go
// on filling the ring and the kernel's counters, but it reads nothing, so
// whatever stops it on reading (a panic, a full disk) comes after all that f
// sent, which its summary must then count. (Without this, in QEMU, such a
// stop came after the first datagram of a burst, before the last ones were
// sent.)
func whileStopped(t *testing.T, p *proc, f func()) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); procState(p.cmd.Process.Pid) != "T"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("udptrace did not stop on SIGSTOP (state %q)", procState(p.cmd.Process.Pid))
		}
	}
	f()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// sendBurst sends n4 IPv4 and n6 IPv6 datagrams to closed ports of ns at
// once and waits until the kernel counted them.
func sendBurst(t *testing.T, ns *testutil.NS, n4, n6 int) {
	t.Helper()
	d4, d6 := ap("127.0.0.1:9"), ap("[::1]:53")
	c4 := testutil.UDPSocket(t, ns, "127.0.0.1:0", d4, false)
	c6 := testutil.UDPSocket(t, ns, "[::1]:0", d6, false)
	before := testutil.ReadCounters(t, ns)
	testutil.Send(t, c4, d4, n4, 10) // back to back: microseconds
	testutil.Send(t, c6, d6, n6, 10)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", uint64(n4))
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", uint64(n6))
}

// countNoport counts the datagram records of netns ns among JSON lines.
func countNoport(t *testing.T, lines []string, ns uint32) (n uint64) {
	t.Helper()
	for _, l := range lines {
		var r struct{ Kind string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if r.Kind == "noport" && strings.Contains(l, fmt.Sprintf(`"netns":%d,`, ns)) {
			n++
		}
	}
	return n
}

// SIGINT and SIGTERM stop udptrace, and top, the normal way: exit 0, after
// the summary (top: after a last snapshot), with exact counts.
func TestFaultSignals(t *testing.T) {
	for _, cmd := range []string{"trace", "top"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(cmd+"/"+sig.String(), func(t *testing.T) {
				t.Parallel()
				ns := testutil.NewNS(t)
				before := snapshotKernel(t)
				args := []string{"--json", "--netns", ns.Path}
				if cmd == "top" {
					args = append([]string{"top", "--interval", "200ms"}, args...)
				}
				p := start(t, ns, args...)
				held := holdings(t, p)
				sendBurst(t, ns, 5, 3)
				if err := p.cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				lines, code := p.wait(t)
				if code != 0 {
					t.Errorf("exit code %d after %v, want 0; stderr:\n%s", code, sig, p.stderr.String())
				}
				if cmd == "top" {
					sums, last := parseTop(t, lines)
					if got4, got6 := sums["ipv4 127.0.0.1 9"].Count, sums["ipv6 ::1 53"].Count; got4 != 5 || got6 != 3 || last.Overflow != 0 {
						t.Errorf("top counted %d IPv4 and %d IPv6 datagrams, overflow %d; want 5, 3, 0", got4, got6, last.Overflow)
					}
				} else {
					evs, sum := parseJSON(t, lines, ns.Inode)
					s := parseSummary(t, p.stderr.String(), ns.Inode)
					requireExact(t, s, 5, 3)
					if len(evs) != 8 || s.printedNS != 8 || sum.PrintedNetns != 8 || !sum.Match || !sum.Complete || s.rest != "" {
						t.Errorf("%d events, summary %+v / %+v, after it %q; want all 8 printed, nothing after the summary", len(evs), s, sum, s.rest)
					}
				}
				requireReleased(t, before, held)
			})
		}
	}
}

// SIGKILL gives udptrace no chance to clean up: the kernel must, since
// nothing of udptrace outlives its file descriptors.
func TestFaultSIGKILL(t *testing.T) {
	ns := testutil.NewNS(t)
	before := snapshotKernel(t)
	p := start(t, ns, "--netns", ns.Path)
	held := holdings(t, p)
	sendBurst(t, ns, 3, 2)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	if _, sig := exitStatus(p); sig != syscall.SIGKILL {
		t.Errorf("udptrace ended with %v, want killed by SIGKILL", p.cmd.ProcessState)
	}
	if strings.Contains(p.stderr.String(), "udptrace summary") {
		t.Errorf("a summary after SIGKILL?\n%s", p.stderr.String())
	}
	requireReleased(t, before, held)
}

// udptrace | head -1: when stdout's reader goes away, udptrace stops as on
// Ctrl-C, says nothing of EPIPE, prints the summary on stderr and exits 0.
func TestFaultStdoutClosed(t *testing.T) {
	for _, format := range []string{"json", "table"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			ns := testutil.NewNS(t)
			before := snapshotKernel(t)
			args := []string{"--netns", ns.Path}
			if format == "json" {
				args = append(args, "--json")
			}
			p := startStalled(t, ns, args...)
			held := holdings(t, p)
			var sent4, sent6 uint64
			if format == "json" {
				sendBurst(t, ns, 1, 0) // the first line is its record
				sent4++
			}
			// head -1: read a line, then close the pipe.
			line, err := bufio.NewReader(p.stdout).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			p.stdout.Close()
			if format == "json" && !strings.Contains(line, `"kind":"noport"`) || format == "table" && !strings.HasPrefix(line, "TIME ") {
				t.Errorf("first line %q", line)
			}
			n4, n6 := sendUntilExit(t, ns, p, 1)
			sent4, sent6 = sent4+n4, sent6+n6
			_, code := p.wait(t)
			stderr := p.stderr.String()
			if code != 0 {
				t.Errorf("exit code %d, want 0; stderr:\n%s", code, stderr)
			}
			s := parseSummary(t, stderr, ns.Inode)
			requireExact(t, s, sent4, sent6)
			if s.rest != "" || strings.Contains(stderr, "pipe") {
				t.Errorf("want no word of the broken pipe; summary %+v, stderr:\n%s", s, stderr)
			}
			t.Logf("%d datagrams sent; summary %+v", sent4+sent6, s)
			requireReleased(t, before, held)
		})
	}
}

// udptrace top | head -1: the same, quietly, exit 0.
func TestFaultTopStdoutClosed(t *testing.T) {
	ns := testutil.NewNS(t)
	before := snapshotKernel(t)
	p := startStalled(t, ns, "top", "--json", "--interval", "100ms", "--netns", ns.Path)
	held := holdings(t, p)
	if _, err := bufio.NewReader(p.stdout).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	p.stdout.Close()
	_, code := p.wait(t)
	if code != 0 || strings.Count(p.stderr.String(), "\n") != 1 {
		t.Errorf("exit code %d, want 0 and no message but the start line:\n%s", code, p.stderr.String())
	}
	requireReleased(t, before, held)
}

// --record on a full disk: the error names the file and ENOSPC, after the
// summary; exit 1. /dev/full fails the first write; a small tmpfs fails
// once it is full (4 KiB), part of a write in.
func TestFaultRecordDiskFull(t *testing.T) {
	t.Run("dev-full", func(t *testing.T) {
		t.Parallel()
		ns := testutil.NewNS(t)
		before := snapshotKernel(t)
		p := start(t, ns, "--json", "--record", "/dev/full", "--netns", ns.Path)
		held := holdings(t, p)
		sent4, sent6 := sendUntilExit(t, ns, p, 1)
		lines, code := p.wait(t)
		requireRecordFailed(t, ns, p, code, "/dev/full", sent4, sent6)
		evs, sum := parseJSON(t, lines, ns.Inode)
		if uint64(len(evs)) != sum.PrintedNetns || sum.UDPNoPorts != sent4 || sum.UDP6NoPorts != sent6 || !sum.Match || !sum.Complete {
			t.Errorf("stdout: %d events, summary %+v; want the summary's count, the datagrams sent, match, complete", len(evs), sum)
		}
		requireReleased(t, before, held)
	})
	t.Run("tmpfs", func(t *testing.T) {
		t.Parallel()
		ns := testutil.NewNS(t)
		dir := t.TempDir()
		if err := unix.Mount("udptrace-test", dir, "tmpfs", 0, "size=4k"); err != nil {
			t.Skipf("mount a tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		file := filepath.Join(dir, "session.jsonl")
		before := snapshotKernel(t)
		p := start(t, ns, "--record", file, "--netns", ns.Path)
		held := holdings(t, p)
		sent4, sent6 := sendUntilExit(t, ns, p, 3) // 12 records, > 4 KiB
		_, code := p.wait(t)
		requireRecordFailed(t, ns, p, code, file, sent4, sent6)
		if st, err := os.Stat(file); err != nil || st.Size() == 0 || st.Size() > 4<<10 {
			t.Errorf("the record: %v, %v; want the 4 KiB the disk held", st, err)
		}
		requireReleased(t, before, held)
	})
}

// requireRecordFailed checks how udptrace ended after --record's disk
// filled up: exit 1, the summary, then the error naming the file and
// ENOSPC.
func requireRecordFailed(t *testing.T, ns *testutil.NS, p *proc, code int, file string, sent4, sent6 uint64) {
	t.Helper()
	stderr := p.stderr.String()
	if code != 1 {
		t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	s := parseSummary(t, stderr, ns.Inode)
	requireExact(t, s, sent4, sent6)
	if want := "udptrace: --record " + file + ": write " + file + ": no space left on device (ENOSPC)\n"; s.rest != want {
		t.Errorf("after the summary %q, want %q", s.rest, want)
	}
	t.Logf("%d datagrams sent; summary %+v", sent4+sent6, s)
}

// A panic in the event loop (injected: UDPTRACE_FAULT=panic-after-1, on the
// first record after the first datagram) is recovered: the programs are
// detached, the ring drained, the summary printed, then the panic and its
// stack; exit 1.
func TestFaultPanic(t *testing.T) {
	ns := testutil.NewNS(t)
	before := snapshotKernel(t)
	p := startStalledEnv(t, ns, []string{faultEnv + "=panic-after-1"}, "--json", "--netns", ns.Path)
	close(p.drain)
	held := holdings(t, p)
	// The whole burst is in, before the first record makes it panic.
	whileStopped(t, p, func() { sendBurst(t, ns, 3, 2) })
	lines, code := p.wait(t)
	stderr := p.stderr.String()
	if code != 1 {
		t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
	}
	s := parseSummary(t, stderr, ns.Inode)
	requireExact(t, s, 3, 2)
	want := "udptrace: internal error: panic while handling a record: fault injected by " + faultEnv + "=panic-after-1\ngoroutine "
	if s.printedNS != 1 || s.unprinted != 4 || !strings.HasPrefix(s.rest, want) || !strings.Contains(s.rest, "main.(*eventLoop).handle") {
		t.Errorf("summary %+v; want 1 printed, 4 unprinted, then %q and the stack; stderr:\n%s", s, want, stderr)
	}
	if n := countNoport(t, lines, ns.Inode); n != 1 {
		t.Errorf("%d datagrams on stdout, want 1:\n%s", n, strings.Join(lines, "\n"))
	}
	requireReleased(t, before, held)
}
