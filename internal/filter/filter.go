// Package filter parses udptrace's filter flags (port lists and address
// prefixes) into the forms the BPF programs look up: a 65536-bit port bitmap
// and LPM-trie keys.
package filter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of UDP ports.
type PortRange struct{ Lo, Hi uint16 }

// String is the range as ParsePorts reads it: "53", or "8000-8100".
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return strconv.Itoa(int(r.Lo)) + "-" + strconv.Itoa(int(r.Hi))
}

// FormatPorts is the list as ParsePorts reads it: "53,5353,8000-8100".
func FormatPorts(ranges []PortRange) string {
	items := make([]string, len(ranges))
	for i, r := range ranges {
		items[i] = r.String()
	}
	return strings.Join(items, ",")
}

// ParsePorts parses a comma-separated list of ports and ranges such as
// "53,5353,8000-8100".
func ParsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("%q: empty item (want PORT or LO-HI, e.g. 53,8000-8100)", s)
		}
		lo, hi, isRange := strings.Cut(item, "-")
		l, err := parsePort(item, lo)
		if err != nil {
			return nil, err
		}
		h := l
		if isRange {
			if h, err = parsePort(item, hi); err != nil {
				return nil, err
			}
			if h < l {
				return nil, fmt.Errorf("%q: range runs backwards", item)
			}
		}
		out = append(out, PortRange{l, h})
	}
	return out, nil
}

// parsePort parses s, the port or one end of the range item.
func parsePort(item, s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	switch {
	case err == nil:
		return uint16(n), nil
	case s == item:
		return 0, fmt.Errorf("%q is not a port number 0-65535", s)
	}
	return 0, fmt.Errorf("%q: %q is not a port number 0-65535 (want PORT or LO-HI)", item, s)
}

// PortBitmap is the BPF port set: bit p%64 of word p/64 is set for each port p.
type PortBitmap [1024]uint64

// Bitmap returns the set of ports covered by the ranges.
func Bitmap(ranges []PortRange) *PortBitmap {
	var b PortBitmap
	for _, r := range ranges {
		for p := uint32(r.Lo); p <= uint32(r.Hi); p++ {
			b[p>>6] |= 1 << (p & 63)
		}
	}
	return &b
}

// Has reports whether port p is in the set.
func (b *PortBitmap) Has(p uint16) bool { return b[p>>6]&(1<<(p&63)) != 0 }

// ParsePrefix parses an address ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8",
// "fd00::/8"). An IPv4-mapped IPv6 address is taken as the IPv4 address it
// maps, because that is what the kernel puts on the wire.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zones are not supported", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// LPMKey is the key layout of the BPF address tries: the family byte (4 or
// 6) comes first so one trie holds both families; Prefixlen counts it.
type LPMKey struct {
	Prefixlen uint32
	Family    uint8
	Addr      [16]uint8
	Pad       [3]uint8
}

// Key converts a prefix into its trie key.
func Key(p netip.Prefix) LPMKey {
	k := LPMKey{Prefixlen: 8 + uint32(p.Bits())}
	if p.Addr().Is4() {
		k.Family = 4
		a := p.Addr().As4()
		copy(k.Addr[:], a[:])
	} else {
		k.Family = 6
		k.Addr = p.Addr().As16()
	}
	return k
}
