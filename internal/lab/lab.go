// Package lab makes real network namespaces, veth pairs and sockets: the
// world `udptrace demo` runs its experiment in, and the tests' (through
// internal/testutil). Namespaces are unnamed: they exist while a handle
// refers to them, so nothing is left behind when the process ends, however
// it ends.
package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a network namespace with lo up.
type NS struct {
	Handle netns.NsHandle
	Inode  uint32
	Path   string // /proc/PID/fd/N: opens the namespace from any thread
}

// NewNS creates a namespace; Close releases it.
func NewNS() (*NS, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	h, err := netns.New() // also moves this thread into it
	if err != nil {
		return nil, fmt.Errorf("create a network namespace: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		h.Close()
		runtime.LockOSThread() // never hand this thread back to the runtime
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		h.Close()
		return nil, err
	}
	ns := &NS{Handle: h, Inode: uint32(st.Ino), Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h))}
	if err := ns.linkUp("lo"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close drops this process's reference to the namespace; the kernel frees
// it (and its devices) once no socket or process uses it.
func (ns *NS) Close() error { return ns.Handle.Close() }

// Netlink returns a netlink handle operating inside the namespace; the
// caller closes it.
func (ns *NS) Netlink() (*netlink.Handle, error) {
	return netlink.NewHandleAt(ns.Handle, unix.NETLINK_ROUTE)
}

func (ns *NS) linkUp(name string) error {
	h, err := ns.Netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
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

// Sysctl writes a /proc/sys value inside the namespace (net.* are per
// namespace), e.g. Sysctl("net.ipv4.icmp_ratelimit", "1000").
func (ns *NS) Sysctl(name, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	err := ns.Do(func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", name, value, err)
	}
	return nil
}

// Veth links namespace a and b with a veth pair named nameA/nameB (created
// directly inside them) with the given comma-separated CIDR addresses, both
// up. IPv6 duplicate address detection is off so addresses work at once.
func Veth(a *NS, nameA, addrA string, b *NS, nameB, addrB string) error {
	for _, ns := range []*NS{a, b} {
		for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
			if err := ns.Sysctl(k, "0"); err != nil {
				return err
			}
		}
	}
	ha, err := a.Netlink()
	if err != nil {
		return err
	}
	defer ha.Close()
	la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nameA}, PeerName: nameB, PeerNamespace: netlink.NsFd(b.Handle)}
	if err := ha.LinkAdd(la); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", nameA, nameB, err)
	}
	for _, side := range []struct {
		ns         *NS
		name, addr string
	}{{a, nameA, addrA}, {b, nameB, addrB}} {
		h, err := side.ns.Netlink()
		if err != nil {
			return err
		}
		defer h.Close()
		l, err := h.LinkByName(side.name)
		if err != nil {
			return err
		}
		for _, cidr := range strings.Split(side.addr, ",") {
			if cidr == "" {
				continue
			}
			addr, err := netlink.ParseAddr(cidr)
			if err != nil {
				return err
			}
			addr.Flags |= unix.IFA_F_NODAD
			if err := h.AddrAdd(l, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", cidr, side.name, err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
	}
	return nil
}

// UDPSocket opens a UDP socket inside ns bound to local ("127.0.0.1:0",
// "[::1]:0", ...), connected to remote when connect is set.
func UDPSocket(ns *NS, local string, remote netip.AddrPort, connect bool) (*net.UDPConn, error) {
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
		return nil, fmt.Errorf("udp socket %s -> %s: %w", local, remote, err)
	}
	return c, nil
}
