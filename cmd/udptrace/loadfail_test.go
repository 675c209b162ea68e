package main

// What udptrace says when the kernel cannot take its programs, end to end:
// a bad --btf file, a kernel without BTF, a program the verifier rejects,
// a ring buffer the kernel will not allocate. Each is one line on stderr
// naming the fix, exit code 2 for bad input and 1 otherwise.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/testutil"
)

// runExit runs cmd and returns its stderr and exit code (-1: killed by a
// signal).
func runExit(t *testing.T, cmd *exec.Cmd) (string, int) {
	t.Helper()
	var stderr syncBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return stderr.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), 0
}

// wantOneLine checks that stderr is one line starting with prefix and
// containing each of parts.
func wantOneLine(t *testing.T, what, stderr, prefix string, parts ...string) {
	t.Helper()
	ok := strings.Count(stderr, "\n") == 1 && strings.HasPrefix(stderr, prefix)
	for _, p := range parts {
		ok = ok && strings.Contains(stderr, p)
	}
	if !ok {
		t.Errorf("%s: stderr %q, want one line starting %q with %q", what, stderr, prefix, parts)
	}
}

// kernelBTFCopy copies the running kernel's BTF to a file of the test's.
func kernelBTFCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err != nil {
		t.Skipf("no kernel BTF to copy: %v", err)
	}
	path := filepath.Join(t.TempDir(), "vmlinux.btf")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// chosenBackend is the backend udptrace uses here: the one under test, or
// the first that works.
func chosenBackend(t *testing.T) loader.Backend {
	t.Helper()
	if b := testutil.Backend(); b != "auto" {
		return loader.Backend(b)
	}
	for _, b := range loader.Backends {
		if loader.Check(b) == nil {
			return b
		}
	}
	t.Fatal("no backend works here")
	return ""
}

// A --btf file that is not a kernel's BTF is bad input, for every command
// that takes it.
func TestE2EBTFBadFile(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.btf")
	if err := os.WriteFile(garbage, []byte("not BTF\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.btf")
	for _, cmd := range [][]string{nil, {"top"}, {"doctor"}} {
		for file, why := range map[string]string{
			missing: "open " + missing + ": no such file or directory",
			garbage: garbage + " is not BTF: neither raw BTF (magic 0xeb9f) nor an ELF file",
			binary:  binary + " is an ELF file without a .BTF section",
		} {
			args := append(append([]string{}, cmd...), "--btf", file)
			stderr, code := runExit(t, exec.Command(binary, args...))
			if code != 2 {
				t.Errorf("%v: exit code %d, want 2", args, code)
			}
			wantOneLine(t, fmt.Sprint(args), stderr, "udptrace: --btf: "+why+" (want the BTF of this very kernel, ")
		}
	}
}

// --btf with the kernel's own BTF, from a file: the seed experiment's whole
// chain, as without it.
func TestE2EBTFFlag(t *testing.T) {
	ns := testutil.NewNS(t)
	file := kernelBTFCopy(t)
	client := testutil.StartSeedClient(t, ns, "seed-client", ap("127.0.0.1:9"))
	p := start(t, ns, "--btf", file, "--json", "-c", "1", "--netns", ns.Path)
	chains := !strings.Contains(p.stderr.String(), "are not traced here")
	client.Go(t)
	got, sum := records(t, p.waitOK(t), ns.Inode)
	seed := loRecord("noport", "127.0.0.1:0", "127.0.0.1:9", 12, ns.Inode, client.PID)
	want := []record{seed}
	if chains {
		dl, sc := seed, seed
		dl.Kind, dl.Delivery = "delivery", "econnrefused"
		sc.Kind, sc.Delivery, sc.Syscall = "syscall", "econnrefused", "read"
		want = append(want, dl, sc)
	}
	checkRecords(t, got, want)
	if sum.PrintedNetns != 1 || sum.UDPNoPorts != 1 || !sum.Match {
		t.Errorf("summary %+v, want the one datagram, matched", sum)
	}
}

// withoutKernelBTF runs udptrace args in a mount namespace where
// /sys/kernel/btf is an empty tmpfs: a kernel without BTF, as udptrace
// sees it.
func withoutKernelBTF(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skipf("needs unshare (util-linux): %v", err)
	}
	script := `mount -t tmpfs none /sys/kernel/btf && exec "$0" "$@"`
	return exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c", script, binary}, args...)...)
}

func TestE2ENoKernelBTF(t *testing.T) {
	testutil.RequireRoot(t)
	file := kernelBTFCopy(t)
	b := chosenBackend(t)
	stderr, code := runExit(t, withoutKernelBTF(t, "--backend", string(b), "-d", "5s"))
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	wantOneLine(t, "no kernel BTF", stderr, "udptrace: "+loader.ErrNoBTF.Error()+": ")

	// --btf stands in for CO-RE and the checks, but the kernel attaches
	// tp_btf and fentry programs by the ids of its own BTF.
	args := []string{"--btf", file, "--backend", string(b), "-d", "1s", "-p", "1"}
	stderr, code = runExit(t, withoutKernelBTF(t, args...))
	if b == loader.Kprobe {
		if code != 0 {
			t.Errorf("kprobe backend with --btf and no kernel BTF: exit code %d, want 0:\n%s", code, stderr)
		}
		return
	}
	if code != 1 {
		t.Errorf("%v: exit code %d, want 1", args, code)
	}
	wantOneLine(t, "--btf without kernel BTF", stderr, fmt.Sprintf("udptrace: backend %s cannot run on this kernel: ", b),
		fmt.Sprintf("the %s backend attaches through the running kernel's own BTF, which --btf %s cannot replace (stat /sys/kernel/btf/vmlinux: no such file or directory): mount /sys/kernel/btf, or use --backend kprobe", b, file))
}

// mismatchedBTF writes the kernel's BTF with every member of struct sk_buff
// one byte further than it is: the BTF of some other kernel build.
func mismatchedBTF(t *testing.T) string {
	t.Helper()
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	var skb *btf.Struct
	if err := spec.TypeByName("sk_buff", &skb); err != nil {
		t.Fatal(err)
	}
	for i := range skb.Members {
		skb.Members[i].Offset += 8
	}
	b, err := btf.NewBuilder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for typ := range spec.All() {
		if _, err := b.Add(typ); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other-kernel.btf")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The verifier rejects programs adapted to another kernel's types (their
// direct reads of struct sk_buff land mid-field): one line naming the
// program, the verifier's last word and --verbose; with --verbose, the log.
func TestE2EVerifierRejection(t *testing.T) {
	testutil.RequireRoot(t)
	b := chosenBackend(t)
	if b == loader.Kprobe {
		t.Skip("kprobe programs read the kernel through helpers: the verifier does not check those offsets")
	}
	file := mismatchedBTF(t)
	// "...: load program: permission denied: <last line of the log> (N line(s) omitted) (run with --verbose..."
	re := regexp.MustCompile(`^udptrace: backend ` + string(b) + ` cannot run on this kernel: the kernel's verifier rejected program (\w+): load program: permission denied: (.+) \((\d+) line\(s\) omitted\) \(run with --verbose for the full log\); its reads were adapted to the types of --btf ` +
		regexp.QuoteMeta(file) + `: is that this kernel's own BTF\? \(`)
	for _, verbose := range []bool{false, true} {
		args := []string{"--btf", file, "--backend", string(b), "-d", "5s"}
		if verbose {
			args = append(args, "--verbose")
		}
		stderr, code := runExit(t, exec.Command(binary, args...))
		if code != 1 {
			t.Errorf("%v: exit code %d, want 1", args, code)
		}
		first, log, _ := strings.Cut(stderr, "\n")
		m := re.FindStringSubmatch(first)
		if m == nil {
			t.Fatalf("%v: first line %q does not match %s", args, first, re)
		}
		omitted, _ := strconv.Atoi(m[3])
		logLines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
		switch {
		case !verbose && log != "":
			t.Errorf("without --verbose, more than one line:\n%s", stderr)
		case verbose && (len(logLines) <= omitted || !strings.Contains(log, m[2]) || !strings.Contains(log, "BPF_PROG("+m[1])):
			t.Errorf("--verbose: the log (%d lines) lacks the %d omitted lines, %q or the source of %s:\n%s", len(logLines), omitted, m[2], m[1], log)
		}
	}
}

// memoryCgroup makes a memory cgroup limited to limit bytes, removed when
// the test ends, and returns its directory and the prefix of a command that
// runs in it.
func memoryCgroup(t *testing.T, limit uint64) (string, []string) {
	t.Helper()
	testutil.RequireRoot(t)
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip(err)
	}
	var parent, limitFile string
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		f := strings.SplitN(l, ":", 3)
		switch {
		case len(f) != 3:
		case strings.Contains(","+f[1]+",", ",memory,"):
			parent, limitFile = filepath.Join("/sys/fs/cgroup/memory", f[2]), "memory.limit_in_bytes"
		case f[0] == "0" && parent == "":
			ctl, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", f[2], "cgroup.subtree_control"))
			if err == nil && !strings.Contains(string(ctl), "memory") && f[2] == "/" {
				err = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0o644)
				ctl = []byte("memory")
			}
			if err == nil && strings.Contains(string(ctl), "memory") {
				parent, limitFile = filepath.Join("/sys/fs/cgroup", f[2]), "memory.max"
			}
		}
	}
	if parent == "" {
		t.Skip("no memory cgroup this test can make a child of")
	}
	dir := filepath.Join(parent, fmt.Sprintf("udptrace-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatUint(limit, 10)), 0o644); err != nil {
		t.Fatal(err)
	}
	// cgroup v1: a task at the limit waits instead of being killed (the
	// ring is allocated page by page up to the limit, then let go).
	os.WriteFile(filepath.Join(dir, "memory.oom_control"), []byte("1"), 0o644)
	return dir, []string{"sh", "-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, dir}
}

// A ring buffer larger than the memory cgroup allows: the kernel refuses it
// (ENOMEM), and udptrace names --ring-size and the limit.
func TestE2ERingBufferTooBig(t *testing.T) {
	testutil.RequireRoot(t)
	if !kernelAtLeast(t, 5, 11) {
		t.Skip("before 5.11 the ring is charged to RLIMIT_MEMLOCK, which udptrace lifts, not to the memory cgroup")
	}
	dir, in := memoryCgroup(t, 200<<20)
	run := func(args ...string) (string, int) {
		t.Helper()
		argv := append(append(append([]string{}, in...), binary), append(withBackend(args...), "-d", "1s", "-p", "1")...)
		for try := 0; ; try++ {
			stderr, code := runExit(t, exec.Command(argv[0], argv[1:]...))
			// cgroup v2 cannot spare a task at the limit from the OOM
			// killer: a rare kill is tried again.
			if code != -1 || try == 2 {
				return stderr, code
			}
		}
	}
	stderr, code := run("--ring-size", "512M")
	want := fmt.Sprintf("udptrace: cannot create a ring buffer of 512 MiB (--ring-size 512M): cannot allocate memory: the kernel charges it to udptrace's memory cgroup, limited to 200 MiB (%s): choose a smaller --ring-size (default 8M) or raise that limit\n", dir)
	if code != 1 || stderr != want {
		t.Errorf("exit code %d, stderr\n %q\nwant 1 and\n %q", code, stderr, want)
	}
	if stderr, code := run("--ring-size", "16M"); code != 0 {
		t.Errorf("a ring that fits: exit code %d:\n%s", code, stderr)
	}
}
