package main

import (
	"bytes"
	"math/big"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/udptrace/udptrace/internal/loader"
)

// sizeSyntax is what --ring-size accepts: decimal digits and a K or M.
var sizeSyntax = regexp.MustCompile(`^([0-9]+)([KkMm]?)$`)

// FuzzParseSize: parseSize accepts exactly the digits with an optional K or
// M suffix whose value, computed without overflow, is a power of two from
// 4K to 1024M, and returns that value.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4K", "8M", "1024m", "65536", "", "M", "3000", "2K", "2048M", "-4K", "+8M", " 8M", "1.5M",
		"8G", "0", "0004K", "17592186044420M", "9223372036854775807K", "18446744073709551616"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		size, err := parseSize(s)
		want := new(big.Int)
		if m := sizeSyntax.FindStringSubmatch(s); m != nil {
			want.SetString(m[1], 10)
			switch m[2] {
			case "K", "k":
				want.Lsh(want, 10)
			case "M", "m":
				want.Lsh(want, 20)
			}
		}
		ok := want.Sign() > 0 && want.BitLen() >= 13 && want.BitLen() <= 31 && want.TrailingZeroBits() == uint(want.BitLen()-1)
		switch {
		case ok && (err != nil || int64(size) != want.Int64()):
			t.Fatalf("parseSize(%q) = %d, %v; want %v", s, size, err, want)
		case !ok && err == nil:
			t.Fatalf("parseSize(%q) = %d; want an error", s, size)
		case err != nil && strings.ContainsAny(err.Error(), "\n\r"):
			t.Fatalf("parseSize(%q): error %q is not one line", s, err)
		}
	})
}

// pidSyntax is one --pid item, once trimmed.
var pidSyntax = regexp.MustCompile(`^[0-9]+$`)

// FuzzParsePIDFlags: parsePIDFlags accepts exactly the comma-separated
// lists of decimal numbers from 1 to 2^32-1 (spaces around them allowed)
// and returns them in order; anything else is a one-line usage error
// naming --pid.
func FuzzParsePIDFlags(f *testing.F) {
	for _, s := range []string{"1", "1,42", " 7 , 8", "4294967295", "4294967296", "0", "-3", "abc", "", "12,x", "1,", "+5", "0x10", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pids, err := parsePIDFlags([]string{s})
		var want []uint32
		ok := true
		for _, item := range strings.Split(s, ",") {
			item = strings.TrimSpace(item)
			n, valid := new(big.Int).SetString(item, 10)
			if !pidSyntax.MatchString(item) || !valid || n.Sign() <= 0 || n.BitLen() > 32 {
				ok = false
				break
			}
			want = append(want, uint32(n.Uint64()))
		}
		if !ok {
			if err == nil {
				t.Fatalf("parsePIDFlags(%q) = %v; want an error", s, pids)
			}
			checkUsageError(t, err, "--pid: ")
			return
		}
		if err != nil || len(pids) != len(want) {
			t.Fatalf("parsePIDFlags(%q) = %v, %v; want %v", s, pids, err, want)
		}
		for i := range want {
			if pids[i] != want[i] {
				t.Fatalf("parsePIDFlags(%q) = %v; want %v", s, pids, want)
			}
		}
	})
}

// checkUsageError fails unless err is a usage error, exit code 2, printed
// as one line starting "udptrace: " and then prefix.
func checkUsageError(t *testing.T, err error, prefix string) {
	t.Helper()
	var stderr bytes.Buffer
	code := exitCode(err, &stderr)
	line := stderr.String()
	if _, ok := err.(usageError); !ok || code != 2 || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") ||
		!strings.HasPrefix(line, "udptrace: "+prefix) {
		t.Fatalf("%T %v: exit code %d, stderr %q; want 2 and one line starting %q", err, err, code, line, "udptrace: "+prefix)
	}
}

// FuzzConfig: whatever the values of the filter and tracer flags, config
// does not panic; it either refuses them with a usage error printed as one
// line that starts with a flag's name, or returns a configuration that
// keeps the flags' promises: one family at most, and every prefix of it,
// process ids above 0, names of at most 15 bytes, a ring buffer a power of
// two from 4K to 1024M, a backend udptrace has, a namespace with an inode.
func FuzzConfig(f *testing.F) {
	f.Add("53,5353,8000-8100", "1000", "10.0.0.0/8,fd00::/8", "::1", "1,42", "dig", "", "512K", "kprobe", "never", ":9477", false, false)
	f.Add("9", "", "10.0.0.1", "", "", "", "/proc/self/ns/net", "8M", "auto", "auto", "", true, false)
	f.Add("", "", "", "fd00::/64", "", "systemd-resolved", "/proc/self/ns/mnt", "4K", "fentry", "always", "127.0.0.1:0", false, true)
	f.Add("10-5", "x", "10.0.0.0/33", "bogus", "0", "", "nosuchname", "3000", "foo", "maybe", "bogus", true, true)
	f.Add("70000", "", "", "", "-3", "", "1", "17592186044420M", "", "", "[::1]:99999", false, false)
	f.Add("", "", "::ffff:10.0.0.1", "", "", "", "4026531840", "1M", "tracepoint", "", "bad host:1", true, false)
	f.Fuzz(func(t *testing.T, ports, sports, src, dst, pids, comm, netns, ringSize, backend, color, metrics string, v4, v6 bool) {
		o := options{ipv4: v4, ipv6: v6, netns: netns, ringSize: ringSize, backend: backend, color: color, metrics: metrics}
		for _, v := range []struct {
			to  *[]string
			val string
		}{{&o.ports, ports}, {&o.sports, sports}, {&o.src, src}, {&o.dst, dst}, {&o.pids, pids}, {&o.comms, comm}} {
			if v.val != "" {
				*v.to = []string{v.val}
			}
		}
		c, err := o.config()
		if err != nil {
			checkUsageError(t, err, "-")
			return
		}
		if v4 && v6 {
			t.Fatalf("-4 -6 accepted: %+v", c.loader)
		}
		family := map[bool]uint8{true: 4, false: 6}
		for _, p := range append(append([]netip.Prefix{}, c.loader.Src...), c.loader.Dst...) {
			if c.loader.Family != 0 && c.loader.Family != family[p.Addr().Is4()] {
				t.Fatalf("family %d with prefix %v", c.loader.Family, p)
			}
		}
		if want := map[[2]bool]uint8{{true, false}: 4, {false, true}: 6}[[2]bool{v4, v6}]; c.loader.Family != want {
			t.Fatalf("-4 %v -6 %v: family %d", v4, v6, c.loader.Family)
		}
		for _, pid := range c.loader.PIDs {
			if pid == 0 {
				t.Fatalf("pid 0 accepted from %q", pids)
			}
		}
		for _, name := range c.loader.Comms {
			if name == "" || len(name) > 15 || !strings.HasPrefix(comm, name) {
				t.Fatalf("comm %q from %q", name, comm)
			}
		}
		if r := c.loader.RingSize; r < 4096 || r > 1<<30 || r&(r-1) != 0 {
			t.Fatalf("ring size %d from %q", r, ringSize)
		}
		if _, err := loader.ParseBackend(string(c.loader.Backend)); err != nil || c.loader.Backend == "" {
			t.Fatalf("backend %q from %q", c.loader.Backend, backend)
		}
		if c.ns.inode == 0 || netns != "" && c.loader.TargetNetns != c.ns.inode {
			t.Fatalf("netns %q: %+v, target %d", netns, c.ns, c.loader.TargetNetns)
		}
	})
}
