package main

// Least privilege, end to end: the real binary, run by setpriv (util-linux)
// as user nobody with exactly the capabilities the README lists, traces
// real traffic exactly; without any one of them it fails, or for
// CAP_SYSLOG degrades, saying which one and why.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/testutil"
)

// minimalCaps is what the tracer needs with default options (README,
// Privileges); top needs the first two.
var minimalCaps = []string{"bpf", "perfmon", "syslog"}

// setpriv runs udptrace as nobody with exactly some capabilities.
type setpriv struct {
	path string // of setpriv
	bin  string // a copy of udptrace that nobody can run
	run  string // a directory nobody can write (ready files)
	uid0 bool   // stay root (uid 0), with only those capabilities
	// extra is added to every set: CAP_SYS_RESOURCE before Linux 5.11,
	// which charges BPF memory to RLIMIT_MEMLOCK.
	extra []string
	// files are passed on as fds 3, 4, ...
	files []*os.File
}

func newSetpriv(t *testing.T) *setpriv {
	t.Helper()
	testutil.RequireRoot(t)
	path, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skipf("needs setpriv (util-linux): %v", err)
	}
	dir, bin := nobodyCopy(t)
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(run, 0o777); err != nil {
		t.Fatal(err)
	}
	s := &setpriv{path: path, bin: bin, run: run}
	// Unless the limit is lifted already (vmtest's guest lifts it at boot,
	// as the README suggests), which udptrace's children inherit.
	var memlock unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &memlock); err != nil {
		t.Fatal(err)
	}
	if !kernelAtLeast(t, 5, 11) && memlock.Cur != unix.RLIM_INFINITY {
		s.extra = []string{"sys_resource"}
	}
	if os.Getenv(testutil.BackendEnv) == "kprobe" {
		setPerfParanoid(t, 2)
	}
	return s
}

const perfParanoid = "/proc/sys/kernel/perf_event_paranoid"

// setPerfParanoid sets kernel.perf_event_paranoid to level for the test
// when it is higher. Debian's and Ubuntu's kernels default to 3, where
// perf_event_open, and so the kprobe backend, takes CAP_SYS_ADMIN (see
// TestPrivilegeKprobeParanoid); at 2 the README's set is enough.
func setPerfParanoid(t *testing.T, level int) {
	t.Helper()
	b, err := os.ReadFile(perfParanoid)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.TrimSpace(string(b))
	if err := os.WriteFile(perfParanoid, []byte(fmt.Sprint(level)), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(perfParanoid, []byte(old), 0); err != nil {
			t.Errorf("restore %s to %s: %v", perfParanoid, old, err)
		}
	})
}

// kernelAtLeast tells whether the running kernel is major.minor or later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatal(err)
	}
	return ma > major || ma == major && mi >= minor
}

// command runs udptrace args with exactly caps (setpriv names: "bpf",
// "sys_admin", ...) in its effective, permitted, inheritable, ambient and
// bounding sets.
func (s *setpriv) command(caps []string, args ...string) *exec.Cmd {
	set := "-all"
	for _, c := range append(append([]string{}, caps...), s.extra...) {
		set += ",+" + c
	}
	argv := []string{"--inh-caps=" + set, "--bounding-set=" + set}
	if !s.uid0 {
		argv = append(argv, "--reuid=65534", "--regid=65534", "--clear-groups", "--ambient-caps="+set)
	}
	cmd := exec.Command(s.path, append(append(argv, s.bin), args...)...)
	cmd.ExtraFiles = s.files
	return cmd
}

// start starts udptrace args inside ns with caps, and waits until it is
// ready.
func (s *setpriv) start(t *testing.T, ns *testutil.NS, caps []string, args ...string) *proc {
	t.Helper()
	f, err := os.CreateTemp(s.run, "ready")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Remove(f.Name())
	p := launch(t, ns, s.command(caps, append(withBackend(args...), "--ready-file", f.Name())...), f.Name())
	close(p.drain)
	return p
}

// fail runs udptrace args with caps, expects exit code 1 and returns its
// stderr.
func (s *setpriv) fail(t *testing.T, caps []string, args ...string) string {
	t.Helper()
	cmd := s.command(caps, append(withBackend(args...), "-d", "5s")...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("udptrace %v with %v: %v, want exit code 1; stderr:\n%s", args, caps, err, stderr.String())
	}
	return stderr.String()
}

func without(caps []string, drop string) []string {
	var out []string
	for _, c := range caps {
		if c != drop {
			out = append(out, c)
		}
	}
	return out
}

// capName is the kernel's name of a setpriv capability name.
func capName(c string) string { return "CAP_" + strings.ToUpper(c) }

// wantMissing checks that stderr is the one line that names exactly the
// capability c as missing.
func wantMissing(t *testing.T, stderr, c string) {
	t.Helper()
	prefix := "udptrace: permission denied: missing " + capName(c) + " ("
	suffix := "): run udptrace as root, or grant it (setcap on the binary, --cap-add in a container; see Privileges in the README)\n"
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, prefix) || !strings.HasSuffix(stderr, suffix) || strings.Contains(stderr, " and CAP_") {
		t.Errorf("stderr %q, want one line %q...%q", stderr, prefix, suffix)
	}
}

// syslogNeeded tells whether /proc/kallsyms hides addresses from a process
// without CAP_SYSLOG (kallsyms_show_value), or skips the test where it
// hides them from everyone.
func syslogNeeded(t *testing.T) bool {
	t.Helper()
	// Only the tracepoint backend reads /proc/kallsyms (chain.go).
	if b := os.Getenv(testutil.BackendEnv); b == "fentry" || b == "kprobe" {
		return false
	}
	restrict, paranoid := readSysctl(t, "kernel/kptr_restrict"), readSysctl(t, "kernel/perf_event_paranoid")
	if restrict == "2" {
		t.Skip("kernel.kptr_restrict=2: /proc/kallsyms hides addresses even with CAP_SYSLOG")
	}
	return restrict == "1" || paranoid != "-1" && paranoid != "0" && paranoid != "1"
}

func readSysctl(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// record is what the privilege tests predict of each record: jsonEvent
// without its time and context, and the chain's keys.
type record struct {
	jsonEvent
	SenderPID int    `json:"sender_pid"`
	Delivery  string `json:"delivery"`
	Syscall   string `json:"syscall"`
}

// loRecord is a record of a datagram src -> dst over lo in namespace ns,
// replied to, sent by pid.
func loRecord(kind, src, dst string, len uint16, ns uint32, pid int) record {
	s, d := ap(src), ap(dst)
	family := "ipv4"
	if s.Addr().Is6() {
		family = "ipv6"
	}
	return record{jsonEvent: jsonEvent{Type: "event", Kind: kind, Family: family, Src: s.Addr().String(), Sport: s.Port(),
		Dst: d.Addr().String(), Dport: d.Port(), Len: len, Ifindex: 1, Ifname: "lo", Netns: ns, ICMP: "sent"}, SenderPID: pid}
}

// records parses udptrace --json's records of namespace ns, sorted, and its
// summary.
func records(t *testing.T, lines []string, ns uint32) ([]record, jsonSummary) {
	t.Helper()
	_, sum := parseAll(t, lines, ns)
	var out []record
	for _, l := range lines[:len(lines)-1] {
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		r.Time, r.CPU, r.CtxPID, r.CtxComm = "", nil, nil, nil
		if r.Netns == ns {
			out = append(out, r)
		}
	}
	sortRecords(out)
	return out, sum
}

func sortRecords(rs []record) {
	sort.Slice(rs, func(i, j int) bool { return fmt.Sprint(rs[i]) < fmt.Sprint(rs[j]) })
}

// seedTraffic sends, inside ns, the seed experiment (a connected client
// sends to 127.0.0.1:9 and reads ECONNREFUSED), 2 datagrams from
// 127.0.0.1:47001 to port 10 and one from [::1]:47002 to port 53 (both
// unconnected), and returns the records udptrace must print for them: with
// chains, the whole chains; without, only the datagrams.
func seedTraffic(t *testing.T, ns *testutil.NS, chains bool) []record {
	t.Helper()
	client := testutil.StartSeedClient(t, ns, "seed-client", ap("127.0.0.1:9"))
	before := testutil.ReadCounters(t, ns)
	client.Go(t)
	d10, d53 := ap("127.0.0.1:10"), ap("[::1]:53")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:47001", d10, false), d10, 2, 5)
	testutil.Send(t, testutil.UDPSocket(t, ns, "[::1]:47002", d53, false), d53, 1, 9)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 3)
	testutil.WaitDelta(t, ns, before, "Udp6NoPorts", 1)
	seed := loRecord("noport", "127.0.0.1:0", "127.0.0.1:9", 12, ns.Inode, client.PID)
	v4 := loRecord("noport", "127.0.0.1:47001", "127.0.0.1:10", 13, ns.Inode, os.Getpid())
	v6 := loRecord("noport", "[::1]:47002", "[::1]:53", 17, ns.Inode, os.Getpid())
	want := []record{seed, v4, v4, v6}
	if chains {
		link := func(r record, kind, delivery, syscall string) record {
			r.Kind, r.Delivery, r.Syscall = kind, delivery, syscall
			return r
		}
		want = append(want, link(seed, "delivery", "econnrefused", ""), link(seed, "syscall", "econnrefused", "read"),
			link(v4, "delivery", "ignored", ""), link(v4, "delivery", "ignored", ""), link(v6, "delivery", "ignored", ""))
	}
	return want
}

// checkRecords compares udptrace's records with want. A source port 0 in
// want is an ephemeral one (the seed client's): that of the datagram to the
// same destination from the same process.
func checkRecords(t *testing.T, got, want []record) {
	t.Helper()
	for i, w := range want {
		for _, g := range got {
			if w.Sport == 0 && g.Kind == "noport" && g.Sport != 0 && g.Dport == w.Dport && g.Dst == w.Dst && g.SenderPID == w.SenderPID {
				want[i].Sport = g.Sport
			}
		}
	}
	sortRecords(want)
	opt := cmp.AllowUnexported(record{})
	if !cmp.Equal(got, want, opt) {
		t.Errorf("records (-want +got):\n%s", cmp.Diff(want, got, opt))
	}
}

func TestPrivilegeMinimalSet(t *testing.T) {
	s := newSetpriv(t)
	syslogNeeded(t) // skips where even CAP_SYSLOG does not help
	chains := true
	ns := testutil.NewNS(t)
	p := s.start(t, ns, minimalCaps, "--json")
	if strings.Contains(p.stderr.String(), "are not traced here") {
		if strings.Contains(p.stderr.String(), "CAP_SYSLOG") {
			t.Fatalf("the minimal set does not see the chains:\n%s", p.stderr.String())
		}
		chains = false // this kernel cannot (before 6.3, tracepoint backend)
	}
	want := seedTraffic(t, ns, chains)
	got, sum := records(t, p.stopOK(t), ns.Inode)
	checkRecords(t, got, want)
	sum.Printed, sum.Lost = 0, 0 // every namespace's
	wantSum := jsonSummary{Type: "summary", Netns: ns.Inode, PrintedNetns: 4, SeenIPv4: 3, SeenIPv6: 1,
		UDPNoPorts: 3, UDP6NoPorts: 1, OutType3: 3, Icmp6Unreach: 1, Match: true, Complete: true}
	if sum != wantSum {
		t.Errorf("summary\n got %+v\nwant %+v", sum, wantSum)
	}
}

// The kprobe backend on a kernel with Debian's perf_event_paranoid level 3:
// the README's set is not enough, and the error names CAP_SYS_ADMIN and the
// sysctl.
func TestPrivilegeKprobeParanoid(t *testing.T) {
	if os.Getenv(testutil.BackendEnv) != "kprobe" {
		t.Skip("for the kprobe backend (UDPTRACE_BACKEND=kprobe)")
	}
	b, err := os.ReadFile(perfParanoid)
	if err != nil {
		t.Fatal(err)
	}
	// Upstream kernels treat 3 as 2; only a kernel that starts at 3 (a
	// Debian or Ubuntu one) is known to honour it.
	if strings.TrimSpace(string(b)) != "3" {
		t.Skipf("kernel.perf_event_paranoid is %s, not Debian's 3", strings.TrimSpace(string(b)))
	}
	s := newSetpriv(t)
	setPerfParanoid(t, 3)
	stderr := s.fail(t, minimalCaps)
	want := "udptrace: permission denied: missing CAP_SYS_ADMIN (the kprobe backend opens perf events, which kernel.perf_event_paranoid=3, " +
		"a Debian and Ubuntu setting, keeps for CAP_SYS_ADMIN): grant it, or set kernel.perf_event_paranoid=2 ("
	if !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting %q", stderr, want)
	}
}

// Without CAP_SYSLOG the tracer runs, says once why the chains are
// missing, and prints the datagrams exactly.
func TestPrivilegeWithoutSyslog(t *testing.T) {
	s := newSetpriv(t)
	needed := syslogNeeded(t)
	ns := testutil.NewNS(t)
	p := s.start(t, ns, without(minimalCaps, "syslog"), "--json")
	stderr := p.stderr.String()
	chains := !needed
	if strings.Contains(stderr, "are not traced here") && !strings.Contains(stderr, "CAP_SYSLOG") {
		// This kernel has none to miss (tracepoint backend before 6.3).
		needed, chains = false, false
	}
	const line = "udptrace: errors arriving back at local senders are not traced here: /proc/kallsyms hides kernel addresses from udptrace, which lacks CAP_SYSLOG ("
	if needed && (strings.Count(stderr, line) != 1 || !strings.Contains(stderr, "): grant it CAP_SYSLOG to see them\n")) {
		t.Errorf("stderr does not say once that the chains need CAP_SYSLOG:\n%s", stderr)
	}
	want := seedTraffic(t, ns, chains)
	got, sum := records(t, p.stopOK(t), ns.Inode)
	checkRecords(t, got, want)
	if sum.PrintedNetns != 4 || !sum.Match || !sum.Complete {
		t.Errorf("summary %+v, want 4 datagrams printed, match, complete", sum)
	}
}

// Without CAP_BPF or CAP_PERFMON, the tracer and top stop before loading
// anything, naming the one missing.
func TestPrivilegeEachMissing(t *testing.T) {
	s := newSetpriv(t)
	for _, c := range []string{"bpf", "perfmon"} {
		wantMissing(t, s.fail(t, without(minimalCaps, c)), c)
		wantMissing(t, s.fail(t, without(minimalCaps, c), "top"), c)
	}
	if s.extra != nil {
		s.extra = nil
		wantMissing(t, s.fail(t, minimalCaps), "sys_resource")
		s.extra = []string{"sys_resource"}
	}
	stderr := s.fail(t, nil)
	if want := "udptrace: permission denied: missing CAP_BPF (to create BPF maps and load BPF programs) and CAP_PERFMON (to load tracing programs, which read kernel memory): run udptrace as root, or grant them (setcap on the binary, --cap-add in a container; see Privileges in the README)\n"; stderr != want {
		t.Errorf("without capabilities: stderr\n %q\nwant\n %q", stderr, want)
	}
	// The same as root (uid 0) with the capabilities dropped.
	s.uid0 = true
	wantMissing(t, s.fail(t, without(minimalCaps, "perfmon")), "perfmon")
	ns := testutil.NewNS(t)
	p := s.start(t, ns, minimalCaps, "--json", "-4")
	if _, sum := parseJSON(t, p.stopOK(t), ns.Inode); !sum.Match {
		t.Errorf("root with only %v: summary %+v", minimalCaps, sum)
	}
}

// --netns of another namespace also takes CAP_SYS_ADMIN (setns), for the
// tracer and for top.
func TestPrivilegeNetns(t *testing.T) {
	s := newSetpriv(t)
	traced, other := testutil.NewNS(t), testutil.NewNS(t)
	// The traced namespace reaches udptrace as its fd 3: nobody may not
	// open the test's /proc/PID/fd/N.
	nsFile, err := os.Open(traced.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer nsFile.Close()
	s.files = []*os.File{nsFile}
	caps := append(append([]string{}, minimalCaps...), "sys_admin")
	wantMissing(t, s.fail(t, minimalCaps, "--netns", "/proc/self/fd/3"), "sys_admin")
	wantMissing(t, s.fail(t, minimalCaps, "top", "--netns", "/proc/self/fd/3"), "sys_admin")
	// Another user's process's namespace: the kernel's ptrace check.
	root := fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
	want := fmt.Sprintf("udptrace: --netns %q: permission denied: the namespace of a process udptrace may not inspect takes CAP_SYS_PTRACE (or name it: ip netns attach NAME PID)\n", root)
	if stderr := s.fail(t, caps, "--netns", root); stderr != want {
		t.Errorf("--netns of root's process as nobody: stderr\n %q\nwant\n %q", stderr, want)
	}

	p := s.start(t, other, caps, "--json", "--netns", "/proc/self/fd/3")
	d9 := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, other, "127.0.0.1:0", d9, false), d9, 3, 1) // not traced
	before := testutil.ReadCounters(t, traced)
	testutil.Send(t, testutil.UDPSocket(t, traced, "127.0.0.1:47003", d9, false), d9, 1, 2)
	testutil.WaitDelta(t, traced, before, "Udp.NoPorts", 1)
	lines := p.stopOK(t)
	got, sum := records(t, lines, traced.Inode)
	if n, _ := records(t, lines, other.Inode); len(n) != 0 {
		t.Errorf("%d records of the namespace not traced", len(n))
	}
	dgram := loRecord("noport", "127.0.0.1:47003", "127.0.0.1:9", 10, traced.Inode, os.Getpid())
	wants := []record{dgram}
	if !strings.Contains(p.stderr.String(), "are not traced here") {
		dgram.Kind, dgram.Delivery = "delivery", "ignored"
		wants = append(wants, dgram)
	}
	checkRecords(t, got, wants)
	if sum.Netns != traced.Inode || sum.PrintedNetns != 1 || sum.UDPNoPorts != 1 || !sum.Match {
		t.Errorf("summary %+v, want 1 datagram of netns %d, matched", sum, traced.Inode)
	}
}

// top needs only CAP_BPF and CAP_PERFMON, and counts exactly.
func TestPrivilegeTop(t *testing.T) {
	s := newSetpriv(t)
	ns := testutil.NewNS(t)
	p := s.start(t, ns, []string{"bpf", "perfmon"}, "top", "--json", "--interval", "200ms")
	before := testutil.ReadCounters(t, ns)
	d9 := ap("127.0.0.1:9")
	testutil.Send(t, testutil.UDPSocket(t, ns, "127.0.0.1:0", d9, false), d9, 5, 1)
	testutil.WaitDelta(t, ns, before, "Udp.NoPorts", 5)
	time.Sleep(400 * time.Millisecond) // one snapshot after the last datagram
	var total uint64
	for _, l := range p.stopOK(t) {
		var snap topSnapshot
		if err := json.Unmarshal([]byte(l), &snap); err != nil {
			t.Fatal(err)
		}
		for _, r := range snap.Rows {
			if r.Netns == ns.Inode {
				if r.Family != "ipv4" || r.Src != "127.0.0.1" || r.DPort != 9 || r.Count != r.Sent {
					t.Errorf("row %+v, want 127.0.0.1 -> port 9, every reply sent", r)
				}
				total += r.Count
			}
		}
	}
	if total != 5 {
		t.Errorf("top counted %d datagrams of the namespace, want 5", total)
	}
}

// In a user namespace, capabilities do not count for BPF: the error says
// so instead of naming one.
func TestPrivilegeUserNamespace(t *testing.T) {
	testutil.RequireRoot(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	out, err := exec.Command(unshare, append([]string{"--user", "--map-root-user", binary}, append(withBackend(), "-d", "5s")...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("in a user namespace: %v, want exit code 1:\n%s", err, out)
	}
	want := "udptrace: permission denied: running in a user namespace (a rootless container?), where capabilities do not count for BPF: udptrace needs CAP_BPF and CAP_PERFMON in the host's initial user namespace ("
	if strings.Count(string(out), "\n") != 1 || !strings.HasPrefix(string(out), want) {
		t.Errorf("output %q, want one line %q...", out, want)
	}
}

// The DaemonSet grants exactly the tracer's tested set.
func TestDaemonSetCapabilities(t *testing.T) {
	if os.Getenv("UDPTRACE_IN_VM") == "1" {
		t.Skip("the vmtest guest has no source tree: this file check runs on the host")
	}
	b, err := os.ReadFile("../../deploy/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "add:":
			in = true
		case in && strings.HasPrefix(l, "- "):
			added = append(added, "CAP_"+strings.TrimPrefix(l, "- "))
		case in && l != "" && !strings.HasPrefix(l, "#"):
			in = false
		}
	}
	var want []string
	for _, c := range minimalCaps {
		want = append(want, capName(c))
	}
	if !cmp.Equal(added, want) || !strings.Contains(string(b), "drop: [\"ALL\"]") {
		t.Errorf("deploy/daemonset.yaml drops all capabilities and adds %v; want %v", added, want)
	}
}
