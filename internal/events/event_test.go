package events

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addrCmp compares netip.Addr values, which have unexported fields.
var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// record is a struct event as the BPF side fills it. Its bytes method lays
// it out by the offsets of bpf/udptrace.h, written out here again rather
// than taken from the package, so that a wrong offset there shows up.
type record struct {
	ts                 uint64
	saddr, daddr       [16]byte
	netns, ifindex     uint32
	pid, tid, cpu      uint32
	sport, dport, ulen uint16
	family, icmp, kind uint8
	sender             uint8
	pad                [2]byte
	ifname, comm       [16]byte

	senderCgroup                                 uint64
	senderPID, senderTID, senderUID, senderNetns uint32
	senderComm                                   [16]byte

	chain, originNS, sockIno uint64
	fd, syscall, err         int32
	outcome                  uint8
	pad2                     [3]byte
}

func (r record) bytes() []byte {
	b := make([]byte, 184)
	ne := binary.NativeEndian
	ne.PutUint64(b[0:], r.ts)
	copy(b[8:24], r.saddr[:])
	copy(b[24:40], r.daddr[:])
	ne.PutUint32(b[40:], r.netns)
	ne.PutUint32(b[44:], r.ifindex)
	ne.PutUint32(b[48:], r.pid)
	ne.PutUint32(b[52:], r.tid)
	ne.PutUint32(b[56:], r.cpu)
	ne.PutUint16(b[60:], r.sport)
	ne.PutUint16(b[62:], r.dport)
	ne.PutUint16(b[64:], r.ulen)
	b[66] = r.family
	b[67] = r.icmp
	b[68] = r.kind
	b[69] = r.sender
	copy(b[70:72], r.pad[:])
	copy(b[72:88], r.ifname[:])
	copy(b[88:104], r.comm[:])
	ne.PutUint64(b[104:], r.senderCgroup)
	ne.PutUint32(b[112:], r.senderPID)
	ne.PutUint32(b[116:], r.senderTID)
	ne.PutUint32(b[120:], r.senderUID)
	ne.PutUint32(b[124:], r.senderNetns)
	copy(b[128:144], r.senderComm[:])
	ne.PutUint64(b[144:], r.chain)
	ne.PutUint64(b[152:], r.originNS)
	ne.PutUint64(b[160:], r.sockIno)
	ne.PutUint32(b[168:], uint32(r.fd))
	ne.PutUint32(b[172:], uint32(r.syscall))
	ne.PutUint32(b[176:], uint32(r.err))
	b[180] = r.outcome
	copy(b[181:184], r.pad2[:])
	return b
}

// name16 returns s in a NUL-padded 16-byte array, as the kernel's char[16].
func name16(s string) [16]byte {
	var a [16]byte
	copy(a[:], s)
	return a
}

// addr16 returns the 16-byte form of an IPv4 or IPv6 address as the BPF
// side stores it: IPv4 in the first 4 bytes, the rest zero.
func addr16(s string) [16]byte {
	a := netip.MustParseAddr(s)
	var b [16]byte
	if a.Is4() {
		v4 := a.As4()
		copy(b[:], v4[:])
		return b
	}
	return a.As16()
}

// loRecord is an IPv4 datagram to a closed port on lo, sent by a local
// task. Every number differs from the others, so that a field read from the
// wrong offset shows up.
func loRecord() record {
	return record{
		ts:      1_234_567_890_123,
		saddr:   addr16("127.0.0.1"),
		daddr:   addr16("127.0.0.1"),
		netns:   4026531840,
		ifindex: 1,
		pid:     123,
		tid:     124,
		cpu:     1,
		sport:   40000,
		dport:   9,
		ulen:    13,
		family:  4,
		icmp:    1,
		kind:    1,
		ifname:  name16("lo"),
		comm:    name16("nc"),

		sender:       1,
		senderCgroup: 0x0102030405060708,
		senderPID:    4321,
		senderTID:    4322,
		senderUID:    1000,
		senderNetns:  4026532000,
		senderComm:   name16("sender-comm"),

		chain:    0x1122334455667788,
		originNS: 1_234_567_000_000,
		sockIno:  5678,
		fd:       -1,
		syscall:  -1,
	}
}

// deliveryRecord is the KindDelivery record of loRecord's datagram: its
// port-unreachable reached the connected socket of the sender, 456 µs
// after the send, on another CPU.
func deliveryRecord() record {
	r := loRecord()
	r.kind = 2
	r.ts = 1_234_567_456_789
	r.cpu = 3
	r.err = 111
	r.outcome = 1
	return r
}

// syscallRecord is the KindSyscall record that follows deliveryRecord:
// the sender's read(7, ...) returned -ECONNREFUSED.
func syscallRecord() record {
	r := deliveryRecord()
	r.kind = 3
	r.ts = 1_234_567_512_345
	r.pid, r.tid, r.cpu = 4321, 4323, 2
	r.comm = name16("sender-thread")
	r.fd = 7
	r.syscall = 0
	return r
}

// remote makes r a record of a datagram from another host: sender 0, and
// junk in the sender part, which the BPF side need not clear.
func remote(r *record) {
	r.sender = 0
	r.senderCgroup = 0xdeadbeefdeadbeef
	r.senderPID, r.senderTID, r.senderUID, r.senderNetns = 77, 78, 79, 80
	r.senderComm = name16("stale")
}

// loChain is the chain part of the Event of loRecord.
func loChain(e Event) Event {
	e.Chain, e.OriginNS, e.SockIno = 0x1122334455667788, 1_234_567_000_000, 5678
	e.FD, e.Syscall = -1, -1
	return e
}

// loSender is the sender part of the Event of loRecord.
func loSender(e Event) Event {
	e.Sender = SenderLocal
	e.SenderCgroup = 0x0102030405060708
	e.SenderPID, e.SenderTID, e.SenderUID, e.SenderNetns = 4321, 4322, 1000, 4026532000
	e.SenderComm = name16("sender-comm")
	return e
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		rec  func() record
		want Event
	}{
		{
			name: "ipv4 sent, local sender",
			rec:  loRecord,
			want: loSender(loChain(Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPSent,
			})),
		},
		{
			name: "ipv4 not-sent, junk after the address and in padding",
			rec: func() record {
				r := loRecord()
				r.saddr = [16]byte{10, 1, 2, 3, 0xde, 0xad, 0xbe, 0xef, 15: 0xff}
				r.daddr = [16]byte{192, 0, 2, 255, 1, 2, 3, 4}
				r.icmp = 2
				r.pad = [2]byte{0xaa, 0xbb}
				r.pad2 = [3]byte{0xcc, 0xdd, 0xee}
				return r
			},
			want: loSender(loChain(Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv4,
				Src: netip.MustParseAddr("10.1.2.3"), Dst: netip.MustParseAddr("192.0.2.255"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPNotSent,
			})),
		},
		{
			name: "ipv4 rate-limited globally",
			rec: func() record {
				r := loRecord()
				r.icmp = 3
				return r
			},
			want: loSender(loChain(Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPRateLimitedGlobal,
			})),
		},
		{
			name: "ipv4 remote sender, sender part zero",
			rec: func() record {
				r := loRecord()
				r.saddr = addr16("192.0.2.7")
				r.daddr = addr16("10.0.0.2")
				r.sender, r.senderCgroup, r.senderComm = 0, 0, [16]byte{}
				r.senderPID, r.senderTID, r.senderUID, r.senderNetns = 0, 0, 0, 0
				r.originNS, r.sockIno = 0, 0
				return r
			},
			want: Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv4,
				Src: netip.MustParseAddr("192.0.2.7"), Dst: netip.MustParseAddr("10.0.0.2"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPSent, Sender: SenderRemote,
				Chain: 0x1122334455667788, FD: -1, Syscall: -1,
			},
		},
		{
			name: "ipv6 unknown verdict, remote sender, junk in the sender part",
			rec: func() record {
				r := loRecord()
				r.family = 6
				r.saddr = addr16("2001:db8::1")
				r.daddr = addr16("fe80::1:2:3:4")
				r.icmp = 0
				r.ifname = name16("eth0")
				remote(&r)
				return r
			},
			// The chain part is not the sender part: kept as is.
			want: loChain(Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv6,
				Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("fe80::1:2:3:4"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("eth0"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPUnknown, Sender: SenderRemote,
			}),
		},
		{
			name: "ipv6 rate-limited per host, v4-mapped kept as ipv6, local sender",
			rec: func() record {
				r := loRecord()
				r.family = 6
				r.saddr = addr16("::ffff:192.0.2.1")
				r.daddr = addr16("::1")
				r.icmp = 4
				return r
			},
			want: loSender(loChain(Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv6,
				Src: netip.MustParseAddr("::ffff:192.0.2.1"), Dst: netip.MustParseAddr("::1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPRateLimitedHost,
			})),
		},
		{
			name: "delivery, connected socket",
			rec:  deliveryRecord,
			want: loSender(Event{
				BootNS: 1_234_567_456_789, Kind: KindDelivery, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 3, Comm: name16("nc"),
				ICMP: ICMPSent, Chain: 0x1122334455667788, OriginNS: 1_234_567_000_000,
				SockIno: 5678, FD: -1, Syscall: -1, Err: 111, Outcome: OutcomeRefused,
			}),
		},
		{
			name: "delivery, no socket, remote sender",
			rec: func() record {
				r := deliveryRecord()
				r.outcome = 4
				remote(&r)
				r.originNS, r.sockIno, r.err = 0, 0, 0
				return r
			},
			want: Event{
				BootNS: 1_234_567_456_789, Kind: KindDelivery, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 3, Comm: name16("nc"),
				ICMP: ICMPSent, Chain: 0x1122334455667788, FD: -1, Syscall: -1,
				Outcome: OutcomeNoSocket,
			},
		},
		{
			name: "syscall",
			rec:  syscallRecord,
			want: loSender(Event{
				BootNS: 1_234_567_512_345, Kind: KindSyscall, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 4321, TID: 4323, CPU: 2, Comm: name16("sender-thread"),
				ICMP: ICMPSent, Chain: 0x1122334455667788, OriginNS: 1_234_567_000_000,
				SockIno: 5678, FD: 7, Syscall: 0, Err: 111, Outcome: OutcomeRefused,
			}),
		},
		{
			name: "maximum values, names without NUL",
			rec: func() record {
				return record{
					ts: math.MaxUint64, saddr: addr16("255.255.255.255"), daddr: addr16("255.255.255.255"),
					netns: math.MaxUint32, ifindex: math.MaxUint32, pid: math.MaxUint32,
					tid: math.MaxUint32, cpu: math.MaxUint32,
					sport: math.MaxUint16, dport: math.MaxUint16, ulen: math.MaxUint16,
					family: 4, icmp: 4, kind: 3, sender: 1, pad: [2]byte{0xff, 0xff},
					ifname: name16("0123456789abcdef"), comm: name16("fedcba9876543210"),
					senderCgroup: math.MaxUint64, senderPID: math.MaxUint32, senderTID: math.MaxUint32,
					senderUID: math.MaxUint32, senderNetns: math.MaxUint32,
					senderComm: name16("ABCDEFGHIJKLMNOP"),
					chain:      math.MaxUint64, originNS: math.MaxUint64, sockIno: math.MaxUint64,
					fd: math.MaxInt32, syscall: math.MaxInt32, err: math.MaxInt32,
					outcome: 5, pad2: [3]byte{0xff, 0xff, 0xff},
				}
			},
			want: Event{
				BootNS: math.MaxUint64, Kind: KindSyscall, Family: FamilyIPv4,
				Src: netip.MustParseAddr("255.255.255.255"), Dst: netip.MustParseAddr("255.255.255.255"),
				SPort: math.MaxUint16, DPort: math.MaxUint16, Len: math.MaxUint16,
				Netns: math.MaxUint32, IfIndex: math.MaxUint32,
				IfName: name16("0123456789abcdef"), PID: math.MaxUint32, TID: math.MaxUint32,
				CPU: math.MaxUint32, Comm: name16("fedcba9876543210"), ICMP: ICMPRateLimitedHost,
				Sender: SenderLocal, SenderCgroup: math.MaxUint64, SenderPID: math.MaxUint32,
				SenderTID: math.MaxUint32, SenderUID: math.MaxUint32, SenderNetns: math.MaxUint32,
				SenderComm: name16("ABCDEFGHIJKLMNOP"),
				Chain:      math.MaxUint64, OriginNS: math.MaxUint64, SockIno: math.MaxUint64,
				FD: math.MaxInt32, Syscall: math.MaxInt32, Err: math.MaxInt32, Outcome: OutcomeUnknown,
			},
		},
		{
			name: "minimum signed values",
			rec: func() record {
				r := syscallRecord()
				r.fd, r.syscall, r.err = math.MinInt32, math.MinInt32+1, math.MinInt32+2
				return r
			},
			want: loSender(Event{
				BootNS: 1_234_567_512_345, Kind: KindSyscall, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 4321, TID: 4323, CPU: 2, Comm: name16("sender-thread"),
				ICMP: ICMPSent, Chain: 0x1122334455667788, OriginNS: 1_234_567_000_000,
				SockIno: 5678, FD: math.MinInt32, Syscall: math.MinInt32 + 1, Err: math.MinInt32 + 2,
				Outcome: OutcomeRefused,
			}),
		},
		{
			name: "local sender with zero numbers and no name",
			rec: func() record {
				r := loRecord()
				r.senderCgroup, r.senderComm = 0, [16]byte{}
				r.senderPID, r.senderTID, r.senderUID, r.senderNetns = 0, 0, 0, 0
				return r
			},
			want: loChain(Event{
				BootNS: 1_234_567_890_123, Kind: KindNoPort, Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
				IfName: name16("lo"), PID: 123, TID: 124, CPU: 1, Comm: name16("nc"),
				ICMP: ICMPSent, Sender: SenderLocal,
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.rec().bytes()
			if len(b) != RecordSize {
				t.Fatalf("test record is %d bytes, RecordSize %d", len(b), RecordSize)
			}
			var got Event
			if err := Decode(b, &got); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
				t.Errorf("Decode mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeOverwrites(t *testing.T) {
	// Decode fills every field: nothing of the previous event survives,
	// the sender of a local event included.
	r6 := loRecord()
	r6.family = 6
	r6.saddr = addr16("2001:db8::1")
	r6.daddr = addr16("2001:db8::2")
	var e Event
	if err := Decode(r6.bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Sender != SenderLocal || e.SenderPID != 4321 {
		t.Fatalf("first Decode: sender %v, pid %d", e.Sender, e.SenderPID)
	}
	r4 := record{family: 4, kind: 1} // everything else zero: a remote sender
	if err := Decode(r4.bytes(), &e); err != nil {
		t.Fatal(err)
	}
	want := Event{Kind: KindNoPort, Family: FamilyIPv4,
		Src: netip.AddrFrom4([4]byte{}), Dst: netip.AddrFrom4([4]byte{})}
	if diff := cmp.Diff(want, e, addrCmp); diff != "" {
		t.Errorf("second Decode mismatch (-want +got):\n%s", diff)
	}

	// A remote record's stale sender bytes do not leak into the Event.
	if err := Decode(r6.bytes(), &e); err != nil {
		t.Fatal(err)
	}
	r4 = record{family: 4, kind: 1}
	remote(&r4)
	if err := Decode(r4.bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, e, addrCmp); diff != "" {
		t.Errorf("remote Decode after a local one mismatch (-want +got):\n%s", diff)
	}
}

func TestDecodeSize(t *testing.T) {
	valid := loRecord().bytes()
	tests := []struct {
		n    int
		want string
	}{
		{0, "short record: 0 bytes, want 184"},
		{1, "short record: 1 bytes, want 184"},
		{103, "short record: 103 bytes, want 184"},
		{104, "short record: 104 bytes, want 184"}, // the record before the sender part
		{143, "short record: 143 bytes, want 184"},
		{144, "short record: 144 bytes, want 184"}, // the record before the chain part
		{183, "short record: 183 bytes, want 184"},
		{185, "oversized record: 185 bytes, want 184"},
		{4096, "oversized record: 4096 bytes, want 184"},
	}
	for _, tt := range tests {
		b := make([]byte, tt.n)
		copy(b, valid) // a valid prefix: only the size is wrong
		var e Event
		err := Decode(b, &e)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%d bytes) = %v, want %q", tt.n, err, tt.want)
		}
	}
	if err := Decode(nil, new(Event)); err == nil {
		t.Error("Decode(nil) succeeded")
	}
}

func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*record)
		want   string
	}{
		{"family 0", func(r *record) { r.family = 0 }, "unknown address family 0"},
		{"family AF_INET", func(r *record) { r.family = 2 }, "unknown address family 2"},
		{"family 5", func(r *record) { r.family = 5 }, "unknown address family 5"},
		{"family AF_INET6", func(r *record) { r.family = 10 }, "unknown address family 10"},
		{"family 255", func(r *record) { r.family = 255 }, "unknown address family 255"},
		{"kind 0", func(r *record) { r.kind = 0 }, "unknown event kind 0"},
		{"kind 4", func(r *record) { r.kind = 4 }, "unknown event kind 4"},
		{"kind 255", func(r *record) { r.kind = 255 }, "unknown event kind 255"},
		{"icmp 5", func(r *record) { r.icmp = 5 }, "unknown icmp verdict 5"},
		{"icmp 255", func(r *record) { r.icmp = 255 }, "unknown icmp verdict 255"},
		{"sender 3", func(r *record) { r.sender = 3 }, "unknown sender kind 3"},
		{"sender 128", func(r *record) { r.sender = 128 }, "unknown sender kind 128"},
		{"sender 255", func(r *record) { r.sender = 255 }, "unknown sender kind 255"},
		{"outcome 6", func(r *record) { r.outcome = 6 }, "unknown delivery outcome 6"},
		{"outcome 6 of a delivery", func(r *record) { *r = deliveryRecord(); r.outcome = 6 }, "unknown delivery outcome 6"},
		{"outcome 255", func(r *record) { r.outcome = 255 }, "unknown delivery outcome 255"},
		{"sender 3, zero sender part", func(r *record) {
			remote(r)
			r.sender = 3
			r.senderCgroup, r.senderComm = 0, [16]byte{}
			r.senderPID, r.senderTID, r.senderUID, r.senderNetns = 0, 0, 0, 0
		}, "unknown sender kind 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loRecord()
			tt.modify(&r)
			err := Decode(r.bytes(), new(Event))
			if err == nil || err.Error() != tt.want {
				t.Errorf("Decode = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	b4 := loRecord().bytes()
	r6 := loRecord()
	r6.family = 6
	r6.saddr = addr16("2001:db8::1")
	remote(&r6)
	b6 := r6.bytes()
	bd := deliveryRecord().bytes()
	bs := syscallRecord().bytes()
	bad := loRecord()
	bad.sender = 3
	bbad := bad.bytes()
	var e Event
	allocs := testing.AllocsPerRun(1000, func() {
		for _, b := range [][]byte{b4, b6, bd, bs} {
			if err := Decode(b, &e); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocates %v times per call, want 0", allocs)
	}
	// Errors may allocate their message, but must not panic.
	if err := Decode(bbad, &e); err == nil {
		t.Error("Decode accepted sender 3")
	}
}

func TestEventNames(t *testing.T) {
	e := Event{IfName: name16("eth0"), Comm: name16("nc\x00junk")}
	if got := e.IfNameString(); got != "eth0" {
		t.Errorf("IfNameString() = %q, want %q", got, "eth0")
	}
	if got := e.CommString(); got != "nc" {
		t.Errorf("CommString() = %q, want %q", got, "nc")
	}
	if got := e.SenderCommString(); got != "" {
		t.Errorf("SenderCommString() of zeros = %q, want empty", got)
	}
	e.SenderComm = name16("python3\x00\x00junk")
	if got := e.SenderCommString(); got != "python3" {
		t.Errorf("SenderCommString() = %q, want %q", got, "python3")
	}
	e.SenderComm = name16("ABCDEFGHIJKLMNOP")
	if got := e.SenderCommString(); got != "ABCDEFGHIJKLMNOP" {
		t.Errorf("SenderCommString() without NUL = %q", got)
	}
	e = Event{IfName: name16("0123456789abcdef")}
	if got := e.IfNameString(); got != "0123456789abcdef" {
		t.Errorf("IfNameString() without NUL = %q", got)
	}
	if got := e.CommString(); got != "" {
		t.Errorf("CommString() of zeros = %q, want empty", got)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got  interface{ String() string }
		want string
	}{
		{FamilyIPv4, "ipv4"},
		{FamilyIPv6, "ipv6"},
		{Family(2), "family(2)"},
		{ICMPUnknown, "unknown"},
		{ICMPSent, "sent"},
		{ICMPNotSent, "not-sent"},
		{ICMPRateLimitedGlobal, "rate-limited"},
		{ICMPRateLimitedHost, "rate-limited"},
		{ICMPVerdict(5), "icmp(5)"},
		{KindNoPort, "noport"},
		{KindDelivery, "delivery"},
		{KindSyscall, "syscall"},
		{Kind(0), "kind(0)"},
		{Kind(4), "kind(4)"},
		{OutcomeNone, ""},
		{OutcomeRefused, "econnrefused"},
		{OutcomeQueued, "errqueue"},
		{OutcomeIgnored, "ignored"},
		{OutcomeNoSocket, "no-socket"},
		{OutcomeUnknown, "unknown"},
		{Outcome(6), "outcome(6)"},
		{SenderRemote, "remote"},
		{SenderLocal, "local"},
		{SenderUntraced, "untraced"},
		{SenderKind(3), "sender(3)"},
		{FormatText, "text"},
		{FormatJSON, "json"},
		{Format(7), "format(7)"},
	}
	for _, tt := range tests {
		if got := tt.got.String(); got != tt.want {
			t.Errorf("%T(%v).String() = %q, want %q", tt.got, tt.got, got, tt.want)
		}
	}
}

func TestDecodeKindsVerdictsOutcomes(t *testing.T) {
	// Every valid value decodes to itself, in any combination.
	for kind := uint8(1); kind <= 3; kind++ {
		for icmp := uint8(0); icmp <= 4; icmp++ {
			for outcome := uint8(0); outcome <= 5; outcome++ {
				r := loRecord()
				r.kind, r.icmp, r.outcome = kind, icmp, outcome
				var e Event
				if err := Decode(r.bytes(), &e); err != nil {
					t.Errorf("kind %d icmp %d outcome %d: %v", kind, icmp, outcome, err)
					continue
				}
				if e.Kind != Kind(kind) || e.ICMP != ICMPVerdict(icmp) || e.Outcome != Outcome(outcome) {
					t.Errorf("kind %d icmp %d outcome %d decode to %v %v %v", kind, icmp, outcome,
						e.Kind, e.ICMP, e.Outcome)
				}
			}
		}
	}
}

func TestICMPReason(t *testing.T) {
	tests := []struct {
		v    ICMPVerdict
		f    Family
		want string
	}{
		{ICMPUnknown, FamilyIPv4, ""},
		{ICMPSent, FamilyIPv4, ""},
		{ICMPNotSent, FamilyIPv6, ""},
		{ICMPRateLimitedGlobal, FamilyIPv4, "OutRateLimitGlobal"},
		{ICMPRateLimitedGlobal, FamilyIPv6, "OutRateLimitGlobal"},
		{ICMPRateLimitedHost, FamilyIPv4, "OutRateLimitHost"},
		{ICMPRateLimitedHost, FamilyIPv6, "Icmp6OutRateLimitHost"},
		{ICMPVerdict(5), FamilyIPv4, ""},
	}
	for _, tt := range tests {
		if got := tt.v.Reason(tt.f); got != tt.want {
			t.Errorf("%v.Reason(%v) = %q, want %q", tt.v, tt.f, got, tt.want)
		}
	}
}

func TestOutcomeDescribe(t *testing.T) {
	tests := []struct {
		o    Outcome
		want string
	}{
		{OutcomeNone, ""},
		{OutcomeRefused, "ECONNREFUSED set on the connected socket"},
		{OutcomeQueued, "queued on the error queue (IP_RECVERR); ECONNREFUSED pending"},
		{OutcomeIgnored, "ignored: socket not connected, no IP_RECVERR"},
		{OutcomeNoSocket, "no socket (closed before the ICMP arrived)"},
		{OutcomeUnknown, "unknown: the socket was not seen sending"},
		{Outcome(6), "outcome(6)"},
	}
	for _, tt := range tests {
		if got := tt.o.Describe(); got != tt.want {
			t.Errorf("Outcome(%d).Describe() = %q, want %q", uint8(tt.o), got, tt.want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []Format{FormatText, FormatJSON} {
		got, err := ParseFormat(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v", f.String(), got, err, f)
		}
	}
	for _, s := range []string{"", "JSON", "yaml"} {
		if _, err := ParseFormat(s); err == nil || !strings.Contains(err.Error(), "unknown output format") {
			t.Errorf("ParseFormat(%q) error = %v, want unknown output format", s, err)
		}
	}
}

// BenchmarkDecode decodes a record with a local sender, the longer path.
func BenchmarkDecode(b *testing.B) {
	rec := loRecord().bytes()
	var e Event
	b.ReportAllocs()
	b.SetBytes(RecordSize)
	for b.Loop() {
		if err := Decode(rec, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRemote(b *testing.B) {
	r := loRecord()
	remote(&r)
	rec := r.bytes()
	var e Event
	b.ReportAllocs()
	b.SetBytes(RecordSize)
	for b.Loop() {
		if err := Decode(rec, &e); err != nil {
			b.Fatal(err)
		}
	}
}
