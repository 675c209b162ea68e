package events

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzDecode(f *testing.F) {
	f.Add(loRecord().bytes())
	r := loRecord()
	r.family = 6
	r.saddr = addr16("2001:db8::1")
	r.daddr = addr16("::ffff:10.0.0.1")
	r.icmp = 2
	r.comm = [16]byte{'"', '\\', 0x1b, 0xff, 0xe2, 0x80, 0xa8}
	f.Add(r.bytes())
	r.family, r.kind, r.icmp = 5, 1, 0
	f.Add(r.bytes())
	f.Add([]byte{})
	f.Add(make([]byte, RecordSize))
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
	})
}
