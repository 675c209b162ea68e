package filter

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []PortRange
	}{
		{"53", []PortRange{{53, 53}}},
		{"53,5353,8000-8100", []PortRange{{53, 53}, {5353, 5353}, {8000, 8100}}},
		{" 0 , 65535", []PortRange{{0, 0}, {65535, 65535}}},
		{"1-1", []PortRange{{1, 1}}},
	} {
		got, err := ParsePorts(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, bad := range []string{"", ",", "53,", "65536", "-1", "9-1", "a", "1-2-3", "1-", "0x10", "53 54"} {
		if got, err := ParsePorts(bad); err == nil {
			t.Errorf("%q: got %v, want an error", bad, got)
		}
	}
}

func TestBitmap(t *testing.T) {
	b := Bitmap([]PortRange{{0, 0}, {63, 64}, {8000, 8100}, {65535, 65535}})
	want := map[uint16]bool{0: true, 63: true, 64: true, 65535: true}
	for p := 8000; p <= 8100; p++ {
		want[uint16(p)] = true
	}
	n := 0
	for p := 0; p <= 65535; p++ {
		if b.Has(uint16(p)) != want[uint16(p)] {
			t.Errorf("port %d: Has %v, want %v", p, b.Has(uint16(p)), want[uint16(p)])
		}
		if b.Has(uint16(p)) {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("%d ports set, want %d", n, len(want))
	}
}

func TestParsePrefix(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1", "10.0.0.1/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::1", "::1/128"},
		{"fd00::1/64", "fd00::/64"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"0.0.0.0/0", "0.0.0.0/0"},
	} {
		got, err := ParsePrefix(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("%q: got %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "foo", "10.0.0.0/33", "::/129", "300.1.1.1", "fe80::1%eth0", "10.0.0.1/", "/8"} {
		if got, err := ParsePrefix(bad); err == nil {
			t.Errorf("%q: got %v, want an error", bad, got)
		}
	}
}

func TestKey(t *testing.T) {
	k := Key(netip.MustParsePrefix("10.0.0.0/8"))
	if k.Prefixlen != 16 || k.Family != 4 || k.Addr[0] != 10 || k.Addr[4] != 0 {
		t.Errorf("IPv4 key %+v", k)
	}
	k = Key(netip.MustParsePrefix("fd00::/8"))
	if k.Prefixlen != 16 || k.Family != 6 || k.Addr[0] != 0xfd {
		t.Errorf("IPv6 key %+v", k)
	}
}
