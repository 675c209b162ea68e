package snmp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// init keeps the main goroutine on the main thread, the thread group
// leader, so that the goroutines of ReadNetns and of these tests always run
// on other threads. /proc/self/net shows the leader's namespace: a read
// through it rather than /proc/thread-self/net would then see the wrong
// namespace every time, not only when it happened to run on the leader.
func init() { runtime.LockOSThread() }

// requireRoot skips the test unless it runs as root, which unshare(2) and
// setns(2) of network namespaces need.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_ADMIN) to make and enter network namespaces; run the tests as root")
	}
}

// onLockedThread runs fn on a new goroutine locked to its OS thread, and
// ends that thread afterwards unless fn reports that it left the thread as
// it found it.
func onLockedThread(fn func() (restored bool, err error)) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := fn()
		if restored {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// inNetns runs fn in the network namespace nsFD, on a locked thread that
// returns to its namespace afterwards.
func inNetns(nsFD int, fn func() error) error {
	return onLockedThread(func() (bool, error) {
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return true, err
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
			return true, fmt.Errorf("setns: %w", err)
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			return false, errors.Join(ferr, fmt.Errorf("setns back: %w", err))
		}
		return true, ferr
	})
}

// newNetns makes a network namespace with lo up, for the test only. It
// returns an open file descriptor of the namespace, closed (and so the
// namespace freed) when the test ends.
func newNetns(t *testing.T) int {
	t.Helper()
	nsFD := -1
	err := onLockedThread(func() (bool, error) {
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return true, err
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return true, fmt.Errorf("unshare: %w", err)
		}
		nsFD, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			return false, errors.Join(err, fmt.Errorf("setns back: %w", serr))
		}
		return true, err
	})
	if err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { unix.Close(nsFD) })

	h, err := netlink.NewHandleAt(netns.NsHandle(nsFD))
	if err != nil {
		t.Fatalf("netlink handle in the new namespace: %v", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatalf("set lo up: %v", err)
	}
	return nsFD
}

// udpSocketIn opens an unconnected UDP socket in the network namespace nsFD.
func udpSocketIn(t *testing.T, nsFD int, network, laddr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	err := inNetns(nsFD, func() error {
		var err error
		pc, err = net.ListenPacket(network, laddr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s %s in the test namespace: %v", network, laddr, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// waitCounters reads the counters of nsPath until the named ones equal
// want, or two seconds pass: the receive path (and so the counting) of
// loopback traffic may run a little after sendto returns, in ksoftirqd.
// It returns the last reading of the named counters.
func waitCounters(t *testing.T, nsPath string, want map[string]uint64) map[string]uint64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := ReadNetns(nsPath)
		if err != nil {
			t.Fatalf("ReadNetns(%s): %v", nsPath, err)
		}
		got := make(map[string]uint64, len(want))
		for name := range want {
			got[name] = c.Get(name)
		}
		if cmp.Equal(want, got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadNetnsNoPorts(t *testing.T) {
	requireRoot(t)
	nsFD := newNetns(t)
	nsPath := fmt.Sprintf("/proc/self/fd/%d", nsFD)

	before, err := ReadNetns(nsPath)
	if err != nil {
		t.Fatalf("ReadNetns(%s): %v", nsPath, err)
	}
	// A fresh namespace: nothing counted yet.
	for _, name := range []string{"Udp.NoPorts", "Udp.OutDatagrams", "Icmp.OutDestUnreachs",
		"IcmpMsg.OutType3", "Udp6NoPorts", "Icmp6OutType1"} {
		if v := before.Get(name); v != 0 {
			t.Errorf("fresh namespace: %s = %d, want 0", name, v)
		}
	}
	if _, ok := before["IcmpMsg.OutType3"]; ok {
		t.Error("fresh namespace already has an IcmpMsg.OutType3 column")
	}
	_, hasIPv6 := before["Udp6NoPorts"]
	host, err := ReadSelf()
	if err != nil {
		t.Fatal(err)
	}

	// Nothing listens in the new namespace: port 9 (discard) is closed.
	const n = 3
	payload := []byte("udptrace test")
	c4 := udpSocketIn(t, nsFD, "udp4", "127.0.0.1:0")
	for range n {
		if _, err := c4.WriteTo(payload, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
			t.Fatalf("send to 127.0.0.1:9: %v", err)
		}
	}
	want := map[string]uint64{
		"Udp.NoPorts": n, "Udp.OutDatagrams": n, "Udp.InDatagrams": 0, "Udp.InErrors": 0,
		"Icmp.OutDestUnreachs": n, "Icmp.OutMsgs": n, "IcmpMsg.OutType3": n,
		"Icmp.InDestUnreachs": n, "IcmpMsg.InType3": n,
	}
	if hasIPv6 {
		c6 := udpSocketIn(t, nsFD, "udp6", "[::1]:0")
		for range n {
			if _, err := c6.WriteTo(payload, &net.UDPAddr{IP: net.IPv6loopback, Port: 9}); err != nil {
				t.Fatalf("send to [::1]:9: %v", err)
			}
		}
		want["Udp6NoPorts"] = n
		want["Udp6OutDatagrams"] = n
		want["Udp6InDatagrams"] = 0
		want["Icmp6OutDestUnreachs"] = n
		want["Icmp6OutType1"] = n
		want["Icmp6InType1"] = n
	} else {
		t.Log("IPv6 is disabled: IPv4 only")
	}

	got := waitCounters(t, nsPath, want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counters of the test namespace (-want +got):\n%s", diff)
	}

	// The same namespace through another path to it.
	viaProc := ""
	err = inNetns(nsFD, func() error {
		viaProc = fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		c, err := ReadNetns(viaProc) // from another thread, while this one is in the namespace
		if err != nil {
			return err
		}
		if c.Get("Udp.NoPorts") != n {
			return fmt.Errorf("ReadNetns(%s): Udp.NoPorts = %d, want %d", viaProc, c.Get("Udp.NoPorts"), n)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	// ReadSelf still reads the process's namespace, not the test's: its
	// Ip.InReceives, in the thousands, did not drop to the test's handful.
	// (Its values move with other traffic: no exact check here.)
	after, err := ReadSelf()
	if err != nil {
		t.Fatal(err)
	}
	if after.Get("Ip.InReceives") < host.Get("Ip.InReceives") {
		t.Errorf("host Ip.InReceives went from %d to %d: ReadSelf read another namespace",
			host.Get("Ip.InReceives"), after.Get("Ip.InReceives"))
	}
}

func TestReadNetnsSelfPath(t *testing.T) {
	requireRoot(t)
	viaNetns, err := ReadNetns("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	self, err := ReadSelf()
	if err != nil {
		t.Fatal(err)
	}
	// Same namespace, same counters (their values move with traffic).
	names := func(c Counters) []string {
		var s []string
		for name := range c {
			if len(name) > 8 && name[:8] == "IcmpMsg." {
				continue // columns may appear between the two reads
			}
			s = append(s, name)
		}
		slices.Sort(s)
		return s
	}
	if diff := cmp.Diff(names(self), names(viaNetns)); diff != "" {
		t.Errorf("counter names of ReadSelf (-) and ReadNetns(/proc/self/ns/net) (+):\n%s", diff)
	}
}

func TestReadNetnsRepeated(t *testing.T) {
	// Many reads leave no thread behind in the other namespace: each read
	// sees the fresh namespace's own counters, and the process's namespace
	// stays the process's.
	requireRoot(t)
	nsFD := newNetns(t)
	nsPath := fmt.Sprintf("/proc/self/fd/%d", nsFD)
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		c, err := ReadNetns(nsPath)
		if err != nil {
			t.Fatal(err)
		}
		if c.Get("Ip.InReceives") != 0 {
			t.Fatalf("read %d: Ip.InReceives = %d in an idle namespace", i, c.Get("Ip.InReceives"))
		}
	}
	// Every thread of the process is back in the process's namespace.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // the thread exited
		}
		if ns != self {
			t.Errorf("thread %s is in %s, not %s", task.Name(), ns, self)
		}
	}
}
