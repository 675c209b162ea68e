package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/udptrace/udptrace/internal/testutil"
)

var demoNetns = regexp.MustCompile(`\(netns (\d+)\)`)

// assertGone fails unless no process holds a namespace the demo printed and
// no demo link exists in this namespace.
func assertGone(t *testing.T, out string) {
	t.Helper()
	m := demoNetns.FindAllStringSubmatch(out, -1)
	if len(m) != 2 {
		t.Fatalf("the demo did not name its two namespaces:\n%s", out)
	}
	// A namespace lives while a process, an fd or a mount refers to it.
	refs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	deadline := time.Now().Add(5 * time.Second)
	for {
		var held []string
		for _, p := range append(refs, fds...) {
			l, err := os.Readlink(p)
			if err != nil {
				continue
			}
			for _, ns := range m {
				if l == "net:["+ns[1]+"]" {
					held = append(held, p)
				}
			}
		}
		if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			for _, ns := range m {
				if bytes.Contains(mounts, []byte("net:["+ns[1]+"]")) {
					held = append(held, "a mount of net:["+ns[1]+"]")
				}
			}
		}
		if len(held) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's namespaces are still held by %v", held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range []string{"cli0", "srv0"} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("link %s left in this namespace", name)
		}
	}
}

// The demo runs every step, its counter tables agree with what udptrace
// counted, and it leaves nothing behind.
func TestDemo(t *testing.T) {
	testutil.RequireRoot(t)
	cmd := exec.Command(binary, withBackend("demo", "--no-pause", "--color", "never")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	out := string(outb)
	if err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	if strings.Contains(out, "this kernel does not let udptrace see errors") {
		t.Skipf("VMTEST-UNSUPPORTED: no delivery hooks here:\n%s", out)
	}
	for i := 1; i <= 5; i++ {
		if !strings.Contains(out, fmt.Sprintf("━━ Step %d/5 · ", i)) {
			t.Errorf("step %d missing", i)
		}
	}
	// Every counter row with an udptrace count says match: 1+3+3+3+5, less
	// the two rate-limit counters on kernels without them.
	snmpFile, _ := os.ReadFile("/proc/net/snmp")
	rateLimits := bytes.Contains(snmpFile, []byte("OutRateLimitHost"))
	want := 15
	if !rateLimits {
		want = 13
	}
	if n := strings.Count(out, "  match\n"); n != want || strings.Contains(out, "DIFFER") {
		t.Errorf("%d matching counter rows (want %d), DIFFER present: %v\n%s", n, want, strings.Contains(out, "DIFFER"), out)
	}
	for _, want := range []string{
		"(no udptrace record: nothing was dropped)",
		"read() = -1 ECONNREFUSED (Connection refused)",
		"ECONNREFUSED set on the connected socket",
		"↳ read(fd ",
		"ignored: socket not connected, no IP_RECVERR",
		"[fd99::2]:9",
		"⤷ kernel: ",
		"udp-client",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Step 5: NoPorts counted every datagram of the burst, and some replies
	// were rate-limited.
	if !regexp.MustCompile(`Udp NoPorts +server +\d+ +\d+ +\+20 +20 no-port records +match`).MatchString(out) ||
		(rateLimits && !regexp.MustCompile(`Icmp OutRateLimitHost +server +\d+ +\d+ +\+[1-9]\d* +[1-9]\d* rate-limited`).MatchString(out)) {
		t.Errorf("the burst step does not show 20 NoPorts with some rate-limited replies:\n%s", out)
	}
	assertGone(t, out)
}

// Ctrl-C in the middle of the demo: it stops, says so, exits 130 and leaves
// nothing behind.
func TestDemoInterrupted(t *testing.T) {
	testutil.RequireRoot(t)
	cmd := exec.Command(binary, withBackend("demo", "--pause", "1m", "--color", "never")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "kernel counter (netstat -s)") {
			break // step 1 ran; the demo pauses now
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the demo did not stop within 20 s of SIGINT")
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("exit %v, stderr %q; want exit code 130 and a word about the interruption", err, stderr.String())
	}
	if strings.Contains(out.String(), "Step 2/5") {
		t.Errorf("the demo went on after SIGINT:\n%s", out.String())
	}
	assertGone(t, out.String())
}
