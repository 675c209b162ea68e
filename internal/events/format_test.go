package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testTime is the wall-clock time that the events of these tests carry:
// 2026-11-25T14:16:02.123456789Z, with a boot time of 1234.000000123 s.
var testTime = time.Date(2026, 11, 25, 14, 16, 2, 123456789, time.UTC)

const testBootNS = 1234_000_000_123

var testClock = ClockWithOffset(testTime.UnixNano() - testBootNS)

// loEvent is a datagram that nc (PID 123) sent to a closed port on lo,
// at testTime: the example of the Format doc comments.
func loEvent() Event {
	return Event{
		BootNS: testBootNS, Kind: KindNoPort, Family: FamilyIPv4,
		Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
		SPort: 40000, DPort: 9, Len: 13, Netns: 4026531840, IfIndex: 1,
		IfName: name16("lo"), PID: 123, TID: 123, CPU: 1, Comm: name16("nc"),
		ICMP:   ICMPSent,
		Sender: SenderLocal, SenderPID: 123, SenderTID: 123, SenderUID: 1000,
		SenderComm: name16("nc"), SenderCgroup: 5183, SenderNetns: 4026531840,
		// nc sent it 41.234 µs before, from socket:[5678]; the datagram
		// had IPv4 id 54321 and payload "hello\n" (loChainKey).
		Chain: 0xaa33a51c58da1f8d, OriginNS: testBootNS - 41_234, SockIno: 5678,
		FD: -1, Syscall: -1,
	}
}

// loChainKey is the chain key of loEvent's datagram.
func loChainKey() ChainKey {
	return ChainKey{Family: FamilyIPv4, IPID: 54321,
		Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
		SPort: 40000, DPort: 9, Len: 13, Payload: []byte("hello\n")}
}

// deliveryEvent is the KindDelivery record of loEvent's datagram: the
// port-unreachable reached nc's connected socket 45 µs after the drop.
func deliveryEvent() Event {
	e := loEvent()
	e.Kind = KindDelivery
	e.BootNS = testBootNS + 45_000
	e.Err = 111
	e.Outcome = OutcomeRefused
	return e
}

// syscallEvent is the KindSyscall record that follows deliveryEvent: nc's
// read(3, ...) returned -ECONNREFUSED 512 µs after the send.
func syscallEvent() Event {
	e := deliveryEvent()
	e.Kind = KindSyscall
	e.BootNS = e.OriginNS + 512_000
	e.TID, e.CPU = 124, 2
	e.FD, e.Syscall = 3, 0
	return e
}

// remoteEvent is a datagram from another host to a closed port on eth0,
// the second example of the FormatText doc comment.
func remoteEvent() Event {
	return Event{
		BootNS: testBootNS + 111_111_000, Kind: KindNoPort, Family: FamilyIPv4,
		Src: netip.MustParseAddr("192.0.2.7"), Dst: netip.MustParseAddr("10.0.0.2"),
		SPort: 53124, DPort: 161, Len: 40, Netns: 4026531840, IfIndex: 2,
		IfName: name16("eth0"), PID: 0, TID: 0, CPU: 0, Comm: name16("swapper/0"),
		ICMP: ICMPNotSent, Sender: SenderRemote,
		Chain: 0x04283584c686943f, FD: -1, Syscall: -1,
	}
}

// jsonEvent mirrors the FormatJSON schema, for encoding/json.
type jsonEvent struct {
	Type    string `json:"type"`
	Time    string `json:"time"`
	Kind    string `json:"kind"`
	Family  string `json:"family"`
	Src     string `json:"src"`
	SPort   uint16 `json:"sport"`
	Dst     string `json:"dst"`
	DPort   uint16 `json:"dport"`
	Len     uint16 `json:"len"`
	IfIndex uint32 `json:"ifindex"`
	IfName  string `json:"ifname"`
	Netns   uint32 `json:"netns"`
	ICMP    string `json:"icmp"`
	CPU     uint32 `json:"cpu"`
	PID     uint32 `json:"ctx_pid"`
	TID     uint32 `json:"ctx_tid"`
	Comm    string `json:"ctx_comm"`

	Sender       string `json:"sender"`
	SenderPID    uint32 `json:"sender_pid"`
	SenderTID    uint32 `json:"sender_tid"`
	SenderUID    uint32 `json:"sender_uid"`
	SenderComm   string `json:"sender_comm"`
	SenderCgroup uint64 `json:"sender_cgroup"`
	SenderNetns  uint32 `json:"sender_netns"`

	Chain       string `json:"chain"`
	ICMPReason  string `json:"icmp_reason"`
	Delivery    string `json:"delivery"`
	SockIno     uint64 `json:"sock_ino"`
	Syscall     string `json:"syscall"`
	FD          int32  `json:"fd"`
	Errno       string `json:"errno"`
	SinceSendNS uint64 `json:"since_send_ns"`
}

// schemaKeys are the keys of a FormatJSON line, in their order.
var schemaKeys = []string{"type", "time", "kind", "family", "src", "sport", "dst", "dport",
	"len", "ifindex", "ifname", "netns", "icmp", "cpu", "ctx_pid", "ctx_tid", "ctx_comm",
	"sender", "sender_pid", "sender_tid", "sender_uid", "sender_comm", "sender_cgroup", "sender_netns",
	"chain", "icmp_reason", "delivery", "sock_ino", "syscall", "fd", "errno", "since_send_ns"}

// printLine prints e with a new Printer in format f and returns the output.
func printLine(t testing.TB, f Format, e *Event) string {
	t.Helper()
	var out bytes.Buffer
	p := NewPrinter(&out, f, testClock)
	p.loc = time.UTC
	if err := p.Event(e); err != nil {
		t.Fatalf("Event: %v", err)
	}
	return out.String()
}

// parseJSONLine decodes one FormatJSON line strictly: unknown keys, keys
// out of order and trailing data are errors.
func parseJSONLine(line string) (jsonEvent, error) {
	var je jsonEvent
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		return je, errors.New("not one line ending in a newline")
	}
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&je); err != nil {
		return je, err
	}
	if dec.More() {
		return je, errors.New("data after the object")
	}
	// The order of the keys.
	dec = json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return je, err
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return je, err
		}
		keys = append(keys, k.(string))
		if _, err := dec.Token(); err != nil { // the value: no nesting
			return je, err
		}
	}
	if diff := cmp.Diff(schemaKeys, keys); diff != "" {
		return je, errors.New("keys (-want +got):\n" + diff)
	}
	return je, nil
}

func TestPrinterJSONExample(t *testing.T) {
	// The examples of the FormatJSON doc comment, byte for byte.
	e := loEvent()
	want := `{"type":"event","time":"2026-11-25T14:16:02.123456789Z","kind":"noport",` +
		`"family":"ipv4","src":"127.0.0.1","sport":40000,"dst":"127.0.0.1","dport":9,` +
		`"len":13,"ifindex":1,"ifname":"lo","netns":4026531840,"icmp":"sent","cpu":1,` +
		`"ctx_pid":123,"ctx_tid":123,"ctx_comm":"nc","sender":"local","sender_pid":123,` +
		`"sender_tid":123,"sender_uid":1000,"sender_comm":"nc","sender_cgroup":5183,` +
		`"sender_netns":4026531840,"chain":"aa33a51c58da1f8d","icmp_reason":"",` +
		`"delivery":"","sock_ino":5678,"syscall":"","fd":-1,"errno":"","since_send_ns":41234}` + "\n"
	if got := printLine(t, FormatJSON, &e); got != want {
		t.Errorf("JSON line\n got %s\nwant %s", got, want)
	}

	tests := []struct {
		name    string
		e       Event
		wantEnd string
	}{
		{"remote", remoteEvent(), `"ctx_comm":"swapper/0",` +
			`"sender":"remote","sender_pid":0,"sender_tid":0,"sender_uid":0,` +
			`"sender_comm":"","sender_cgroup":0,"sender_netns":0,` +
			`"chain":"04283584c686943f","icmp_reason":"","delivery":"","sock_ino":0,` +
			`"syscall":"","fd":-1,"errno":"","since_send_ns":0}` + "\n"},
		{"delivery", deliveryEvent(), `"sender_netns":4026531840,` +
			`"chain":"aa33a51c58da1f8d","icmp_reason":"","delivery":"econnrefused",` +
			`"sock_ino":5678,"syscall":"","fd":-1,"errno":"ECONNREFUSED","since_send_ns":86234}` + "\n"},
		{"syscall", syscallEvent(), `"sender_netns":4026531840,` +
			`"chain":"aa33a51c58da1f8d","icmp_reason":"","delivery":"econnrefused",` +
			`"sock_ino":5678,"syscall":"read","fd":3,"errno":"ECONNREFUSED","since_send_ns":512000}` + "\n"},
	}
	for _, tt := range tests {
		if got := printLine(t, FormatJSON, &tt.e); !strings.HasSuffix(got, tt.wantEnd) {
			t.Errorf("%s JSON line\n got %s\nwant it to end in %s", tt.name, got, tt.wantEnd)
		}
	}
	e = syscallEvent()
	wantStart := `{"type":"event","time":"2026-11-25T14:16:02.123927555Z","kind":"syscall",` +
		`"family":"ipv4","src":"127.0.0.1","sport":40000,"dst":"127.0.0.1","dport":9,` +
		`"len":13,"ifindex":1,"ifname":"lo","netns":4026531840,"icmp":"sent","cpu":2,` +
		`"ctx_pid":123,"ctx_tid":124,"ctx_comm":"nc","sender":"local",`
	if got := printLine(t, FormatJSON, &e); !strings.HasPrefix(got, wantStart) {
		t.Errorf("syscall JSON line\n got %s\nwant it to start with %s", got, wantStart)
	}
}

// loChainJSON sets the chain keys of loEvent in j, but since_send_ns.
func loChainJSON(j jsonEvent) jsonEvent {
	j.Chain, j.SockIno, j.FD = "aa33a51c58da1f8d", 5678, -1
	return j
}

func TestPrinterJSON(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Event)
		want   jsonEvent
	}{
		{
			name:   "ipv4 sent, local sender",
			modify: func(*Event) {},
			want: loChainJSON(jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.123456789Z", Kind: "noport",
				Family: "ipv4", Src: "127.0.0.1", SPort: 40000, Dst: "127.0.0.1", DPort: 9, Len: 13,
				IfIndex: 1, IfName: "lo", Netns: 4026531840, ICMP: "sent", CPU: 1, PID: 123, TID: 123,
				Comm: "nc", Sender: "local", SenderPID: 123, SenderTID: 123, SenderUID: 1000,
				SenderComm: "nc", SenderCgroup: 5183, SenderNetns: 4026531840,
				SinceSendNS: 41234}),
		},
		{
			name: "local sender, distinct values, another namespace",
			modify: func(e *Event) {
				e.SenderPID, e.SenderTID, e.SenderUID = 4321, 4322, 65534
				e.SenderComm = name16("dig")
				e.SenderCgroup = 0x0102030405060708
				e.SenderNetns = 4026532000
			},
			want: loChainJSON(jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.123456789Z", Kind: "noport",
				Family: "ipv4", Src: "127.0.0.1", SPort: 40000, Dst: "127.0.0.1", DPort: 9, Len: 13,
				IfIndex: 1, IfName: "lo", Netns: 4026531840, ICMP: "sent", CPU: 1, PID: 123, TID: 123,
				Comm: "nc", Sender: "local", SenderPID: 4321, SenderTID: 4322, SenderUID: 65534,
				SenderComm: "dig", SenderCgroup: 0x0102030405060708, SenderNetns: 4026532000,
				SinceSendNS: 41234}),
		},
		{
			name: "ipv6 not-sent, time with zero fraction, remote sender",
			modify: func(e *Event) {
				e.BootNS -= 123456789 // now before OriginNS: since_send_ns 0
				e.Family = FamilyIPv6
				e.Src = netip.MustParseAddr("2001:0db8:0000:0000:0000:0000:0000:0001")
				e.Dst = netip.MustParseAddr("fe80::abcd:0:0:1")
				e.ICMP = ICMPNotSent
				e.IfName = name16("eth0")
				e.IfIndex = 2
				e.PID, e.TID = 0, 0
				e.Comm = name16("swapper/3")
				e.CPU = 3
				e.Sender = SenderRemote // the other sender fields left as they were
			},
			want: loChainJSON(jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.000000000Z", Kind: "noport",
				Family: "ipv6", Src: "2001:db8::1", SPort: 40000, Dst: "fe80::abcd:0:0:1", DPort: 9,
				Len: 13, IfIndex: 2, IfName: "eth0", Netns: 4026531840, ICMP: "not-sent", CPU: 3,
				Comm: "swapper/3", Sender: "remote"}),
		},
		{
			name: "unknown verdict, v4-mapped, empty names, maximum numbers",
			modify: func(e *Event) {
				e.Family = FamilyIPv6
				e.Src = netip.MustParseAddr("::ffff:192.0.2.1")
				e.Dst = netip.MustParseAddr("::")
				e.ICMP = ICMPUnknown
				e.IfName = [16]byte{}
				e.Comm = [16]byte{}
				e.SPort, e.DPort, e.Len = math.MaxUint16, math.MaxUint16, math.MaxUint16
				e.IfIndex, e.Netns, e.CPU = math.MaxUint32, math.MaxUint32, math.MaxUint32
				e.PID, e.TID = math.MaxUint32, math.MaxUint32
				e.SenderPID, e.SenderTID, e.SenderUID = math.MaxUint32, math.MaxUint32, math.MaxUint32
				e.SenderNetns, e.SenderCgroup = math.MaxUint32, math.MaxUint64
				e.SenderComm = [16]byte{}
			},
			want: loChainJSON(jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.123456789Z", Kind: "noport",
				Family: "ipv6", Src: "::ffff:192.0.2.1", SPort: math.MaxUint16, Dst: "::",
				DPort: math.MaxUint16, Len: math.MaxUint16, IfIndex: math.MaxUint32,
				Netns: math.MaxUint32, ICMP: "unknown", CPU: math.MaxUint32, PID: math.MaxUint32,
				TID: math.MaxUint32, Sender: "local", SenderPID: math.MaxUint32,
				SenderTID: math.MaxUint32, SenderUID: math.MaxUint32, SenderCgroup: math.MaxUint64,
				SenderNetns: math.MaxUint32,
				SinceSendNS: 41234}),
		},
		{
			name: "hostile names",
			modify: func(e *Event) {
				e.IfName = name16("a\"b\\c\td")
				e.Comm = [16]byte{'"', '\\', 0x1b, '[', '2', 'J', 0x7f, 0xff, 0xc3, '(', 0xe2, 0x80, 0xa8, 'x', 'y', 'z'}
				e.SenderComm = [16]byte{0x1b, ']', '0', ';', '"', 0xe2, 0x80, 0xa9, 0xed, 0xa0, 0x80, '\\', 0xc2, 0x85, 'q', 'r'}
			},
			want: loChainJSON(jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.123456789Z", Kind: "noport",
				Family: "ipv4", Src: "127.0.0.1", SPort: 40000, Dst: "127.0.0.1", DPort: 9, Len: 13,
				IfIndex: 1, IfName: "a\"b\\c\td", Netns: 4026531840, ICMP: "sent", CPU: 1, PID: 123,
				TID: 123, Comm: "\"\\\x1b[2J\x7f\ufffd\ufffd(\u2028xyz", Sender: "local",
				SenderPID: 123, SenderTID: 123, SenderUID: 1000,
				SenderComm: "\x1b]0;\"\u2029\ufffd\ufffd\ufffd\\\u0085qr", SenderCgroup: 5183,
				SenderNetns: 4026531840,
				SinceSendNS: 41234}),
		},
		{
			name: "sender kind no Decode returns",
			modify: func(e *Event) {
				e.Sender = SenderKind(9)
			},
			want: loChainJSON(jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.123456789Z", Kind: "noport",
				Family: "ipv4", Src: "127.0.0.1", SPort: 40000, Dst: "127.0.0.1", DPort: 9, Len: 13,
				IfIndex: 1, IfName: "lo", Netns: 4026531840, ICMP: "sent", CPU: 1, PID: 123, TID: 123,
				Comm: "nc", Sender: "sender(9)",
				SinceSendNS: 41234}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loEvent()
			tt.modify(&e)
			line := printLine(t, FormatJSON, &e)
			if !json.Valid([]byte(line)) {
				t.Fatalf("invalid JSON: %s", line)
			}
			got, err := parseJSONLine(line)
			if err != nil {
				t.Fatalf("parse %s: %v", line, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("JSON mismatch (-want +got):\n%s\nline: %s", diff, line)
			}
			// The time parses back to the event's instant.
			ts, err := time.Parse(time.RFC3339Nano, got.Time)
			if err != nil {
				t.Fatal(err)
			}
			if want := testClock.Time(e.BootNS); !ts.Equal(want) {
				t.Errorf("time %v, want %v", ts, want)
			}
		})
	}
}

// loJSON is the FormatJSON line of loEvent, decoded.
func loJSON() jsonEvent {
	return jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.123456789Z", Kind: "noport",
		Family: "ipv4", Src: "127.0.0.1", SPort: 40000, Dst: "127.0.0.1", DPort: 9, Len: 13,
		IfIndex: 1, IfName: "lo", Netns: 4026531840, ICMP: "sent", CPU: 1, PID: 123, TID: 123,
		Comm: "nc", Sender: "local", SenderPID: 123, SenderTID: 123, SenderUID: 1000,
		SenderComm: "nc", SenderCgroup: 5183, SenderNetns: 4026531840,
		Chain: "aa33a51c58da1f8d", SockIno: 5678, FD: -1, SinceSendNS: 41234}
}

// TestPrinterJSONChain checks the keys of the chain: kinds, verdicts,
// outcomes, syscalls and the time since the send.
func TestPrinterJSONChain(t *testing.T) {
	tests := []struct {
		name   string
		event  func() Event
		modify func(*Event)
		want   func(*jsonEvent) // from loJSON
	}{
		{
			name:  "ipv4 rate-limited globally",
			event: loEvent,
			modify: func(e *Event) {
				e.ICMP = ICMPRateLimitedGlobal
			},
			want: func(j *jsonEvent) {
				j.ICMP, j.ICMPReason = "rate-limited", "OutRateLimitGlobal"
			},
		},
		{
			name:  "ipv4 rate-limited per host",
			event: loEvent,
			modify: func(e *Event) {
				e.ICMP = ICMPRateLimitedHost
			},
			want: func(j *jsonEvent) {
				j.ICMP, j.ICMPReason = "rate-limited", "OutRateLimitHost"
			},
		},
		{
			name:  "ipv6 rate-limited per host",
			event: loEvent,
			modify: func(e *Event) {
				e.Family = FamilyIPv6
				e.Src, e.Dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
				e.ICMP = ICMPRateLimitedHost
			},
			want: func(j *jsonEvent) {
				j.Family, j.Src, j.Dst = "ipv6", "2001:db8::1", "2001:db8::2"
				j.ICMP, j.ICMPReason = "rate-limited", "Icmp6OutRateLimitHost"
			},
		},
		{
			name:  "ipv6 rate-limited globally",
			event: loEvent,
			modify: func(e *Event) {
				e.Family = FamilyIPv6
				e.Src, e.Dst = netip.MustParseAddr("::1"), netip.MustParseAddr("::1")
				e.ICMP = ICMPRateLimitedGlobal
			},
			want: func(j *jsonEvent) {
				j.Family, j.Src, j.Dst = "ipv6", "::1", "::1"
				j.ICMP, j.ICMPReason = "rate-limited", "OutRateLimitGlobal"
			},
		},
		{
			name:  "no chain, sender not seen",
			event: remoteEvent,
			modify: func(e *Event) {
				e.Chain = 0
			},
			want: func(j *jsonEvent) {
				*j = jsonEvent{Type: "event", Time: "2026-11-25T14:16:02.234567789Z", Kind: "noport",
					Family: "ipv4", Src: "192.0.2.7", SPort: 53124, Dst: "10.0.0.2", DPort: 161,
					Len: 40, IfIndex: 2, IfName: "eth0", Netns: 4026531840, ICMP: "not-sent",
					Comm: "swapper/0", Sender: "remote", FD: -1}
			},
		},
		{
			name:  "leading zeros, maximum numbers",
			event: loEvent,
			modify: func(e *Event) {
				e.Chain = 0x00000000000000ff
				e.SockIno = math.MaxUint64
				e.OriginNS = 1
			},
			want: func(j *jsonEvent) {
				j.Chain, j.SockIno, j.SinceSendNS = "00000000000000ff", math.MaxUint64, testBootNS-1
			},
		},
		{
			name:  "maximum chain, sent in the same nanosecond",
			event: loEvent,
			modify: func(e *Event) {
				e.Chain = math.MaxUint64
				e.OriginNS = e.BootNS
			},
			want: func(j *jsonEvent) {
				j.Chain, j.SinceSendNS = "ffffffffffffffff", 0
			},
		},
		{
			name:  "noport with stale syscall fields",
			event: loEvent,
			modify: func(e *Event) {
				e.FD, e.Syscall = 3, 0
			},
			want: func(*jsonEvent) {},
		},
		{
			name:   "delivery, connected socket",
			event:  deliveryEvent,
			modify: func(*Event) {},
			want: func(j *jsonEvent) {
				j.Time, j.Kind = "2026-11-25T14:16:02.123501789Z", "delivery"
				j.Delivery, j.Errno, j.SinceSendNS = "econnrefused", "ECONNREFUSED", 86234
			},
		},
		{
			name:  "delivery, error queue",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome = OutcomeQueued
			},
			want: func(j *jsonEvent) {
				j.Time, j.Kind = "2026-11-25T14:16:02.123501789Z", "delivery"
				j.Delivery, j.Errno, j.SinceSendNS = "errqueue", "ECONNREFUSED", 86234
			},
		},
		{
			name:  "delivery, ignored",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Err = OutcomeIgnored, 0
			},
			want: func(j *jsonEvent) {
				j.Time, j.Kind = "2026-11-25T14:16:02.123501789Z", "delivery"
				j.Delivery, j.SinceSendNS = "ignored", 86234
			},
		},
		{
			name:  "delivery, no socket, remote sender",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Err = OutcomeNoSocket, 0
				e.Sender, e.SockIno, e.OriginNS = SenderRemote, 0, 0
			},
			want: func(j *jsonEvent) {
				j.Time, j.Kind = "2026-11-25T14:16:02.123501789Z", "delivery"
				j.Sender, j.SenderPID, j.SenderTID, j.SenderUID, j.SenderComm = "remote", 0, 0, 0, ""
				j.SenderCgroup, j.SenderNetns = 0, 0
				j.Delivery, j.SockIno, j.SinceSendNS = "no-socket", 0, 0
			},
		},
		{
			name:  "delivery, unknown",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Err = OutcomeUnknown, 0
			},
			want: func(j *jsonEvent) {
				j.Time, j.Kind = "2026-11-25T14:16:02.123501789Z", "delivery"
				j.Delivery, j.SinceSendNS = "unknown", 86234
			},
		},
		{
			name:   "syscall read",
			event:  syscallEvent,
			modify: func(*Event) {},
			want: func(j *jsonEvent) {
				j.Time, j.Kind, j.CPU, j.TID = "2026-11-25T14:16:02.123927555Z", "syscall", 2, 124
				j.Delivery, j.Syscall, j.FD, j.Errno, j.SinceSendNS = "econnrefused", "read", 3, "ECONNREFUSED", 512000
			},
		},
		{
			name:  "syscall unknown, another errno",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall, e.FD, e.Err = -1, -1, 11
			},
			want: func(j *jsonEvent) {
				j.Time, j.Kind, j.CPU, j.TID = "2026-11-25T14:16:02.123927555Z", "syscall", 2, 124
				j.Delivery, j.Syscall, j.FD, j.Errno, j.SinceSendNS = "econnrefused", "?", -1, "errno 11", 512000
			},
		},
		{
			name:  "syscall with a number not in the list, negative errno",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall, e.FD, e.Err = 999, math.MaxInt32, -111
			},
			want: func(j *jsonEvent) {
				j.Time, j.Kind, j.CPU, j.TID = "2026-11-25T14:16:02.123927555Z", "syscall", 2, 124
				j.Delivery, j.Syscall, j.FD, j.Errno, j.SinceSendNS = "econnrefused", "syscall_999", math.MaxInt32, "errno -111", 512000
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event()
			tt.modify(&e)
			line := printLine(t, FormatJSON, &e)
			got, err := parseJSONLine(line)
			if err != nil {
				t.Fatalf("parse %s: %v", line, err)
			}
			want := loJSON()
			tt.want(&want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("JSON mismatch (-want +got):\n%s\nline: %s", diff, line)
			}
		})
	}
}

// TestDecodePrintJSONSender follows the sender part from the record's bytes
// to the JSON line and back.
func TestDecodePrintJSONSender(t *testing.T) {
	local := loRecord()
	rem := loRecord()
	remote(&rem)
	max := loRecord()
	max.senderCgroup = math.MaxUint64
	max.senderPID, max.senderTID, max.senderUID, max.senderNetns = math.MaxUint32, math.MaxUint32-1, math.MaxUint32-2, math.MaxUint32-3
	max.senderComm = name16("ABCDEFGHIJKLMNOP")
	tests := []struct {
		name string
		rec  record
		want jsonEvent // only the sender keys
	}{
		{"local", local, jsonEvent{Sender: "local", SenderPID: 4321, SenderTID: 4322, SenderUID: 1000,
			SenderComm: "sender-comm", SenderCgroup: 0x0102030405060708, SenderNetns: 4026532000}},
		{"remote with junk", rem, jsonEvent{Sender: "remote"}},
		{"local maximum", max, jsonEvent{Sender: "local", SenderPID: math.MaxUint32,
			SenderTID: math.MaxUint32 - 1, SenderUID: math.MaxUint32 - 2, SenderComm: "ABCDEFGHIJKLMNOP",
			SenderCgroup: math.MaxUint64, SenderNetns: math.MaxUint32 - 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Event
			if err := Decode(tt.rec.bytes(), &e); err != nil {
				t.Fatal(err)
			}
			line := printLine(t, FormatJSON, &e)
			je, err := parseJSONLine(line)
			if err != nil {
				t.Fatalf("parse %s: %v", line, err)
			}
			got := jsonEvent{Sender: je.Sender, SenderPID: je.SenderPID, SenderTID: je.SenderTID,
				SenderUID: je.SenderUID, SenderComm: je.SenderComm, SenderCgroup: je.SenderCgroup,
				SenderNetns: je.SenderNetns}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sender keys mismatch (-want +got):\n%s\nline: %s", diff, line)
			}
		})
	}
}

func TestPrinterText(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Event)
		want   string
	}{
		{
			name:   "ipv4 sent, local sender",
			modify: func(*Event) {},
			want:   "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc\n",
		},
		{
			name:   "remote sender",
			modify: func(e *Event) { *e = remoteEvent() },
			want:   "14:16:02.234567 04283584 192.0.2.7:53124       10.0.0.2:161             40 eth0       4026531840 not-sent remote                    0 0/swapper/0\n",
		},
		{
			name: "remote sender, stale sender fields not shown",
			modify: func(e *Event) {
				e.Sender = SenderRemote
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     remote                    1 123/nc\n",
		},
		{
			name: "widest ipv4, widest sender",
			modify: func(e *Event) {
				e.Src = netip.MustParseAddr("255.255.255.255")
				e.Dst = netip.MustParseAddr("192.168.100.200")
				e.SPort, e.DPort, e.Len = 65535, 65535, 65535
				e.IfName = name16("enp0s31f6")
				e.ICMP = ICMPNotSent
				e.CPU = 127
				e.PID = 4194304
				e.Comm = name16("systemd-resolve")
				e.SenderPID = 4194304
				e.SenderComm = name16("systemd-resolve")
			},
			want: "14:16:02.123456 aa33a51c 255.255.255.255:65535 192.168.100.200:65535 65535 enp0s31f6  4026531840 not-sent 4194304/systemd-resolve 127 4194304/systemd-resolve\n",
		},
		{
			name: "sender wider than its column pushes the line",
			modify: func(e *Event) {
				e.SenderPID = math.MaxUint32
				e.SenderComm = name16("0123456789abcdef")
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     4294967295/0123456789abcdef   1 123/nc\n",
		},
		{
			name: "long ipv6 and ifname push the line",
			modify: func(e *Event) {
				e.Family = FamilyIPv6
				e.Src = netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678")
				e.Dst = netip.MustParseAddr("::1")
				e.IfName = name16("br-0123456789ab")
				e.ICMP = ICMPUnknown
			},
			want: "14:16:02.123456 aa33a51c [2001:db8:1234:5678:9abc:def0:1234:5678]:40000 [::1]:9                  13 br-0123456789ab 4026531840 unknown  123/nc                    1 123/nc\n",
		},
		{
			name: "no ifname, no names",
			modify: func(e *Event) {
				e.IfName = [16]byte{}
				e.IfIndex = 42
				e.Comm = [16]byte{}
				e.PID = 0
				e.SenderComm = [16]byte{}
				e.SenderPID = 0
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 if42       4026531840 sent     local/?                   1 0/\n",
		},
		{
			name: "hostile names",
			modify: func(e *Event) {
				e.IfName = name16("e\x1b[31m")
				e.Comm = [16]byte{0x1b, ']', '0', ';', 'x', 0x07, 0xff, 0xe2, 0x80, 0xae, 'b', 'a', 'd', 0xc2, 0x9b, '!'}
				e.SenderComm = [16]byte{'\n', '\r', 0x1b, '[', 'H', 0xe2, 0x80, 0x8b, 0xc0, 0xaf, 'o', 'k'}
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 e?[31m     4026531840 sent     123/???[H???ok            1 123/?]0;x???bad?!\n",
		},
		{
			name: "printable UTF-8 names are kept",
			modify: func(e *Event) {
				e.IfName = name16("ñé")
				e.Comm = name16("café ☕")
				e.SenderComm = name16("日本語")
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 ñé         4026531840 sent     123/日本語                   1 123/café ☕\n",
		},
		{
			name: "no chain",
			modify: func(e *Event) {
				e.Chain = 0
			},
			want: "14:16:02.123456 -        127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc\n",
		},
		{
			name: "chain with leading zeros, only its top half shown",
			modify: func(e *Event) {
				e.Chain = 0x00000001ffffffff
			},
			want: "14:16:02.123456 00000001 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc\n",
		},
		{
			name: "syscall fields of a noport record are not shown",
			modify: func(e *Event) {
				e.FD, e.Syscall, e.Err, e.Outcome = 3, 0, 111, OutcomeRefused
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc\n",
		},
		{
			name: "rate-limited globally: the counter pushes the line",
			modify: func(e *Event) {
				e.ICMP = ICMPRateLimitedGlobal
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 OutRateLimitGlobal 123/nc                    1 123/nc\n",
		},
		{
			name: "ipv4 rate-limited per host",
			modify: func(e *Event) {
				e.ICMP = ICMPRateLimitedHost
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 OutRateLimitHost 123/nc                    1 123/nc\n",
		},
		{
			name: "ipv6 rate-limited per host",
			modify: func(e *Event) {
				e.Family = FamilyIPv6
				e.Src, e.Dst = netip.MustParseAddr("::1"), netip.MustParseAddr("::1")
				e.ICMP = ICMPRateLimitedHost
			},
			want: "14:16:02.123456 aa33a51c [::1]:40000           [::1]:9                  13 lo         4026531840 Icmp6OutRateLimitHost 123/nc                    1 123/nc\n",
		},
		{
			name: "sender kind no Decode returns",
			modify: func(e *Event) {
				e.Sender = SenderKind(9)
			},
			want: "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     sender(9)                 1 123/nc\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := loEvent()
			tt.modify(&e)
			if got := printLine(t, FormatText, &e); got != tt.want {
				t.Errorf("text line\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestPrinterTextChain(t *testing.T) {
	tests := []struct {
		name   string
		event  func() Event
		modify func(*Event)
		want   string
	}{
		{
			name:   "delivery, connected socket",
			event:  deliveryEvent,
			modify: func(*Event) {},
			want:   "14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached 123/nc socket:[5678] in netns 4026531840 (lo): ECONNREFUSED set on the connected socket\n",
		},
		{
			name:  "delivery, error queue, unknown task",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome = OutcomeQueued
				e.SenderPID = 0
			},
			want: "14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached local/? socket:[5678] in netns 4026531840 (lo): queued on the error queue (IP_RECVERR); ECONNREFUSED pending\n",
		},
		{
			name:  "delivery, ignored, ipv6, no ifname, another namespace",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Err = OutcomeIgnored, 0
				e.Family = FamilyIPv6
				e.Src = netip.MustParseAddr("2001:db8::1")
				e.Dst = netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678")
				e.IfName, e.IfIndex = [16]byte{}, 7
				e.Netns = 4026532999
				e.SenderPID, e.SenderComm = 4194304, name16("systemd-resolve")
			},
			want: "14:16:02.123501 aa33a51c ↳ port-unreachable for [2001:db8::1]:40000 -> [2001:db8:1234:5678:9abc:def0:1234:5678]:9 reached 4194304/systemd-resolve socket:[5678] in netns 4026532999 (if7): ignored: socket not connected, no IP_RECVERR\n",
		},
		{
			name:  "delivery, no socket, remote sender, no chain",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Err = OutcomeNoSocket, 0
				e.Sender, e.SockIno, e.OriginNS, e.Chain = SenderRemote, 0, 0, 0
			},
			want: "14:16:02.123501 -        ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached an unknown socket in netns 4026531840 (lo): no socket (closed before the ICMP arrived)\n",
		},
		{
			name:  "delivery, unknown",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Err = OutcomeUnknown, 0
				e.Sender, e.SockIno, e.OriginNS = SenderRemote, 0, 0
			},
			want: "14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached an unknown socket in netns 4026531840 (lo): unknown: the socket was not seen sending\n",
		},
		{
			name:  "delivery, hostile names",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.IfName = name16("e\x1b[31m")
				e.SenderComm = [16]byte{'\n', '\r', 0x1b, '[', 'H', 0xe2, 0x80, 0x8b, 0xc0, 0xaf, 'o', 'k'}
			},
			want: "14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached 123/???[H???ok socket:[5678] in netns 4026531840 (e?[31m): ECONNREFUSED set on the connected socket\n",
		},
		{
			name:  "delivery, outcome and sender kind no Decode returns",
			event: deliveryEvent,
			modify: func(e *Event) {
				e.Outcome, e.Sender = OutcomeNone, SenderKind(9)
			},
			want: "14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached sender(9) socket:[5678] in netns 4026531840 (lo)\n",
		},
		{
			name:   "syscall read",
			event:  syscallEvent,
			modify: func(*Event) {},
			want:   "14:16:02.123927 aa33a51c ↳ read(fd 3) returned ECONNREFUSED to 123/nc (tid 124), 512µs after the send\n",
		},
		{
			name:  "syscall unknown, send not seen",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall, e.FD, e.OriginNS = -1, -1, 0
			},
			want: "14:16:02.123927 aa33a51c ↳ ?(fd ?) returned ECONNREFUSED to 123/nc (tid 124)\n",
		},
		{
			name:  "syscall recvmsg, fd 0, milliseconds",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall, e.FD = 47, 0
				e.OriginNS = e.BootNS - 1_500_499
			},
			want: "14:16:02.123927 aa33a51c ↳ recvmsg(fd 0) returned ECONNREFUSED to 123/nc (tid 124), 1.5ms after the send\n",
		},
		{
			name:  "syscall sendmmsg, seconds, another errno, hostile comm",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall, e.FD, e.Err = 307, 1023, 11
				e.OriginNS = e.BootNS - 2_000_001_000
				e.PID, e.TID = 4194304, 4194303
				e.Comm = [16]byte{0x1b, ']', '0', ';', 'x', 0x07, 0xff, 0xe2, 0x80, 0xae, 'b', 'a', 'd', 0xc2, 0x9b, '!'}
			},
			want: "14:16:02.123927 aa33a51c ↳ sendmmsg(fd 1023) returned errno 11 to 4194304/?]0;x???bad?! (tid 4194303), 2.000001s after the send\n",
		},
		{
			name:  "syscall not in the list, hours, no errno",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall, e.Err = 999, 0
				e.BootNS += 3600 * 1_000_000_000
				e.OriginNS = e.BootNS - (3723*1_000_000_000 + 500_000_000)
			},
			want: "15:16:02.123927 aa33a51c ↳ syscall_999(fd 3) returned errno 0 to 123/nc (tid 124), 1h2m3.5s after the send\n",
		},
		{
			name:  "syscall in the same nanosecond as the send",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall = 45
				e.OriginNS = e.BootNS
			},
			want: "14:16:02.123927 aa33a51c ↳ recvfrom(fd 3) returned ECONNREFUSED to 123/nc (tid 124), 0s after the send\n",
		},
		{
			name:  "syscall before the send: clocks disagree, no delay",
			event: syscallEvent,
			modify: func(e *Event) {
				e.Syscall = 1
				e.OriginNS = e.BootNS + 1
			},
			want: "14:16:02.123927 aa33a51c ↳ write(fd 3) returned ECONNREFUSED to 123/nc (tid 124)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.event()
			tt.modify(&e)
			if got := printLine(t, FormatText, &e); got != tt.want {
				t.Errorf("text line\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAppendMicros(t *testing.T) {
	// As time.Duration.String after rounding to the microsecond.
	ns := []uint64{0, 1, 499, 500, 999, 1000, 1499, 1500, 999_499, 999_500, 1_000_000,
		1_000_500, 1_234_567, 10_000_000, 999_999_499, 999_999_500, 1_000_000_000,
		1_000_000_499, 1_000_000_500, 59_999_999_999, 60_000_000_000, 61_500_000_000,
		3_599_999_999_500, 3_600_000_000_000, 3_723_500_000_000, 86_400_000_001_000,
		math.MaxInt64 - 1000}
	for i := uint64(1); i < 1<<62; i = i*3 + i/7 + 1 {
		ns = append(ns, i)
	}
	var b []byte
	for _, n := range ns {
		want := time.Duration(n).Round(time.Microsecond).String()
		if b = appendMicros(b[:0], n); string(b) != want {
			t.Errorf("appendMicros(%d) = %q, want %q", n, b, want)
		}
	}
	// Beyond time.Duration.
	if b = appendMicros(b[:0], math.MaxUint64); string(b) != "5124095h34m33.709552s" {
		t.Errorf("appendMicros(MaxUint64) = %q", b)
	}
}

func TestPrinterTextLocalTime(t *testing.T) {
	// NewPrinter prints local time.
	e := loEvent()
	var out bytes.Buffer
	if err := NewPrinter(&out, FormatText, testClock).Event(&e); err != nil {
		t.Fatal(err)
	}
	want := testTime.Local().Format("15:04:05.000000 ")
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("line %q does not start with local time %q", out.String(), want)
	}
}

func TestPrinterHeader(t *testing.T) {
	var out bytes.Buffer
	p := NewPrinter(&out, FormatText, testClock)
	p.loc = time.UTC
	if err := p.Header(); err != nil {
		t.Fatal(err)
	}
	e := loEvent()
	if err := p.Event(&e); err != nil {
		t.Fatal(err)
	}
	r := remoteEvent()
	if err := p.Event(&r); err != nil {
		t.Fatal(err)
	}
	d := deliveryEvent()
	if err := p.Event(&d); err != nil {
		t.Fatal(err)
	}
	sc := syscallEvent()
	if err := p.Event(&sc); err != nil {
		t.Fatal(err)
	}
	// The example of the FormatText doc comment, byte for byte.
	want := "TIME            CHAIN    SRC                   DST                     LEN IFACE           NETNS ICMP     SENDER                  CPU CTX\n" +
		"14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc\n" +
		"14:16:02.234567 04283584 192.0.2.7:53124       10.0.0.2:161             40 eth0       4026531840 not-sent remote                    0 0/swapper/0\n" +
		"14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached 123/nc socket:[5678] in netns 4026531840 (lo): ECONNREFUSED set on the connected socket\n" +
		"14:16:02.123927 aa33a51c ↳ read(fd 3) returned ECONNREFUSED to 123/nc (tid 124), 512µs after the send\n"
	if got := out.String(); got != want {
		t.Errorf("header and line\n got %q\nwant %q", got, want)
	}

	out.Reset()
	if err := NewPrinter(&out, FormatJSON, testClock).Header(); err != nil || out.Len() != 0 {
		t.Errorf("JSON Header() = %v, wrote %q; want nil, nothing", err, out.String())
	}
}

func TestPrinterOneWritePerLine(t *testing.T) {
	for _, f := range []Format{FormatText, FormatJSON} {
		w := &countingWriter{}
		p := NewPrinter(w, f, testClock)
		e := loEvent()
		for range 3 {
			if err := p.Event(&e); err != nil {
				t.Fatal(err)
			}
		}
		if w.writes != 3 || w.lines != 3 {
			t.Errorf("%v: 3 events made %d writes of %d lines, want 3 and 3", f, w.writes, w.lines)
		}
	}
}

type countingWriter struct{ writes, lines int }

func (w *countingWriter) Write(b []byte) (int, error) {
	w.writes++
	w.lines += bytes.Count(b, []byte{'\n'})
	return len(b), nil
}

type failingWriter struct{}

var errWrite = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestPrinterErrors(t *testing.T) {
	e := loEvent()
	for _, f := range []Format{FormatText, FormatJSON} {
		if err := NewPrinter(failingWriter{}, f, testClock).Event(&e); !errors.Is(err, errWrite) {
			t.Errorf("%v: Event on a failing writer = %v, want %v", f, err, errWrite)
		}
	}
	if err := NewPrinter(failingWriter{}, FormatText, testClock).Header(); !errors.Is(err, errWrite) {
		t.Errorf("Header on a failing writer = %v, want %v", err, errWrite)
	}
	p := NewPrinter(io.Discard, Format(9), testClock)
	if err := p.Event(&e); err == nil {
		t.Error("Event with an unknown format succeeded")
	}
	if err := p.Header(); err == nil {
		t.Error("Header with an unknown format succeeded")
	}
}

func TestPrinterNoAllocs(t *testing.T) {
	e4 := loEvent()
	e6 := loEvent()
	e6.Family = FamilyIPv6
	e6.Src = netip.MustParseAddr("2001:db8:1234:5678:9abc:def0:1234:5678")
	e6.Dst = netip.MustParseAddr("fe80::1%eth0")
	e6.Comm = [16]byte{'"', 0x1b, 0xff, 0xe2, 0x80, 0xa8, 'x'}
	e6.IfName = [16]byte{}
	e6.SenderComm = [16]byte{0x1b, '"', 0xc0, 0xaf, 0xe2, 0x80, 0xa9, 'y'}
	e6.SenderPID, e6.SenderCgroup = math.MaxUint32, math.MaxUint64
	e6.ICMP = ICMPRateLimitedHost
	er := remoteEvent()
	er.ICMP = ICMPRateLimitedGlobal
	ed := deliveryEvent()
	ed6 := e6
	ed6.Kind, ed6.Outcome, ed6.SockIno = KindDelivery, OutcomeQueued, math.MaxUint64
	es := syscallEvent()
	es.OriginNS = es.BootNS - 3_723_500_001_000 // hours: the longest delay
	es9 := e6
	es9.Kind, es9.Syscall, es9.FD, es9.Err = KindSyscall, 999, -1, -111
	es9.OriginNS = es9.BootNS - 1_234_567
	events := []*Event{&e4, &e6, &er, &ed, &ed6, &es, &es9}
	for _, f := range []Format{FormatText, FormatJSON} {
		w := bufio.NewWriter(io.Discard)
		p := NewPrinter(w, f, NewClock())
		allocs := testing.AllocsPerRun(1000, func() {
			for _, e := range events {
				if err := p.Event(e); err != nil {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%v: Printer.Event allocates %v times per call, want 0", f, allocs)
		}
	}
}

func benchmarkPrinter(b *testing.B, f Format, e Event) {
	w := bufio.NewWriter(io.Discard)
	p := NewPrinter(w, f, NewClock())
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Event(&e); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPrinterJSON and BenchmarkPrinterText print an event with a local
// sender, the longer line.
func BenchmarkPrinterJSON(b *testing.B) { benchmarkPrinter(b, FormatJSON, loEvent()) }
func BenchmarkPrinterText(b *testing.B) { benchmarkPrinter(b, FormatText, loEvent()) }

func BenchmarkPrinterJSONRemote(b *testing.B) { benchmarkPrinter(b, FormatJSON, remoteEvent()) }
func BenchmarkPrinterTextRemote(b *testing.B) { benchmarkPrinter(b, FormatText, remoteEvent()) }

func BenchmarkPrinterJSONDelivery(b *testing.B) { benchmarkPrinter(b, FormatJSON, deliveryEvent()) }
func BenchmarkPrinterTextDelivery(b *testing.B) { benchmarkPrinter(b, FormatText, deliveryEvent()) }
func BenchmarkPrinterJSONSyscall(b *testing.B)  { benchmarkPrinter(b, FormatJSON, syscallEvent()) }
func BenchmarkPrinterTextSyscall(b *testing.B)  { benchmarkPrinter(b, FormatText, syscallEvent()) }

// BenchmarkDecodePrintJSON is the whole per-event path of udptrace --output json.
func BenchmarkDecodePrintJSON(b *testing.B) {
	rec := loRecord().bytes()
	var e Event
	p := NewPrinter(bufio.NewWriter(io.Discard), FormatJSON, NewClock())
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(rec, &e); err != nil {
			b.Fatal(err)
		}
		if err := p.Event(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPrinterColor checks every coloured cell and line byte for byte: the
// escape sequences around the visible text, and the columns padded as
// without colour.
func TestPrinterColor(t *testing.T) {
	colored := func(e *Event) string {
		var out bytes.Buffer
		p := NewPrinter(&out, FormatText, testClock)
		p.SetLocation(time.UTC)
		p.SetColor(true)
		if err := p.Event(e); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	row := func(icmp string) string {
		return "14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 " + icmp + " 123/nc                    1 123/nc\n"
	}
	for _, tc := range []struct {
		name   string
		event  func() Event
		modify func(*Event)
		want   string
	}{
		{"sent", loEvent, func(*Event) {}, row("\x1b[32msent\x1b[0m    ")},
		{"not-sent", loEvent, func(e *Event) { e.ICMP = ICMPNotSent }, row("\x1b[31mnot-sent\x1b[0m")},
		{"unknown: no colour", loEvent, func(e *Event) { e.ICMP = ICMPUnknown }, row("unknown ")},
		{"rate-limited per host", loEvent, func(e *Event) { e.ICMP = ICMPRateLimitedHost }, row("\x1b[33mOutRateLimitHost\x1b[0m")},
		{"rate-limited globally", loEvent, func(e *Event) { e.ICMP = ICMPRateLimitedGlobal }, row("\x1b[33mOutRateLimitGlobal\x1b[0m")},
		{"delivery", deliveryEvent, func(*Event) {},
			"\x1b[2m14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached 123/nc socket:[5678] in netns 4026531840 (lo): \x1b[22mECONNREFUSED set on the connected socket\x1b[0m\n"},
		{"delivery without outcome", deliveryEvent, func(e *Event) { e.Outcome = OutcomeNone },
			"\x1b[2m14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached 123/nc socket:[5678] in netns 4026531840 (lo)\x1b[0m\n"},
		{"syscall", syscallEvent, func(*Event) {},
			"\x1b[2m14:16:02.123927 aa33a51c ↳ read(fd 3) returned \x1b[22mECONNREFUSED\x1b[2m to 123/nc (tid 124), 512µs after the send\x1b[0m\n"},
		{"syscall, hostile name", syscallEvent, func(e *Event) { e.Comm = name16("\x1b[0m") },
			"\x1b[2m14:16:02.123927 aa33a51c ↳ read(fd 3) returned \x1b[22mECONNREFUSED\x1b[2m to 123/?[0m (tid 124), 512µs after the send\x1b[0m\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.event()
			tc.modify(&e)
			got := colored(&e)
			if got != tc.want {
				t.Errorf("coloured line\n got %q\nwant %q", got, tc.want)
			}
			// Without its escape sequences, the line is the plain one.
			plain := got
			for _, sgr := range []string{sgrReset, sgrBold, sgrDim, sgrNormal, sgrRed, sgrGreen, sgrYellow} {
				plain = strings.ReplaceAll(plain, sgr, "")
			}
			if want := printLine(t, FormatText, &e); plain != want {
				t.Errorf("without colours\n got %q\nwant %q", plain, want)
			}
		})
	}

	var out bytes.Buffer
	p := NewPrinter(&out, FormatText, testClock)
	p.SetColor(true)
	if err := p.Header(); err != nil {
		t.Fatal(err)
	}
	if want := "\x1b[1mTIME            CHAIN    SRC                   DST                     LEN IFACE           NETNS ICMP     SENDER                  CPU CTX\x1b[0m\n"; out.String() != want {
		t.Errorf("header\n got %q\nwant %q", out.String(), want)
	}
	// Off again, and never in JSON.
	e := loEvent()
	out.Reset()
	p.SetColor(false)
	p.SetLocation(time.UTC)
	if err := p.Event(&e); err != nil || out.String() != printLine(t, FormatText, &e) {
		t.Errorf("colour off: %q, %v", out.String(), err)
	}
	out.Reset()
	p = NewPrinter(&out, FormatJSON, testClock)
	p.SetColor(true)
	if err := p.Header(); err != nil {
		t.Fatal(err)
	}
	if err := p.Event(&e); err != nil || out.String() != printLine(t, FormatJSON, &e) {
		t.Errorf("JSON in colour: %q, %v", out.String(), err)
	}
}

// TestPrinterExplain: SetExplain adds a line under each record in the
// table, and a last key in JSON, both escaped; one write per record.
func TestPrinterExplain(t *testing.T) {
	explain := func(e *Event) string {
		if e.Kind == KindSyscall {
			return "a \"call\" →\n\x1b[2J\xff done"
		}
		return "udp_rcv → __udp4_lib_rcv: no socket"
	}
	e, s := loEvent(), syscallEvent()
	for _, tc := range []struct {
		f    Format
		e    *Event
		want string
	}{
		{FormatText, &e, printLine(t, FormatText, &e) + "    ⤷ kernel: udp_rcv → __udp4_lib_rcv: no socket\n"},
		{FormatText, &s, printLine(t, FormatText, &s) + "    ⤷ kernel: a \"call\" →??[2J? done\n"},
		{FormatJSON, &e, strings.TrimSuffix(printLine(t, FormatJSON, &e), "}\n") + `,"explain":"udp_rcv → __udp4_lib_rcv: no socket"}` + "\n"},
		{FormatJSON, &s, strings.TrimSuffix(printLine(t, FormatJSON, &s), "}\n") + `,"explain":"a \"call\" →\u000a\u001b[2J\ufffd done"}` + "\n"},
	} {
		w := &countingWriter{}
		var out bytes.Buffer
		p := NewPrinter(io.MultiWriter(w, &out), tc.f, testClock)
		p.SetLocation(time.UTC)
		p.SetExplain(explain)
		if err := p.Event(tc.e); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want || w.writes != 1 {
			t.Errorf("%v, %v: %d writes of\n%q\nwant 1 of\n%q", tc.f, tc.e.Kind, w.writes, out.String(), tc.want)
		}
		if tc.f == FormatJSON && !json.Valid(out.Bytes()) {
			t.Errorf("invalid JSON: %s", out.String())
		}
		// Unset, nothing more.
		out.Reset()
		p.SetExplain(nil)
		if err := p.Event(tc.e); err != nil || out.String() != printLine(t, tc.f, tc.e) {
			t.Errorf("%v, %v without explain: %q", tc.f, tc.e.Kind, out.String())
		}
	}
}

// TestPrinterColorExplainNoAllocs: colour and an explain function that
// allocates nothing keep Printer.Event free of allocations.
func TestPrinterColorExplainNoAllocs(t *testing.T) {
	evs := []Event{loEvent(), remoteEvent(), deliveryEvent(), syscallEvent()}
	evs[1].ICMP = ICMPRateLimitedHost
	explain := func(e *Event) string { return "udp_rcv → __udp4_lib_rcv → __icmp_send(type 3, code 3): sent" }
	for _, f := range []Format{FormatText, FormatJSON} {
		p := NewPrinter(bufio.NewWriter(io.Discard), f, NewClock())
		p.SetColor(true)
		p.SetExplain(explain)
		allocs := testing.AllocsPerRun(1000, func() {
			for i := range evs {
				if err := p.Event(&evs[i]); err != nil {
					t.Fatal(err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("%v: Printer.Event with colour and explain allocates %v times per call, want 0", f, allocs)
		}
	}
}
