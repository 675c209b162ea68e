package filter

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParsePorts: whatever the list, ParsePorts does not panic and its
// error is one line; what it accepts is one range per comma-separated
// item, each with Lo <= Hi, that FormatPorts writes as a list ParsePorts
// reads back to the same ranges, and whose bitmap holds exactly their
// ports at every edge.
func FuzzParsePorts(f *testing.F) {
	fuzzParse(f, "ParsePorts", ParsePorts, func(t *testing.T, s string, ranges []PortRange) {
		if n := strings.Count(s, ",") + 1; len(ranges) != n {
			t.Fatalf("ParsePorts(%q) = %v: %d ranges for %d items", s, ranges, len(ranges), n)
		}
		for _, r := range ranges {
			if r.Lo > r.Hi {
				t.Fatalf("ParsePorts(%q) = %v: range %d-%d runs backwards", s, ranges, r.Lo, r.Hi)
			}
		}
		text := FormatPorts(ranges)
		again, err := ParsePorts(text)
		if err != nil || !equalRanges(again, ranges) {
			t.Fatalf("ParsePorts(%q) = %v, written %q, read back as %v, %v", s, ranges, text, again, err)
		}
		b := Bitmap(ranges)
		for _, r := range ranges {
			for _, p := range []int{int(r.Lo) - 1, int(r.Lo), int(r.Hi), int(r.Hi) + 1} {
				if p < 0 || p > 65535 {
					continue
				}
				if got, want := b.Has(uint16(p)), inRanges(ranges, uint16(p)); got != want {
					t.Fatalf("ParsePorts(%q) = %v: bitmap has port %d: %v, want %v", s, ranges, p, got, want)
				}
			}
		}
	}, "53", "53,5353,8000-8100", " 0 , 65535", "1-1", "0-65535", "007", "1 - 2",
		"", ",", "53,", "65536", "-1", "9-1", "a", "1-2-3", "1-", "0x10", "53 54", "+5", "5\n", "\u00a053")
}

// fuzzParse fuzzes parse, from the seeds: it must not panic, its error
// must be one line (udptrace prints it as one), and check gets what it
// accepts.
func fuzzParse[T any](f *testing.F, name string, parse func(string) (T, error), check func(t *testing.T, s string, v T), seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parse(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("%s(%q): error %q is not one line", name, s, err)
			}
			return
		}
		check(t, s, v)
	})
}

func equalRanges(a, b []PortRange) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func inRanges(ranges []PortRange, p uint16) bool {
	for _, r := range ranges {
		if r.Lo <= p && p <= r.Hi {
			return true
		}
	}
	return false
}

// FuzzParsePrefix: whatever the string, ParsePrefix does not panic and its
// error is one line; what it accepts is a valid, masked prefix without a
// zone, IPv4 rather than IPv4-mapped IPv6 wherever the mapping covers it,
// a single address when no length was given, that reads back from its
// String form as itself, and whose trie key counts the family byte.
func FuzzParsePrefix(f *testing.F) {
	fuzzParse(f, "ParsePrefix", ParsePrefix, func(t *testing.T, s string, p netip.Prefix) {
		a := p.Addr()
		switch {
		case !p.IsValid():
			t.Fatalf("ParsePrefix(%q) = %v: not valid", s, p)
		case p != p.Masked():
			t.Fatalf("ParsePrefix(%q) = %v: not masked (%v)", s, p, p.Masked())
		case a.Zone() != "":
			t.Fatalf("ParsePrefix(%q) = %v: has a zone", s, p)
		case a.Is4In6() && p.Bits() >= 96:
			t.Fatalf("ParsePrefix(%q) = %v: IPv4-mapped, not IPv4", s, p)
		case !strings.Contains(s, "/") && !p.IsSingleIP():
			t.Fatalf("ParsePrefix(%q) = %v: an address, but not a single one", s, p)
		}
		again, err := ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, read back as %v, %v", s, p, again, err)
		}
		family, addr := uint8(6), a.As16()
		if a.Is4() {
			family, addr = 4, [16]byte{}
			a4 := a.As4()
			copy(addr[:], a4[:])
		}
		if k := Key(p); k.Prefixlen != 8+uint32(p.Bits()) || k.Family != family || k.Addr != addr {
			t.Fatalf("ParsePrefix(%q) = %v: key %+v", s, p, k)
		}
	}, "10.0.0.1", "10.1.2.3/8", "::1", "fd00::1/64", "::ffff:10.0.0.1", "::ffff:10.0.0.0/104",
		"::ffff:0.0.0.0/95", "::ffff:1.2.3.4/96", "0.0.0.0/0", " 10.0.0.1 ", "", "foo", "10.0.0.0/33", "::/129",
		"300.1.1.1", "fe80::1%eth0", "fe80::1%eth0/64", "10.0.0.1/", "/8", "10.0.0.0/08", "1.2.3.4/+8")
}
