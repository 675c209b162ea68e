package testutil

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TUN is a tun device in a namespace: what is written to File arrives at the
// kernel as if from the network, from no local socket.
type TUN struct {
	File *os.File
	Name string
}

// NewTUN creates tun device name in ns with address cidr (e.g.
// "10.202.0.1/24"), up.
func NewTUN(t testing.TB, ns *NS, name, cidr string) *TUN {
	t.Helper()
	var tun *netlink.Tuntap
	err := ns.Do(func() error {
		tun = &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TUN, Queues: 1,
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE}
		return netlink.LinkAdd(tun)
	})
	if err != nil {
		t.Fatalf("tun %s: %v (needs the tun module)", name, err)
	}
	t.Cleanup(func() {
		for _, f := range tun.Fds {
			f.Close()
		}
	})
	h := ns.Netlink(t)
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return &TUN{File: tun.Fds[0], Name: name}
}

// InjectUDP4 writes one IPv4 UDP datagram with size bytes of payload into
// the tun device, as if it came from src over the wire.
func (tun *TUN) InjectUDP4(t testing.TB, src, dst netip.AddrPort, size int) {
	t.Helper()
	pkt := make([]byte, 20+8+size)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64 // TTL
	pkt[9] = unix.IPPROTO_UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[10:], ipChecksum(pkt[:20]))
	binary.BigEndian.PutUint16(pkt[20:], src.Port())
	binary.BigEndian.PutUint16(pkt[22:], dst.Port())
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+size))
	// UDP checksum 0: "not computed", valid for IPv4.
	if _, err := tun.File.Write(pkt); err != nil {
		t.Fatalf("write to %s: %v", tun.Name, err)
	}
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
