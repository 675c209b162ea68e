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
const RecordSize = 184

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

	offChain    = 144
	offOriginNS = 152
	offSockIno  = 160
	offFD       = 168
	offSyscall  = 172
	offErr      = 176
	offOutcome  = 180
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
	// ICMPNotSent: the kernel sent none, and no rate-limit counter moved:
	// icmp_send declined for another reason.
	ICMPNotSent ICMPVerdict = 2
	// ICMPRateLimitedGlobal: suppressed by the global ICMP rate limit
	// (net.ipv4.icmp_msgs_per_sec, shared by IPv4 and IPv6), counted in
	// Icmp OutRateLimitGlobal.
	ICMPRateLimitedGlobal ICMPVerdict = 3
	// ICMPRateLimitedHost: suppressed by the per-destination rate limit
	// (net.ipv4.icmp_ratelimit, net.ipv6.icmp.ratelimit), counted in
	// Icmp OutRateLimitHost or Icmp6OutRateLimitHost.
	ICMPRateLimitedHost ICMPVerdict = 4
)

// String returns "unknown", "sent", "not-sent" or "rate-limited" (for both
// rate-limited verdicts; Reason tells them apart).
func (v ICMPVerdict) String() string {
	switch v {
	case ICMPUnknown:
		return "unknown"
	case ICMPSent:
		return "sent"
	case ICMPNotSent:
		return "not-sent"
	case ICMPRateLimitedGlobal, ICMPRateLimitedHost:
		return "rate-limited"
	}
	return "icmp(" + strconv.Itoa(int(v)) + ")"
}

// Reason returns the name of the kernel counter that moved when the
// port-unreachable of a datagram of family f was rate-limited:
// "OutRateLimitGlobal" for ICMPRateLimitedGlobal (both families), and for
// ICMPRateLimitedHost "OutRateLimitHost" (IPv4) or "Icmp6OutRateLimitHost"
// (IPv6); "" for the other verdicts. The first two are in the Icmp lines
// of /proc/net/snmp (nstat prefixes them with Icmp), the last one in
// /proc/net/snmp6.
func (v ICMPVerdict) Reason(f Family) string {
	switch v {
	case ICMPRateLimitedGlobal:
		return "OutRateLimitGlobal"
	case ICMPRateLimitedHost:
		if f == FamilyIPv6 {
			return "Icmp6OutRateLimitHost"
		}
		return "OutRateLimitHost"
	}
	return ""
}

// Kind is what a record tells of its datagram. The records of one datagram
// form a chain: its KindNoPort record where it was dropped, then, if the
// port-unreachable came back to a local socket, a KindDelivery record and,
// if the sender then got the error from a call, a KindSyscall record. They
// share Event.Chain.
type Kind uint8

// Event kinds, as in enum event_kind.
const (
	// KindNoPort is a datagram counted in UDP_MIB_NOPORTS (Udp.NoPorts,
	// Udp6NoPorts): no socket listened on its destination port.
	KindNoPort Kind = 1
	// KindDelivery: the ICMP/ICMPv6 port-unreachable that such a datagram
	// caused reached this host, and the kernel handed it to the UDP socket
	// that sent the datagram (Event.Outcome says what the socket made of
	// it).
	KindDelivery Kind = 2
	// KindSyscall: a call on the sending socket (read, recvmsg, send, ...)
	// returned the error, -ECONNREFUSED, to the process.
	KindSyscall Kind = 3
)

// String returns "noport", "delivery" or "syscall".
func (k Kind) String() string {
	switch k {
	case KindNoPort:
		return "noport"
	case KindDelivery:
		return "delivery"
	case KindSyscall:
		return "syscall"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Outcome is what the kernel did with a port-unreachable that reached the
// sending socket (__udp4_lib_err, __udp6_lib_err): the Outcome of a
// KindDelivery record, carried on into its KindSyscall record.
type Outcome uint8

// Delivery outcomes, as in enum delivery_outcome.
const (
	// OutcomeNone: not a delivery (a KindNoPort record).
	OutcomeNone Outcome = 0
	// OutcomeRefused: the socket is connected; the kernel set its sk_err to
	// ECONNREFUSED, which its next call returns.
	OutcomeRefused Outcome = 1
	// OutcomeQueued: the socket has IP_RECVERR (IPV6_RECVERR): the error
	// went to its error queue (MSG_ERRQUEUE), and sk_err was set too.
	OutcomeQueued Outcome = 2
	// OutcomeIgnored: the socket is not connected and has no IP_RECVERR,
	// so the kernel dropped the error: the process will never know.
	OutcomeIgnored Outcome = 3
	// OutcomeNoSocket: no socket had the datagram's ports any more: the
	// sender closed it before the port-unreachable arrived.
	OutcomeNoSocket Outcome = 4
	// OutcomeUnknown: no socket took the error, but udptrace had not seen
	// the socket send the datagram, so it cannot tell OutcomeIgnored from
	// OutcomeNoSocket.
	OutcomeUnknown Outcome = 5
)

// String returns the outcome's name in JSON output: "" for OutcomeNone,
// "econnrefused", "errqueue", "ignored", "no-socket" or "unknown".
func (o Outcome) String() string {
	switch o {
	case OutcomeNone:
		return ""
	case OutcomeRefused:
		return "econnrefused"
	case OutcomeQueued:
		return "errqueue"
	case OutcomeIgnored:
		return "ignored"
	case OutcomeNoSocket:
		return "no-socket"
	case OutcomeUnknown:
		return "unknown"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Describe returns the outcome in words, as the text output prints it: "" for
// OutcomeNone.
func (o Outcome) Describe() string {
	switch o {
	case OutcomeNone:
		return ""
	case OutcomeRefused:
		return "ECONNREFUSED set on the connected socket"
	case OutcomeQueued:
		return "queued on the error queue (IP_RECVERR); ECONNREFUSED pending"
	case OutcomeIgnored:
		return "ignored: socket not connected, no IP_RECVERR"
	case OutcomeNoSocket:
		return "no socket (closed before the ICMP arrived)"
	case OutcomeUnknown:
		return "unknown: the socket was not seen sending"
	}
	return o.String()
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
	// SenderUntraced: senders were not recorded (udptrace --lean).
	SenderUntraced SenderKind = 2
)

// String returns "remote", "local" or "untraced".
func (s SenderKind) String() string {
	switch s {
	case SenderRemote:
		return "remote"
	case SenderLocal:
		return "local"
	case SenderUntraced:
		return "untraced"
	}
	return "sender(" + strconv.Itoa(int(s)) + ")"
}

// Event is one decoded record.
//
// All kinds describe one datagram, the original one: Family, Src, SPort,
// Dst, DPort and Len are those of the datagram that found no socket, and
// the Sender fields describe the local task that sent it, in KindDelivery
// and KindSyscall records too (where they are the socket's owner).
type Event struct {
	// BootNS is when the record's event happened, in CLOCK_BOOTTIME
	// nanoseconds: when the kernel dropped the datagram (KindNoPort), when
	// the port-unreachable reached the socket (KindDelivery), when the call
	// returned (KindSyscall). Clock.Time converts it to wall-clock time.
	BootNS uint64
	Kind   Kind
	Family Family
	// Src and Dst are 4-byte addresses for FamilyIPv4 and 16-byte ones
	// (IPv4-mapped included, unchanged) for FamilyIPv6.
	Src, Dst     netip.Addr
	SPort, DPort uint16
	// Len is the UDP header's length field: header plus payload.
	Len uint16
	// Netns is the inode number of the network namespace of the receiving
	// device (of the datagram for KindNoPort, of the port-unreachable for
	// KindDelivery), as in the link /proc/PID/ns/net -> net:[Netns].
	Netns   uint32
	IfIndex uint32
	// IfName is the receiving device's name, NUL-terminated unless it is
	// 16 bytes long.
	IfName [16]byte
	// PID (tgid), TID and Comm describe the task that ran the receive path
	// (often a softirq on behalf of whoever was on the CPU, or the sender
	// itself on loopback): context, not necessarily the datagram's sender,
	// which the Sender fields describe. For KindSyscall they are the
	// process that made the call, and CPU the CPU it ran on.
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

	// Chain is the datagram's chain id, the same in all its records (and
	// on any host that traces it): a hash of its addresses, ports, length,
	// IPv4 identification and first payload bytes, as ChainID computes it.
	// 0 means none.
	Chain uint64
	// OriginNS is when the local sender sent the datagram, in
	// CLOCK_BOOTTIME nanoseconds as BootNS; 0 when it was not seen.
	OriginNS uint64
	// SockIno is the inode number of the sending socket, as in the link
	// /proc/PID/fd/N -> socket:[SockIno]; 0 when unknown.
	SockIno uint64
	// FD and Syscall are the file descriptor and the x86-64 system call
	// number (SyscallName names it) of a KindSyscall record's call; -1
	// when unknown, as for calls from io_uring or the kernel, and in
	// records of other kinds.
	FD, Syscall int32
	// Err is the errno of KindDelivery and KindSyscall records
	// (ECONNREFUSED, 111), 0 in KindNoPort ones.
	Err int32
	// Outcome is what the socket made of the port-unreachable
	// (KindDelivery, and KindSyscall which follows one); OutcomeNone in
	// KindNoPort records.
	Outcome Outcome
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
// unknown family, kind, ICMP verdict, sender kind or delivery outcome. For a SenderRemote
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
	if e.Kind < KindNoPort || e.Kind > KindSyscall {
		return fmt.Errorf("unknown event kind %d", b[offKind])
	}
	e.ICMP = ICMPVerdict(b[offICMP])
	if e.ICMP > ICMPRateLimitedHost {
		return fmt.Errorf("unknown icmp verdict %d", b[offICMP])
	}
	e.Sender = SenderKind(b[offSender])
	if e.Sender > SenderUntraced {
		return fmt.Errorf("unknown sender kind %d", b[offSender])
	}
	e.Outcome = Outcome(b[offOutcome])
	if e.Outcome > OutcomeUnknown {
		return fmt.Errorf("unknown delivery outcome %d", b[offOutcome])
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
	e.Chain = ne.Uint64(b[offChain:])
	e.OriginNS = ne.Uint64(b[offOriginNS:])
	e.SockIno = ne.Uint64(b[offSockIno:])
	e.FD = int32(ne.Uint32(b[offFD:]))
	e.Syscall = int32(ne.Uint32(b[offSyscall:]))
	e.Err = int32(ne.Uint32(b[offErr:]))
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
