// Package testutil gives privileged tests real network namespaces, veth
// pairs and sockets, so that traffic and kernel counters are the test's own.
package testutil

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/udptrace/udptrace/internal/lab"
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
type NS struct{ *lab.NS }

// NewNS creates a namespace that is closed when the test ends.
func NewNS(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	ns, err := lab.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return &NS{ns}
}

// Netlink returns a netlink handle operating inside the namespace.
func (ns *NS) Netlink(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := ns.NS.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// Sysctl writes a /proc/sys value inside the namespace (net.* are per netns).
func (ns *NS) Sysctl(t testing.TB, name, value string) {
	t.Helper()
	if err := ns.NS.Sysctl(name, value); err != nil {
		t.Fatal(err)
	}
}

// Veth links namespace a and b with a veth pair named nameA/nameB and the
// given addresses (CIDR form), both up. IPv6 DAD is disabled so addresses
// are usable at once.
func Veth(t testing.TB, a *NS, nameA, addrA string, b *NS, nameB, addrB string) {
	t.Helper()
	if err := lab.Veth(a.NS, nameA, addrA, b.NS, nameB, addrB); err != nil {
		t.Fatal(err)
	}
}

// UDPSocket opens a UDP socket inside ns bound to local (may be ":0" or
// "[::1]:0"). When connect is set, it is connected to remote.
func UDPSocket(t testing.TB, ns *NS, local string, remote netip.AddrPort, connect bool) *net.UDPConn {
	t.Helper()
	c, err := lab.UDPSocket(ns.NS, local, remote, connect)
	if err != nil {
		t.Fatal(err)
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
