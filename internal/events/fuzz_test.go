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
	// Invalid ones.
	r.family, r.kind, r.icmp = 5, 1, 0
	f.Add(r.bytes())
	r = loRecord()
	r.sender = 2
	f.Add(r.bytes())
	f.Add([]byte{})
	f.Add(loRecord().bytes()[:104]) // the record before the sender part
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
		if je.Family != e.Family.String() || je.ICMP != e.ICMP.String() || je.Kind != "noport" {
			t.Errorf("family %q icmp %q kind %q, want %v %v noport", je.Family, je.ICMP, je.Kind, e.Family, e.ICMP)
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
		case 0:
			zero := Event{Sender: SenderRemote}
			if e.Sender != SenderRemote || e.SenderPID != 0 || e.SenderTID != 0 || e.SenderUID != 0 ||
				e.SenderNetns != 0 || e.SenderCgroup != 0 || e.SenderComm != zero.SenderComm {
				t.Errorf("remote record decodes to sender %v %d %d %d %d %d %q", e.Sender, e.SenderPID,
					e.SenderTID, e.SenderUID, e.SenderNetns, e.SenderCgroup, e.SenderComm)
			}
			if je.Sender != "remote" || je.SenderPID != 0 || je.SenderTID != 0 || je.SenderUID != 0 ||
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
		// The SENDER cell follows the ICMP cell (padded to 8).
		cell := " remote "
		if e.Sender == SenderLocal {
			cell = " " + strconv.FormatUint(uint64(e.SenderPID), 10) + "/"
		}
		if icmp := fmt.Sprintf(" %-8s", e.ICMP); !strings.Contains(text, icmp+cell) {
			t.Errorf("text line %q lacks %q", text, icmp+cell)
		}
	})
}
