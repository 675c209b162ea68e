package loader_test

import (
	"encoding/binary"

	"net"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/snmp"
	"github.com/udptrace/udptrace/internal/testutil"
)

// needDelivery skips when this kernel and backend cannot see errors arrive.
func needDelivery(t *testing.T, tr *loader.Tracer) {
	t.Helper()
	if !tr.Delivery {
		t.Skipf("VMTEST-UNSUPPORTED: no delivery hooks with the %s backend here: %s", tr.Backend, tr.NoDelivery)
	}
}

// byKind splits records by kind, in ring order.
func byKind(evs []events.Event, sport uint16) map[events.Kind][]events.Event {
	out := map[events.Kind][]events.Event{}
	for _, e := range evs {
		if sport == 0 || e.SPort == sport {
			out[e.Kind] = append(out[e.Kind], e)
		}
	}
	return out
}

// The seed experiment: a process connects, sends to a closed port, reads.
// One chain: its datagram hit NoPorts, the ICMP reply was sent and set
// ECONNREFUSED on its socket, and its read(2) returned it.
func TestChainSeedExperiment(t *testing.T) {
	for _, tc := range []struct {
		name string
		dst  netip.AddrPort
	}{{"ipv4", ap("127.0.0.1:9")}, {"ipv6", ap("[::1]:9")}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testutil.NewNS(t)
			client := testutil.StartSeedClient(t, ns, "seedclient", tc.dst)
			tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
			needDelivery(t, tr)
			before := testutil.ReadCounters(t, ns)
			client.Go(t) // its read failed with ECONNREFUSED
			var w4, w6 uint64 = 1, 0
			if tc.dst.Addr().Is6() {
				w4, w6 = 0, 1
			}
			waitNoPorts(t, tr, ns, before, w4, w6)
			evs := drainAll(t, tr)
			if len(evs) != 3 {
				t.Fatalf("%d records, want noport, delivery, syscall: %+v", len(evs), evs)
			}
			np, dl, sc := evs[0], evs[1], evs[2]
			if np.Kind != events.KindNoPort || dl.Kind != events.KindDelivery || sc.Kind != events.KindSyscall {
				t.Fatalf("kinds %s, %s, %s; want noport, delivery, syscall", np.Kind, dl.Kind, sc.Kind)
			}
			pid := uint32(client.PID)
			for _, e := range evs {
				if e.Chain == 0 || e.Chain != np.Chain {
					t.Errorf("%s: chain %x, want %x (non-zero) on every record", e.Kind, e.Chain, np.Chain)
				}
				if netip.AddrPortFrom(e.Dst, e.DPort) != tc.dst || e.SPort != np.SPort || e.SPort == 0 {
					t.Errorf("%s: datagram %s:%d -> %s:%d, want to %s from port %d", e.Kind, e.Src, e.SPort, e.Dst, e.DPort, tc.dst, np.SPort)
				}
				if e.Sender != events.SenderLocal || e.SenderPID != pid || e.SenderCommString() != "seedclient" {
					t.Errorf("%s: sender %s %d/%s, want local %d/seedclient", e.Kind, e.Sender, e.SenderPID, e.SenderCommString(), pid)
				}
			}
			if np.ICMP != events.ICMPSent {
				t.Errorf("ICMP verdict %s, want sent", np.ICMP)
			}
			if dl.Outcome != events.OutcomeRefused || dl.Err != 111 || dl.SockIno == 0 || dl.Netns != ns.Inode {
				t.Errorf("delivery: outcome %s err %d socket %d netns %d; want econnrefused, 111, a socket, netns %d",
					dl.Outcome, dl.Err, dl.SockIno, dl.Netns, ns.Inode)
			}
			if sc.PID != pid || sc.CommString() != "seedclient" || sc.Syscall != 0 || sc.FD < 3 || sc.Err != 111 ||
				sc.SockIno != dl.SockIno || sc.OriginNS == 0 || sc.BootNS < sc.OriginNS {
				t.Errorf("syscall: %d/%s %s(fd %d) err %d socket %d origin %d at %d; want read by %d/seedclient, err 111, socket %d",
					sc.PID, sc.CommString(), events.SyscallName(sc.Syscall), sc.FD, sc.Err, sc.SockIno, sc.OriginNS, sc.BootNS, pid, dl.SockIno)
			}
			if tc.dst.Addr().Is6() { // no IP id: the chain id is computable
				want := events.ChainID(events.ChainKey{Family: events.FamilyIPv6, Src: np.Src, Dst: np.Dst,
					SPort: np.SPort, DPort: np.DPort, Len: np.Len, Payload: []byte("seed")})
				if np.Chain != want {
					t.Errorf("chain %x, want events.ChainID of the datagram %x", np.Chain, want)
				}
			}
		})
	}
}

// setRecvErr turns IP_RECVERR (IPV6_RECVERR) on.
func setRecvErr(t *testing.T, c *net.UDPConn, v6 bool) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	})
	if serr != nil {
		t.Fatal(serr)
	}
}

// errQueue reads one error from the socket's error queue, as an application
// with IP_RECVERR would, and returns its errno.
func errQueue(t *testing.T, c *net.UDPConn) unix.Errno {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var errno unix.Errno
	var rerr error
	rc.Control(func(fd uintptr) {
		oob := make([]byte, 512)
		_, oobn, _, _, err := unix.Recvmsg(int(fd), make([]byte, 512), oob, unix.MSG_ERRQUEUE)
		if err != nil {
			rerr = err
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			rerr = err
			return
		}
		for _, m := range msgs {
			if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
				(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
				errno = unix.Errno(binary.NativeEndian.Uint32(m.Data)) // sock_extended_error.ee_errno
			}
		}
	})
	if rerr != nil {
		t.Fatalf("read the error queue: %v", rerr)
	}
	return errno
}

// Unconnected sockets: without IP_RECVERR the error is dropped; with it, it
// is queued (and the application can read it from the error queue).
func TestDeliveryOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		local   string
		dst     netip.AddrPort
		recverr bool
		want    events.Outcome
		err     int32
	}{
		{"ipv4 unconnected", "127.0.0.1:48201", ap("127.0.0.1:9"), false, events.OutcomeIgnored, 0},
		{"ipv6 unconnected", "[::1]:48202", ap("[::1]:9"), false, events.OutcomeIgnored, 0},
		{"ipv4 IP_RECVERR", "127.0.0.1:48203", ap("127.0.0.1:9"), true, events.OutcomeQueued, 111},
		{"ipv6 IPV6_RECVERR", "[::1]:48204", ap("[::1]:9"), true, events.OutcomeQueued, 111},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testutil.NewNS(t)
			tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode})
			needDelivery(t, tr)
			c := testutil.UDPSocket(t, ns, tc.local, tc.dst, false)
			if tc.recverr {
				setRecvErr(t, c, tc.dst.Addr().Is6())
			}
			before := testutil.ReadCounters(t, ns)
			testutil.Send(t, c, tc.dst, 1, 5)
			var w4, w6 uint64 = 1, 0
			if tc.dst.Addr().Is6() {
				w4, w6 = 0, 1
			}
			waitNoPorts(t, tr, ns, before, w4, w6)
			if tc.recverr {
				if errno := errQueue(t, c); errno != unix.ECONNREFUSED {
					t.Errorf("error queue holds %v, want ECONNREFUSED", errno)
				}
			}
			k := byKind(drainAll(t, tr), ap(tc.local).Port())
			if len(k[events.KindNoPort]) != 1 || len(k[events.KindDelivery]) != 1 {
				t.Fatalf("records %v, want one noport and one delivery", k)
			}
			np, dl := k[events.KindNoPort][0], k[events.KindDelivery][0]
			if dl.Chain != np.Chain || dl.Outcome != tc.want || dl.Err != tc.err ||
				dl.SenderPID != uint32(os.Getpid()) || dl.SockIno == 0 {
				t.Errorf("delivery: chain %x (datagram %x) outcome %s err %d sender %d socket %d; want %s, err %d, sender %d",
					dl.Chain, np.Chain, dl.Outcome, dl.Err, dl.SenderPID, dl.SockIno, tc.want, tc.err, os.Getpid())
			}
		})
	}
}

// The client closes its socket while the ICMP is on its way: the responder
// holds the reply until it learns the client's MAC address (the client's
// namespace ignores ARP), and the test provides it only after the close.
func TestDeliveryNoSocket(t *testing.T) {
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	testutil.Veth(t, a, "va", "10.205.0.1/24", b, "vb", "10.205.0.2/24")
	testutil.Neigh(t, a, "va", netip.MustParseAddr("10.205.0.2"), b, "vb")
	a.Sysctl(t, "net.ipv4.conf.all.arp_ignore", "8")
	a.Sysctl(t, "net.ipv4.conf.va.arp_ignore", "8")
	tr := open(t, loader.Config{StatsNetns: b.Inode})
	needDelivery(t, tr)
	dst := ap("10.205.0.2:9")
	beforeA, beforeB := testutil.ReadCounters(t, a), testutil.ReadCounters(t, b)
	c := testutil.UDPSocket(t, a, "10.205.0.1:48300", dst, true)
	testutil.Send(t, c, dst, 1, 5)
	testutil.WaitDelta(t, b, beforeB, "Udp.NoPorts", 1)
	if d := snmp.Sub(testutil.ReadCounters(t, a), beforeA).Get("IcmpMsg.InType3"); d != 0 {
		t.Fatalf("the ICMP arrived before the close (InType3 delta %d): the ARP hold did not work", d)
	}
	c.Close()
	testutil.Neigh(t, b, "vb", netip.MustParseAddr("10.205.0.1"), a, "va")
	testutil.WaitDelta(t, a, beforeA, "IcmpMsg.InType3", 1)
	k := byKind(drainAll(t, tr), 48300)
	if len(k[events.KindNoPort]) != 1 || len(k[events.KindDelivery]) != 1 || len(k[events.KindSyscall]) != 0 {
		t.Fatalf("records %v, want one noport and one delivery", k)
	}
	np, dl := k[events.KindNoPort][0], k[events.KindDelivery][0]
	if np.Netns != b.Inode || np.ICMP != events.ICMPSent || dl.Netns != a.Inode || dl.IfNameString() != "va" ||
		dl.Chain != np.Chain || dl.Outcome != events.OutcomeNoSocket || dl.Err != 0 {
		t.Errorf("noport in %d (icmp %s), delivery in %d on %s: chain %x/%x outcome %s err %d; want %d sent, %d va, same chain, no-socket",
			np.Netns, np.ICMP, dl.Netns, dl.IfNameString(), np.Chain, dl.Chain, dl.Outcome, dl.Err, b.Inode, a.Inode)
	}
}

// --pid of one of two concurrent seed clients selects its chains only: the
// datagram, the delivery and the syscall.
func TestChainPIDFilter(t *testing.T) {
	ns := testutil.NewNS(t)
	dst := ap("127.0.0.1:9")
	one := testutil.StartSeedClient(t, ns, "seed-one", dst)
	two := testutil.StartSeedClient(t, ns, "seed-two", dst)
	tr := open(t, loader.Config{TargetNetns: ns.Inode, StatsNetns: ns.Inode, PIDs: []uint32{uint32(two.PID)}})
	needDelivery(t, tr)
	before := testutil.ReadCounters(t, ns)
	one.Go(t)
	two.Go(t)
	waitNoPorts(t, tr, ns, before, 2, 0)
	evs := drainAll(t, tr)
	k := byKind(evs, 0)
	if len(evs) != 3 || len(k[events.KindNoPort]) != 1 || len(k[events.KindDelivery]) != 1 || len(k[events.KindSyscall]) != 1 {
		t.Fatalf("%d records %v, want client two's noport, delivery and syscall", len(evs), k)
	}
	for _, e := range evs {
		if e.SenderPID != uint32(two.PID) || (e.Kind == events.KindSyscall && e.PID != uint32(two.PID)) {
			t.Errorf("%s record of sender %d (pid %d), want only client two (%d)", e.Kind, e.SenderPID, e.PID, two.PID)
		}
	}
}
