// Package events decodes the records that udptrace's BPF programs write to
// the ring buffer and formats them as text or JSON lines.
//
// It is pure Go: it needs no privileges and no kernel, and it imports nothing
// else from udptrace. Decoding and formatting allocate nothing per event.
package events

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
)

// RecordSize is the size in bytes of struct event in bpf/udptrace.h, the
// only record size Decode accepts.
const RecordSize = 144

// Byte offsets of the fields of struct event (bpf/udptrace.h).
const (
	offTS      = 0
	offSaddr   = 8
	offDaddr   = 24
	offNetns   = 40
	offIfindex = 44
	offPID     = 48
	offTID     = 52
	offCPU     = 56
	offSport   = 60
	offDport   = 62
	offUlen    = 64
	offFamily  = 66
	offICMP    = 67
	offKind    = 68
	offSender  = 69
	offIfname  = 72
	offComm    = 88

	offSenderCgroup = 104
	offSenderPID    = 112
	offSenderTID    = 116
	offSenderUID    = 120
	offSenderNetns  = 124
	offSenderComm   = 128
)

// Family is the IP version of a datagram.
type Family uint8

// Address families, as in struct event's family field.
const (
	FamilyIPv4 Family = 4
	FamilyIPv6 Family = 6
)

// String returns "ipv4" or "ipv6".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// ICMPVerdict tells whether the kernel sent an ICMP (IPv4) or ICMPv6 (IPv6)
// port-unreachable for the dropped datagram.
type ICMPVerdict uint8

// ICMP verdicts, as in enum icmp_verdict.
const (
	ICMPUnknown ICMPVerdict = 0
	ICMPSent    ICMPVerdict = 1
	ICMPNotSent ICMPVerdict = 2
)

// String returns "unknown", "sent" or "not-sent".
func (v ICMPVerdict) String() string {
	switch v {
	case ICMPUnknown:
		return "unknown"
	case ICMPSent:
		return "sent"
	case ICMPNotSent:
		return "not-sent"
	}
	return "icmp(" + strconv.Itoa(int(v)) + ")"
}

// Kind is what happened to the datagram.
type Kind uint8

// Event kinds, as in enum event_kind.
const (
	// KindNoPort is a datagram counted in UDP_MIB_NOPORTS (Udp.NoPorts,
	// Udp6NoPorts): no socket listened on its destination port.
	KindNoPort Kind = 1
)

// String returns "noport".
func (k Kind) String() string {
	if k == KindNoPort {
		return "noport"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// SenderKind tells whether the datagram was sent from this host.
type SenderKind uint8

// Sender kinds, as in struct event's sender field.
const (
	// SenderRemote: no local socket was seen sending the datagram; it came
	// from another host (or udptrace missed its sending).
	SenderRemote SenderKind = 0
	// SenderLocal: a socket of this host sent it; the Sender fields of the
	// Event describe the sending task.
	SenderLocal SenderKind = 1
)

// String returns "remote" or "local".
func (s SenderKind) String() string {
	switch s {
	case SenderRemote:
		return "remote"
	case SenderLocal:
		return "local"
	}
	return "sender(" + strconv.Itoa(int(s)) + ")"
}

// Event is one decoded record.
type Event struct {
	// BootNS is when the kernel saw the datagram, in CLOCK_BOOTTIME
	// nanoseconds; Clock.Time converts it to wall-clock time.
	BootNS uint64
	Kind   Kind
	Family Family
	// Src and Dst are 4-byte addresses for FamilyIPv4 and 16-byte ones
	// (IPv4-mapped included, unchanged) for FamilyIPv6.
	Src, Dst     netip.Addr
	SPort, DPort uint16
	// Len is the UDP header's length field: header plus payload.
	Len uint16
	// Netns is the inode number of the receiving device's network
	// namespace, as in the link /proc/PID/ns/net -> net:[Netns].
	Netns   uint32
	IfIndex uint32
	// IfName is the receiving device's name, NUL-terminated unless it is
	// 16 bytes long.
	IfName [16]byte
	// PID (tgid), TID and Comm describe the task that ran the receive path
	// (often a softirq on behalf of whoever was on the CPU, or the sender
	// itself on loopback): context, not necessarily the datagram's sender,
	// which the Sender fields describe.
	PID, TID, CPU uint32
	Comm          [16]byte
	ICMP          ICMPVerdict

	// Sender tells whether a local socket was seen sending the datagram.
	// The other Sender fields describe the sending task when it is
	// SenderLocal; Decode sets them all to zero when it is SenderRemote.
	Sender SenderKind
	// SenderPID (tgid), SenderTID and SenderUID identify the sending task;
	// SenderComm is its name, NUL-terminated unless it is 16 bytes long.
	// SenderPID is 0 when the socket is known but the task is not, as when
	// the datagram left after neighbour resolution.
	SenderPID, SenderTID, SenderUID uint32
	// SenderNetns is the inode number of the sending socket's network
	// namespace, as Netns.
	SenderNetns uint32
	// SenderCgroup is the cgroup v2 id of the sending task (the inode
	// number of its cgroup directory).
	SenderCgroup uint64
	SenderComm   [16]byte
}

// IfNameString returns IfName up to its first NUL.
func (e *Event) IfNameString() string { return string(cstring(e.IfName[:])) }

// CommString returns Comm up to its first NUL.
func (e *Event) CommString() string { return string(cstring(e.Comm[:])) }

// SenderCommString returns SenderComm up to its first NUL.
func (e *Event) SenderCommString() string { return string(cstring(e.SenderComm[:])) }

// cstring returns b up to its first NUL, or all of b when it has none.
func cstring(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// Decode fills e from b, one ring-buffer record of exactly RecordSize bytes
// in the host's byte order. It allocates nothing. It returns an error, and
// leaves e in an unspecified state, when b has the wrong size or holds an
// unknown family, kind, ICMP verdict or sender kind. For a SenderRemote
// record it ignores the bytes of the sender part, which the BPF side need
// not fill, and sets the Sender fields to zero.
func Decode(b []byte, e *Event) error {
	if len(b) < RecordSize {
		return fmt.Errorf("short record: %d bytes, want %d", len(b), RecordSize)
	}
	if len(b) > RecordSize {
		return fmt.Errorf("oversized record: %d bytes, want %d", len(b), RecordSize)
	}
	b = b[:RecordSize] // one bounds check for all the reads below

	e.Family = Family(b[offFamily])
	switch e.Family {
	case FamilyIPv4:
		e.Src = netip.AddrFrom4([4]byte(b[offSaddr : offSaddr+4]))
		e.Dst = netip.AddrFrom4([4]byte(b[offDaddr : offDaddr+4]))
	case FamilyIPv6:
		e.Src = netip.AddrFrom16([16]byte(b[offSaddr : offSaddr+16]))
		e.Dst = netip.AddrFrom16([16]byte(b[offDaddr : offDaddr+16]))
	default:
		return fmt.Errorf("unknown address family %d", b[offFamily])
	}
	e.Kind = Kind(b[offKind])
	if e.Kind != KindNoPort {
		return fmt.Errorf("unknown event kind %d", b[offKind])
	}
	e.ICMP = ICMPVerdict(b[offICMP])
	if e.ICMP > ICMPNotSent {
		return fmt.Errorf("unknown icmp verdict %d", b[offICMP])
	}
	e.Sender = SenderKind(b[offSender])
	if e.Sender > SenderLocal {
		return fmt.Errorf("unknown sender kind %d", b[offSender])
	}

	ne := binary.NativeEndian
	e.BootNS = ne.Uint64(b[offTS:])
	e.Netns = ne.Uint32(b[offNetns:])
	e.IfIndex = ne.Uint32(b[offIfindex:])
	e.PID = ne.Uint32(b[offPID:])
	e.TID = ne.Uint32(b[offTID:])
	e.CPU = ne.Uint32(b[offCPU:])
	e.SPort = ne.Uint16(b[offSport:])
	e.DPort = ne.Uint16(b[offDport:])
	e.Len = ne.Uint16(b[offUlen:])
	e.IfName = [16]byte(b[offIfname : offIfname+16])
	e.Comm = [16]byte(b[offComm : offComm+16])
	if e.Sender == SenderLocal {
		e.SenderCgroup = ne.Uint64(b[offSenderCgroup:])
		e.SenderPID = ne.Uint32(b[offSenderPID:])
		e.SenderTID = ne.Uint32(b[offSenderTID:])
		e.SenderUID = ne.Uint32(b[offSenderUID:])
		e.SenderNetns = ne.Uint32(b[offSenderNetns:])
		e.SenderComm = [16]byte(b[offSenderComm : offSenderComm+16])
	} else {
		e.SenderCgroup = 0
		e.SenderPID, e.SenderTID, e.SenderUID, e.SenderNetns = 0, 0, 0, 0
		e.SenderComm = [16]byte{}
	}
	return nil
}
