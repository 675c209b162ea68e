package events

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzDecode(f *testing.F) {
	// Valid records of RecordSize bytes: local and remote senders, both
	// families, hostile names, extreme numbers.
	f.Add(loRecord().bytes())
	r := loRecord()
	r.family = 6
	r.saddr = addr16("2001:db8::1")
	r.daddr = addr16("::ffff:10.0.0.1")
	r.icmp = 2
	r.comm = [16]byte{'"', '\\', 0x1b, 0xff, 0xe2, 0x80, 0xa8}
	r.senderComm = [16]byte{0x1b, ']', 0xc0, 0xaf, 0xe2, 0x80, 0xa9, '\n', 'x', 'y', 'z', 'w', 'v', 'u', 't', 's'}
	f.Add(r.bytes())
	remote(&r)
	f.Add(r.bytes())
	r = loRecord()
	r.senderCgroup = math.MaxUint64
	r.senderPID, r.senderTID, r.senderUID, r.senderNetns = math.MaxUint32, math.MaxUint32, math.MaxUint32, math.MaxUint32
	r.pad = [2]byte{0xff, 0xff}
	f.Add(r.bytes())
	f.Add(record{family: 4, kind: 1}.bytes())
	// The other kinds, verdicts and outcomes.
	r = loRecord()
	r.icmp = 3
	f.Add(r.bytes())
	r.family, r.icmp = 6, 4
	r.saddr, r.daddr = addr16("2001:db8::1"), addr16("2001:db8::2")
	f.Add(r.bytes())
	f.Add(deliveryRecord().bytes())
	r = deliveryRecord()
	r.outcome = 2
	r.pad2 = [3]byte{0xff, 0xff, 0xff}
	f.Add(r.bytes())
	r.outcome, r.err = 4, 0
	remote(&r)
	f.Add(r.bytes())
	f.Add(syscallRecord().bytes())
	r = syscallRecord()
	r.fd, r.syscall, r.originNS = -1, -1, 0
	f.Add(r.bytes())
	r.syscall, r.err, r.originNS = 999, -5, math.MaxUint64
	f.Add(r.bytes())
	// Invalid ones.
	r = loRecord()
	r.family, r.kind, r.icmp = 5, 1, 0
	f.Add(r.bytes())
	r = loRecord()
	r.sender = 2
	f.Add(r.bytes())
	r = loRecord()
	r.kind = 4
	f.Add(r.bytes())
	r = loRecord()
	r.icmp = 5
	f.Add(r.bytes())
	r = deliveryRecord()
	r.outcome = 6
	f.Add(r.bytes())
	f.Add([]byte{})
	f.Add(loRecord().bytes()[:104]) // the record before the sender part
	f.Add(loRecord().bytes()[:144]) // the record before the chain part
	f.Add(make([]byte, RecordSize))
	f.Add(make([]byte, RecordSize-1))
	f.Add(make([]byte, RecordSize+1))

	f.Fuzz(func(t *testing.T, b []byte) {
		var e Event
		if err := Decode(b, &e); err != nil {
			return
		}
		if len(b) != RecordSize {
			t.Fatalf("Decode accepted %d bytes", len(b))
		}
		switch {
		case e.Family == FamilyIPv4 && e.Src.Is4() && e.Dst.Is4():
		case e.Family == FamilyIPv6 && e.Src.Is6() && e.Dst.Is6():
		default:
			t.Fatalf("family %v with addresses %v, %v", e.Family, e.Src, e.Dst)
		}

		var out bytes.Buffer
		p := NewPrinter(&out, FormatJSON, testClock)
		if err := p.Event(&e); err != nil {
			t.Fatal(err)
		}
		line := out.String()
		if !json.Valid([]byte(line)) {
			t.Fatalf("invalid JSON: %q", line)
		}
		je, err := parseJSONLine(line)
		if err != nil {
			t.Fatalf("%v\nline: %q", err, line)
		}
		if je.SPort != e.SPort || je.DPort != e.DPort || je.Len != e.Len {
			t.Errorf("ports/len %d %d %d, want %d %d %d", je.SPort, je.DPort, je.Len, e.SPort, e.DPort, e.Len)
		}
		if src, err := netip.ParseAddr(je.Src); err != nil || src != e.Src {
			t.Errorf("src %q parses to %v, %v; want %v", je.Src, src, err, e.Src)
		}
		if dst, err := netip.ParseAddr(je.Dst); err != nil || dst != e.Dst {
			t.Errorf("dst %q parses to %v, %v; want %v", je.Dst, dst, err, e.Dst)
		}
		if je.Netns != e.Netns || je.IfIndex != e.IfIndex || je.CPU != e.CPU || je.PID != e.PID || je.TID != e.TID {
			t.Errorf("numbers %+v do not match %+v", je, e)
		}
		if je.Family != e.Family.String() || je.ICMP != e.ICMP.String() || je.Kind != e.Kind.String() {
			t.Errorf("family %q icmp %q kind %q, want %v %v %v", je.Family, je.ICMP, je.Kind, e.Family, e.ICMP, e.Kind)
		}
		if ts, err := time.Parse(time.RFC3339Nano, je.Time); err != nil || !ts.Equal(testClock.Time(e.BootNS)) {
			t.Errorf("time %q parses to %v, %v; want %v", je.Time, ts, err, testClock.Time(e.BootNS))
		}
		if name := e.IfNameString(); utf8.ValidString(name) && je.IfName != name {
			t.Errorf("ifname %q, want %q", je.IfName, name)
		}
		if comm := e.CommString(); utf8.ValidString(comm) && je.Comm != comm {
			t.Errorf("ctx_comm %q, want %q", je.Comm, comm)
		}

		// The sender part, read again by the offsets of the layout.
		ne := binary.NativeEndian
		switch b[69] {
		case 0, 2:
			zero := Event{Sender: SenderKind(b[69])}
			if e.Sender != zero.Sender || e.SenderPID != 0 || e.SenderTID != 0 || e.SenderUID != 0 ||
				e.SenderNetns != 0 || e.SenderCgroup != 0 || e.SenderComm != zero.SenderComm {
				t.Errorf("remote record decodes to sender %v %d %d %d %d %d %q", e.Sender, e.SenderPID,
					e.SenderTID, e.SenderUID, e.SenderNetns, e.SenderCgroup, e.SenderComm)
			}
			if je.Sender != zero.Sender.String() || je.SenderPID != 0 || je.SenderTID != 0 || je.SenderUID != 0 ||
				je.SenderComm != "" || je.SenderCgroup != 0 || je.SenderNetns != 0 {
				t.Errorf("remote sender keys %+v", je)
			}
		case 1:
			if e.Sender != SenderLocal || e.SenderCgroup != ne.Uint64(b[104:]) ||
				e.SenderPID != ne.Uint32(b[112:]) || e.SenderTID != ne.Uint32(b[116:]) ||
				e.SenderUID != ne.Uint32(b[120:]) || e.SenderNetns != ne.Uint32(b[124:]) ||
				!bytes.Equal(e.SenderComm[:], b[128:144]) {
				t.Errorf("local record decodes to sender %+v", e)
			}
			if je.Sender != "local" || je.SenderPID != e.SenderPID || je.SenderTID != e.SenderTID ||
				je.SenderUID != e.SenderUID || je.SenderCgroup != e.SenderCgroup || je.SenderNetns != e.SenderNetns {
				t.Errorf("local sender keys %+v do not match %+v", je, e)
			}
			if comm := e.SenderCommString(); utf8.ValidString(comm) && je.SenderComm != comm {
				t.Errorf("sender_comm %q, want %q", je.SenderComm, comm)
			}
		default:
			t.Fatalf("Decode accepted sender byte %d", b[69])
		}

		// The chain part, read again by the offsets of the layout.
		if e.Chain != ne.Uint64(b[144:]) || e.OriginNS != ne.Uint64(b[152:]) || e.SockIno != ne.Uint64(b[160:]) ||
			e.FD != int32(ne.Uint32(b[168:])) || e.Syscall != int32(ne.Uint32(b[172:])) ||
			e.Err != int32(ne.Uint32(b[176:])) || e.Outcome != Outcome(b[180]) {
			t.Errorf("chain part decodes to %d %d %d %d %d %d %d", e.Chain, e.OriginNS, e.SockIno,
				e.FD, e.Syscall, e.Err, e.Outcome)
		}
		if b[68] < 1 || b[68] > 3 || b[67] > 4 || b[180] > 5 {
			t.Fatalf("Decode accepted kind %d icmp %d outcome %d", b[68], b[67], b[180])
		}
		wantChain := ""
		if e.Chain != 0 {
			wantChain = fmt.Sprintf("%016x", e.Chain)
		}
		wantSyscall, wantFD := "", int32(-1)
		if e.Kind == KindSyscall {
			wantSyscall, wantFD = SyscallName(e.Syscall), e.FD
		}
		wantErrno := ""
		switch {
		case e.Err == 111:
			wantErrno = "ECONNREFUSED"
		case e.Err != 0:
			wantErrno = fmt.Sprintf("errno %d", e.Err)
		}
		var wantSince uint64
		if e.OriginNS != 0 && e.BootNS >= e.OriginNS {
			wantSince = e.BootNS - e.OriginNS
		}
		if je.Chain != wantChain || je.ICMPReason != e.ICMP.Reason(e.Family) || je.Delivery != e.Outcome.String() ||
			je.SockIno != e.SockIno || je.Syscall != wantSyscall || je.FD != wantFD || je.Errno != wantErrno ||
			je.SinceSendNS != wantSince {
			t.Errorf("chain keys %+v do not match %+v", je, e)
		}

		// The text line: one line, nothing a terminal would act on.
		out.Reset()
		p = NewPrinter(&out, FormatText, testClock)
		p.loc = time.UTC
		if err := p.Event(&e); err != nil {
			t.Fatal(err)
		}
		text := out.String()
		if !strings.HasSuffix(text, "\n") || strings.Count(text, "\n") != 1 || !utf8.ValidString(text) {
			t.Fatalf("text line %q", text)
		}
		for _, c := range text[:len(text)-1] {
			if c < 0x20 || (c >= 0x7f && c <= 0x9f) {
				t.Fatalf("text line %q holds control character %U", text, c)
			}
		}
		// The CHAIN cell follows the TIME cell.
		chain := "-       "
		if e.Chain != 0 {
			chain = fmt.Sprintf("%08x", e.Chain>>32)
		}
		if !strings.HasPrefix(text[len("15:04:05.000000 "):], chain+" ") {
			t.Errorf("text line %q lacks chain %q after the time", text, chain)
		}
		if e.Kind != KindNoPort {
			// A sentence after an arrow.
			if !strings.HasPrefix(text[len("15:04:05.000000 ")+len(chain)+1:], "↳ ") {
				t.Errorf("%v text line %q lacks the arrow", e.Kind, text)
			}
			return
		}
		// The SENDER cell follows the ICMP cell (padded to 8).
		cell := " " + e.Sender.String() + " " // remote, untraced
		switch {
		case e.Sender == SenderLocal && e.SenderPID == 0:
			cell = " local/? " // the task that sent it is not known
		case e.Sender == SenderLocal:
			cell = " " + strconv.FormatUint(uint64(e.SenderPID), 10) + "/"
		}
		icmp := e.ICMP.Reason(e.Family)
		if icmp == "" {
			icmp = e.ICMP.String()
		}
		if icmp = fmt.Sprintf(" %-8s", icmp); !strings.Contains(text, icmp+cell) {
			t.Errorf("text line %q lacks %q", text, icmp+cell)
		}
	})
}
