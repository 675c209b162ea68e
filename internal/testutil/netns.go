// Package testutil gives privileged tests real network namespaces, veth
// pairs and sockets, so that traffic and kernel counters are the test's own.
package testutil

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (BPF, network namespaces): run with sudo")
	}
}

// NS is a network namespace made for one test, with lo up.
type NS struct {
	Handle netns.NsHandle
	Inode  uint32
	Path   string // /proc/self/fd/N: opens the namespace from any thread
}

// NewNS creates a namespace that is closed when the test ends.
func NewNS(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.New() // also moves this thread into it
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	ns := &NS{Handle: h, Inode: uint32(st.Ino), Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h))}
	t.Cleanup(func() { h.Close() })
	nl := ns.Netlink(t)
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

// Netlink returns a netlink handle operating inside the namespace.
func (ns *NS) Netlink(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns.Handle, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// Do runs fn on a thread inside the namespace. Sockets opened in fn stay in
// the namespace after it returns.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns.Handle); err != nil {
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Never hand a thread in the wrong namespace back to the runtime.
		runtime.LockOSThread()
		return fmt.Errorf("restore netns: %w", err)
	}
	return ferr
}

// Sysctl writes a /proc/sys value inside the namespace (net.* are per netns).
func (ns *NS) Sysctl(t testing.TB, name, value string) {
	t.Helper()
	path := "/proc/sys/" + replaceDots(name)
	if err := ns.Do(func() error {
		return os.WriteFile(path, []byte(value), 0o644)
	}); err != nil {
		t.Fatalf("sysctl %s=%s: %v", name, value, err)
	}
}

func replaceDots(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// Veth links namespace a and b with a veth pair named nameA/nameB and the
// given addresses (CIDR form), both up. IPv6 DAD is disabled so addresses
// are usable at once.
func Veth(t testing.TB, a *NS, nameA, addrA string, b *NS, nameB, addrB string) {
	t.Helper()
	for _, ns := range []*NS{a, b} {
		ns.Sysctl(t, "net.ipv6.conf.all.accept_dad", "0")
		ns.Sysctl(t, "net.ipv6.conf.default.accept_dad", "0")
	}
	la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nameA, Namespace: netlink.NsFd(a.Handle)}, PeerName: nameB, PeerNamespace: netlink.NsFd(b.Handle)}
	if err := netlink.LinkAdd(la); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, side := range []struct {
		ns         *NS
		name, addr string
	}{{a, nameA, addrA}, {b, nameB, addrB}} {
		h := side.ns.Netlink(t)
		l, err := h.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		for _, cidr := range splitComma(side.addr) {
			addr, err := netlink.ParseAddr(cidr)
			if err != nil {
				t.Fatal(err)
			}
			addr.Flags |= unix.IFA_F_NODAD
			if err := h.AddrAdd(l, addr); err != nil {
				t.Fatalf("addr %s on %s: %v", cidr, side.name, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// UDPSocket opens a UDP socket inside ns bound to local (may be ":0" or
// "[::1]:0"). When connect is set, it is connected to remote.
func UDPSocket(t testing.TB, ns *NS, local string, remote netip.AddrPort, connect bool) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.Do(func() error {
		network := "udp4"
		if remote.Addr().Is6() {
			network = "udp6"
		}
		laddr, err := net.ResolveUDPAddr(network, local)
		if err != nil {
			return err
		}
		if connect {
			c, err = net.DialUDP(network, laddr, net.UDPAddrFromAddrPort(remote))
		} else {
			c, err = net.ListenUDP(network, laddr)
		}
		return err
	})
	if err != nil {
		t.Fatalf("udp socket %s -> %s: %v", local, remote, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Send writes n datagrams of size bytes to remote (ignored when the socket is
// connected). A connected socket that got ICMP port-unreachable fails its
// next write with ECONNREFUSED without sending: Send retries such a write, so
// exactly n datagrams reach the kernel.
func Send(t testing.TB, c *net.UDPConn, remote netip.AddrPort, n, size int) {
	t.Helper()
	buf := make([]byte, size)
	connected := c.RemoteAddr() != nil
	for i := 0; i < n; {
		var err error
		if connected {
			_, err = c.Write(buf)
		} else {
			_, err = c.WriteToUDPAddrPort(buf, remote)
		}
		if err != nil {
			if isRefused(err) {
				continue // the pending error was reported; nothing was sent
			}
			t.Fatalf("send %d/%d to %s: %v", i, n, remote, err)
		}
		i++
	}
}

func isRefused(err error) bool {
	var se *os.SyscallError
	if e, ok := err.(*net.OpError); ok {
		if s, ok := e.Err.(*os.SyscallError); ok {
			se = s
		}
	}
	return se != nil && se.Err == unix.ECONNREFUSED
}

// Neigh adds a permanent neighbour entry in ns: ip is at the MAC address of
// device peerDev in namespace peer. Packets waiting for that neighbour's
// resolution leave at once.
func Neigh(t testing.TB, ns *NS, dev string, ip netip.Addr, peer *NS, peerDev string) {
	t.Helper()
	pl, err := peer.Netlink(t).LinkByName(peerDev)
	if err != nil {
		t.Fatal(err)
	}
	h := ns.Netlink(t)
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family, State: netlink.NUD_PERMANENT,
		IP: net.IP(ip.AsSlice()), HardwareAddr: pl.Attrs().HardwareAddr}
	if err := h.NeighSet(n); err != nil {
		t.Fatalf("neighbour %s on %s: %v", ip, dev, err)
	}
}
