package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientEnv makes a test binary (through RunMain) act as a plain UDP client:
// "ADDR:PORT COUNT" — wait for a line on stdin, send COUNT datagrams, exit;
// or "seed ADDR:PORT" — the seed experiment: connect, wait for a line, send
// one datagram, read, and exit 0 only if the read failed with ECONNREFUSED.
// Tests use it to have other processes, with names of their own, send.
const clientEnv = "UDPTRACE_TEST_CLIENT"

func runClient(spec string) int {
	if dst, ok := strings.CutPrefix(spec, "seed "); ok {
		return runSeed(dst)
	}
	dst, count, ok := strings.Cut(spec, " ")
	n, err := strconv.Atoi(count)
	if !ok || err != nil {
		fmt.Fprintf(os.Stderr, "bad %s %q\n", clientEnv, spec)
		return 2
	}
	c, err := net.Dial("udp", dst)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	for i := 0; i < n; {
		if _, err := c.Write([]byte("client")); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // a pending error from the previous datagram's ICMP
			}
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		i++
	}
	return 0
}

func runSeed(dst string) int {
	c, err := net.Dial("udp", dst)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	if _, err := c.Write([]byte("seed")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 64)) // read(2) on the connected socket
	if !errors.Is(err, syscall.ECONNREFUSED) {
		fmt.Fprintf(os.Stderr, "read: %v, want connection refused\n", err)
		return 1
	}
	return 0
}

// Client is a separate process, started inside a namespace, that sends
// datagrams when told to.
type Client struct {
	cmd   *exec.Cmd
	stdin *os.File
	PID   int
}

// StartClient starts this test binary as a client named name (its comm)
// inside ns, connected to dst; it sends n datagrams on Go.
func StartClient(t testing.TB, ns *NS, name string, dst netip.AddrPort, n int) *Client {
	t.Helper()
	return startClient(t, ns, name, fmt.Sprintf("%s %d", dst, n))
}

// StartSeedClient starts the seed experiment as a process named name inside
// ns: on Go it sends one datagram to dst on a connected socket and reads;
// Go fails the test unless the read(2) returned ECONNREFUSED.
func StartSeedClient(t testing.TB, ns *NS, name string, dst netip.AddrPort) *Client {
	t.Helper()
	return startClient(t, ns, name, "seed "+dst.String())
}

func startClient(t testing.TB, ns *NS, name, spec string) *Client {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+spec)
	cmd.Stdin, cmd.Stderr = r, os.Stderr
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close(); cmd.Process.Kill(); cmd.Wait() })
	return &Client{cmd: cmd, stdin: w, PID: cmd.Process.Pid}
}

// Go makes the client send, and waits until it has.
func (c *Client) Go(t testing.TB) {
	t.Helper()
	if _, err := c.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("client %d: %v", c.PID, err)
	}
}
