package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/udptrace/udptrace/internal/filter"
	"github.com/udptrace/udptrace/internal/loader"
)

func TestOptionsConfig(t *testing.T) {
	o := options{ports: []string{"53,5353", "8000-8100"}, sports: []string{"1000"}, src: []string{"10.0.0.0/8,fd00::/8"},
		dst: []string{"::1"}, ringSize: "512K", count: 5, pids: []string{"1,42", "7"}, comms: []string{"dig", "systemd-resolved"}, backend: "kprobe"}
	c, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]filter.PortRange{{Lo: 53, Hi: 53}, {Lo: 5353, Hi: 5353}, {Lo: 8000, Hi: 8100}}, c.loader.DPorts); diff != "" {
		t.Error(diff)
	}
	wantSrc := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	if diff := cmp.Diff(wantSrc, c.loader.Src, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]uint32{1, 42, 7}, c.loader.PIDs); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"dig", "systemd-resolve"}, c.loader.Comms); diff != "" {
		t.Errorf("comms are cut to the kernel's 15 bytes: %s", diff)
	}
	if c.loader.Backend != loader.Kprobe {
		t.Errorf("backend %q", c.loader.Backend)
	}
	if c.loader.RingSize != 512<<10 || c.count != 5 || c.loader.Family != 0 || c.loader.TargetNetns != 0 || c.loader.StatsNetns == 0 {
		t.Errorf("config %+v", c)
	}
	for _, tc := range []struct {
		v4, v6 bool
		want   uint8
	}{{false, false, 0}, {true, false, 4}, {false, true, 6}} {
		o := options{ipv4: tc.v4, ipv6: tc.v6, ringSize: "8M", backend: "auto"}
		c, err := o.config()
		if err != nil || c.loader.Family != tc.want {
			t.Errorf("-4=%v -6=%v: family %d, %v; want %d", tc.v4, tc.v6, c.loader.Family, err, tc.want)
		}
	}
	// -4 -6 together is a conflict, not "both": neither is both.
	o = options{ipv4: true, ipv6: true, ringSize: "8M", backend: "auto"}
	if _, err := o.config(); err == nil || err.Error() != "-4/--ipv4 and -6/--ipv6 together: give one family, or neither for both" {
		t.Errorf("-4 -6: %v", err)
	}
	// A zero -c or -d is refused when given, and means "no limit" when not.
	for _, flag := range []string{"count", "duration"} {
		o = options{ringSize: "8M", backend: "auto", changed: func(name string) bool { return name == flag }}
		if _, err := o.config(); err == nil {
			t.Errorf("--%s 0: no error", flag)
		}
	}
	o = options{ringSize: "8M", backend: "auto"}
	if c, err := o.config(); err != nil || c.count != 0 || c.duration != 0 {
		t.Errorf("no -c, no -d: %+v, %v", c, err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"4K": 4096, "8M": 8 << 20, "1024m": 1 << 30, "65536": 65536} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	// 17592186044420M is 2^64 + 4M bytes: n*mult wrapped round to 4M.
	for _, bad := range []string{"", "M", "3000", "2K", "2048M", "-4K", "1.5M", "8G", "17592186044420M", "9223372036854775807K", "+8M", " 8M"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("%q: %d, want an error", bad, got)
		}
	}
}
