package snmp

import (
	"bufio"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// The fixtures in testdata are copies of this machine's files (Linux 6.18):
//
//	snmp, snmp6                 the host namespace, some traffic
//	snmp-fresh, snmp6-fresh     a new namespace: no IcmpMsg lines at all
//	snmp-noport, snmp6-noport   a new namespace with lo up, after 3 IPv4
//	                            datagrams to 127.0.0.1:9 and one to [::1]:9

// parseFixture parses testdata/<name> and testdata/<name6>.
func parseFixture(t *testing.T, name, name6 string) Counters {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f6, err := os.Open(filepath.Join("testdata", name6))
	if err != nil {
		t.Fatal(err)
	}
	defer f6.Close()
	c, err := Parse(f, f6)
	if err != nil {
		t.Fatalf("Parse(%s, %s): %v", name, name6, err)
	}
	return c
}

// countNames counts the counters of a fixture in a way independent of
// Parse: the names on the odd lines of snmp, the lines of snmp6.
func countNames(t *testing.T, name, name6 string) int {
	t.Helper()
	n := 0
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if i%2 == 0 {
			n += len(strings.Fields(line)) - 1
		}
	}
	b, err = os.ReadFile(filepath.Join("testdata", name6))
	if err != nil {
		t.Fatal(err)
	}
	return n + strings.Count(string(b), "\n")
}

func TestParseFixtures(t *testing.T) {
	minusOne := uint64(math.MaxUint64) // int64(-1)
	tests := []struct {
		snmp, snmp6 string
		want        map[string]uint64 // a selection; 0 also checks Get of absent counters
		absent      []string
	}{
		{
			snmp: "snmp", snmp6: "snmp6",
			want: map[string]uint64{
				"Ip.Forwarding": 2, "Ip.DefaultTTL": 64, "Ip.InReceives": 6094, "Ip.OutTransmits": 3875,
				"Icmp.InMsgs": 2, "Icmp.InDestUnreachs": 2, "Icmp.OutMsgs": 1, "Icmp.OutDestUnreachs": 1,
				"Icmp.OutAddrMaskReps": 0, "IcmpMsg.InType3": 2, "IcmpMsg.OutType3": 1, "IcmpMsg.OutType0": 0,
				"Tcp.RtoMin": 200, "Tcp.MaxConn": minusOne, "Tcp.InCsumErrors": 0, "Tcp.OutRsts": 2,
				"Udp.InDatagrams": 60, "Udp.NoPorts": 1, "Udp.OutDatagrams": 62, "Udp.MemErrors": 0,
				"UdpLite.NoPorts": 0, "Ip6InReceives": 3, "Ip6OutRequests": 12, "Icmp6InType1": 2, "Icmp6OutType143": 4,
				"Icmp6OutDestUnreachs": 2, "Udp6NoPorts": 1, "UdpLite6MemErrors": 0,
			},
			absent: []string{"IcmpMsg.OutType0", "Udp6.NoPorts", "NoPorts", ""},
		},
		{
			snmp: "snmp-fresh", snmp6: "snmp6-fresh",
			want: map[string]uint64{
				"Ip.DefaultTTL": 64, "Ip.InReceives": 0, "Tcp.MaxConn": minusOne,
				"Udp.NoPorts": 0, "IcmpMsg.OutType3": 0, "IcmpMsg.InType3": 0,
				"Udp6NoPorts": 0, "Icmp6OutType1": 0,
			},
			absent: []string{"IcmpMsg.OutType3", "IcmpMsg.InType3", "Icmp6OutType1"},
		},
		{
			snmp: "snmp-noport", snmp6: "snmp6-noport",
			want: map[string]uint64{
				"Udp.NoPorts": 3, "Udp.InDatagrams": 0, "Udp.OutDatagrams": 3,
				"Icmp.OutMsgs": 3, "Icmp.OutDestUnreachs": 3, "Icmp.InDestUnreachs": 3,
				"IcmpMsg.InType3": 3, "IcmpMsg.OutType3": 3,
				"Udp6NoPorts": 1, "Udp6OutDatagrams": 1, "Icmp6OutDestUnreachs": 1, "Icmp6OutType1": 1,
				"Icmp6InType1": 1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.snmp, func(t *testing.T) {
			c := parseFixture(t, tt.snmp, tt.snmp6)
			got := make(map[string]uint64, len(tt.want))
			for name := range tt.want {
				got[name] = c.Get(name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("counters mismatch (-want +got):\n%s", diff)
			}
			for _, name := range tt.absent {
				if v, ok := c[name]; ok {
					t.Errorf("%q present (%d), want absent", name, v)
				}
			}
			if want := countNames(t, tt.snmp, tt.snmp6); len(c) != want {
				t.Errorf("%d counters, want %d", len(c), want)
			}
			if int64(c.Get("Tcp.MaxConn")) != -1 {
				t.Errorf("int64(Tcp.MaxConn) = %d, want -1", int64(c.Get("Tcp.MaxConn")))
			}
		})
	}
}

func TestParseNil(t *testing.T) {
	c, err := Parse(nil, nil)
	if err != nil || c == nil || len(c) != 0 {
		t.Errorf("Parse(nil, nil) = %v, %v; want an empty map", c, err)
	}
	c, err = Parse(strings.NewReader("Udp: NoPorts\nUdp: 7\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Counters{"Udp.NoPorts": 7}, c); diff != "" {
		t.Errorf("snmp only (-want +got):\n%s", diff)
	}
	c, err = Parse(nil, strings.NewReader("Udp6NoPorts 8\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Counters{"Udp6NoPorts": 8}, c); diff != "" {
		t.Errorf("snmp6 only (-want +got):\n%s", diff)
	}
}

func TestParseIcmpMsgPerLine(t *testing.T) {
	// With more than 16 non-zero ICMP types, the kernel prints IcmpMsg in
	// several pairs of lines (icmpmsg_put, PERLINE 16).
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"IcmpMsg: InType0 InType3 InType4 InType5 InType8 InType11 InType12 InType13 InType14 InType15 InType16 InType17 InType18 OutType0 OutType3 OutType8\n" +
		"IcmpMsg: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n" +
		"IcmpMsg: OutType11 OutType12\n" +
		"IcmpMsg: 17 18\n" +
		"Udp: InDatagrams NoPorts\nUdp: 0 5\n"
	c, err := Parse(strings.NewReader(snmp), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{
		"Ip.Forwarding": 1, "Ip.DefaultTTL": 64,
		"IcmpMsg.InType0": 1, "IcmpMsg.InType3": 2, "IcmpMsg.InType4": 3, "IcmpMsg.InType5": 4,
		"IcmpMsg.InType8": 5, "IcmpMsg.InType11": 6, "IcmpMsg.InType12": 7, "IcmpMsg.InType13": 8,
		"IcmpMsg.InType14": 9, "IcmpMsg.InType15": 10, "IcmpMsg.InType16": 11, "IcmpMsg.InType17": 12,
		"IcmpMsg.InType18": 13, "IcmpMsg.OutType0": 14, "IcmpMsg.OutType3": 15, "IcmpMsg.OutType8": 16,
		"IcmpMsg.OutType11": 17, "IcmpMsg.OutType12": 18,
		"Udp.InDatagrams": 0, "Udp.NoPorts": 5,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse(strings.NewReader("Udp: A B C D\nUdp: 0 18446744073709551615 -1 -9223372036854775808\n"),
		strings.NewReader("X6 18446744073709551615\n\tY6\t 0 \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{"Udp.A": 0, "Udp.B": math.MaxUint64, "Udp.C": math.MaxUint64,
		"Udp.D": 1 << 63, "X6": math.MaxUint64, "Y6": 0}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name, snmp, snmp6 string
		want              string // the error, exactly
	}{
		{
			name: "header without values", snmp: "Ip: A\nIp: 1\nUdp: InDatagrams NoPorts\n",
			want: "snmp line 3 (Udp): header without a values line",
		},
		{
			name: "too few values", snmp: "Udp: InDatagrams NoPorts\nUdp: 1\n",
			want: "snmp line 2 (Udp): 1 values for 2 names",
		},
		{
			name: "too many values", snmp: "Ip: A\nIp: 1\nUdp: InDatagrams NoPorts\nUdp: 1 2 3\n",
			want: "snmp line 4 (Udp): 3 values for 2 names",
		},
		{
			name: "values of another section", snmp: "Udp: InDatagrams\nTcp: 1\n",
			want: "snmp line 2 (Tcp): values line follows the Udp header",
		},
		{
			name: "a name as a value", snmp: "Udp: InDatagrams NoPorts\nUdp: 1 NoPorts\n",
			want: `snmp line 2 (Udp.NoPorts): invalid value "NoPorts"`,
		},
		{
			name: "two headers", snmp: "Udp: InDatagrams NoPorts\nUdp: InDatagrams NoPorts\n",
			want: `snmp line 2 (Udp.InDatagrams): invalid value "InDatagrams"`,
		},
		{
			name: "overflow", snmp: "Udp: NoPorts\nUdp: 18446744073709551616\n",
			want: `snmp line 2 (Udp.NoPorts): invalid value "18446744073709551616"`,
		},
		{
			name: "negative overflow", snmp: "Tcp: MaxConn\nTcp: -9223372036854775809\n",
			want: `snmp line 2 (Tcp.MaxConn): invalid value "-9223372036854775809"`,
		},
		{
			name: "plus sign", snmp: "Udp: NoPorts\nUdp: +1\n",
			want: `snmp line 2 (Udp.NoPorts): invalid value "+1"`,
		},
		{
			name: "fraction", snmp: "Udp: NoPorts\nUdp: 1.5\n",
			want: `snmp line 2 (Udp.NoPorts): invalid value "1.5"`,
		},
		{
			name: "hex", snmp: "Udp: NoPorts\nUdp: 0x10\n",
			want: `snmp line 2 (Udp.NoPorts): invalid value "0x10"`,
		},
		{
			name: "no section", snmp: "InDatagrams NoPorts\n1 2\n",
			want: `snmp line 1: "InDatagrams NoPorts": not "Section: fields"`,
		},
		{
			name: "section with a space", snmp: "Udp Lite: A\nUdp Lite: 1\n",
			want: `snmp line 1: "Udp Lite: A": not "Section: fields"`,
		},
		{
			name: "empty section", snmp: ": A\n: 1\n",
			want: `snmp line 1: ": A": not "Section: fields"`,
		},
		{
			name: "no fields", snmp: "Udp: \nUdp: \n",
			want: `snmp line 1: "Udp: ": no fields`,
		},
		{
			name: "blank line", snmp: "Ip: A\nIp: 1\n\nUdp: B\nUdp: 2\n",
			want: `snmp line 3: "": not "Section: fields"`,
		},
		{
			name: "blank values line", snmp: "Udp: B\n\n",
			want: `snmp line 2: "": not "Section: fields"`,
		},
		{
			name: "duplicate counter", snmp: "Udp: A B\nUdp: 1 2\nIp: C\nIp: 3\nUdp: B\nUdp: 4\n",
			want: "snmp line 5: Udp.B appears twice",
		},
		{
			name: "duplicate name in a header", snmp: "Udp: A A\nUdp: 1 2\n",
			want: "snmp line 1: Udp.A appears twice",
		},
		{
			name: "snmp6 name only", snmp6: "Udp6InDatagrams 0\nUdp6NoPorts\n",
			want: `snmp6 line 2: "Udp6NoPorts": not "Name value"`,
		},
		{
			name: "snmp6 three fields", snmp6: "Udp6NoPorts 1 2\n",
			want: `snmp6 line 1: "Udp6NoPorts 1 2": not "Name value"`,
		},
		{
			name: "snmp6 blank line", snmp6: "Udp6InDatagrams 0\n\nUdp6NoPorts 1\n",
			want: `snmp6 line 2: "": not "Name value"`,
		},
		{
			name: "snmp6 not a number", snmp6: "Udp6NoPorts one\n",
			want: `snmp6 line 1 (Udp6NoPorts): invalid value "one"`,
		},
		{
			name: "snmp6 duplicate", snmp6: "Udp6NoPorts 1\nUdp6InErrors 0\nUdp6NoPorts 1\n",
			want: "snmp6 line 3: Udp6NoPorts appears twice",
		},
		{
			name: "snmp format as snmp6", snmp6: "Udp: InDatagrams NoPorts\nUdp: 1 2\n",
			want: `snmp6 line 1: "Udp: InDatagrams NoPorts": not "Name value"`,
		},
		{
			name: "snmp6 format as snmp", snmp: "Udp6NoPorts 1\n",
			want: `snmp line 1: "Udp6NoPorts 1": not "Section: fields"`,
		},
		{
			name: "good snmp, bad snmp6", snmp: "Udp: NoPorts\nUdp: 1\n", snmp6: "Udp6NoPorts -\n",
			want: `snmp6 line 1 (Udp6NoPorts): invalid value "-"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.snmp), strings.NewReader(tt.snmp6))
			if err == nil {
				t.Fatalf("Parse succeeded: %v", c)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse error\n got %s\nwant %s", err, tt.want)
			}
			if c != nil {
				t.Errorf("Parse returned counters with its error: %v", c)
			}
		})
	}
}

func TestParseReadError(t *testing.T) {
	errDisk := errors.New("disk on fire")
	if _, err := Parse(iotest.ErrReader(errDisk), nil); !errors.Is(err, errDisk) {
		t.Errorf("snmp read error: got %v, want %v", err, errDisk)
	}
	if _, err := Parse(nil, iotest.ErrReader(errDisk)); !errors.Is(err, errDisk) {
		t.Errorf("snmp6 read error: got %v, want %v", err, errDisk)
	}
	// A read error between a header and its values line.
	half := &failAfter{data: "Udp: NoPorts\n", err: errDisk}
	if _, err := Parse(half, nil); !errors.Is(err, errDisk) {
		t.Errorf("read error after a header: got %v, want %v", err, errDisk)
	}
	// A line longer than bufio.Scanner's limit.
	long := "Udp: " + strings.Repeat("A", bufio.MaxScanTokenSize) + "\nUdp: 1\n"
	if _, err := Parse(strings.NewReader(long), nil); !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("long line: got %v, want %v", err, bufio.ErrTooLong)
	}
}

// failAfter returns data, then err.
type failAfter struct {
	data string
	err  error
}

func (r *failAfter) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestSub(t *testing.T) {
	fresh := parseFixture(t, "snmp-fresh", "snmp6-fresh")
	noport := parseFixture(t, "snmp-noport", "snmp6-noport")
	d := Sub(noport, fresh)
	want := map[string]uint64{
		"Udp.NoPorts": 3, "Udp.OutDatagrams": 3, "IcmpMsg.OutType3": 3, "Icmp.OutDestUnreachs": 3,
		"Udp6NoPorts": 1, "Icmp6OutType1": 1, "Ip.DefaultTTL": 0, "Tcp.MaxConn": 0,
	}
	got := make(map[string]uint64)
	for name := range want {
		got[name] = d.Get(name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Sub mismatch (-want +got):\n%s", diff)
	}
	if len(d) != len(noport) {
		t.Errorf("Sub has %d counters, want the %d of after", len(d), len(noport))
	}

	got2 := Sub(Counters{"a": 1, "b": 5, "new": 2}, Counters{"a": 2, "b": 5, "gone": 9})
	want2 := Counters{"a": math.MaxUint64, "b": 0, "new": 2}
	if diff := cmp.Diff(want2, got2); diff != "" {
		t.Errorf("Sub wrap/absent mismatch (-want +got):\n%s", diff)
	}
	if d := Sub(nil, Counters{"a": 1}); d == nil || len(d) != 0 {
		t.Errorf("Sub(nil, ...) = %v, want empty", d)
	}
}

func TestReadSelf(t *testing.T) {
	c, err := ReadSelf()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Udp.NoPorts", "Udp.InDatagrams", "Icmp.OutDestUnreachs", "Ip.DefaultTTL"} {
		if _, ok := c[name]; !ok {
			t.Errorf("ReadSelf has no %s", name)
		}
	}
	if ttl := c.Get("Ip.DefaultTTL"); ttl == 0 || ttl > 255 {
		t.Errorf("Ip.DefaultTTL = %d", ttl)
	}
	if _, err := os.Stat("/proc/self/net/snmp6"); err == nil {
		if _, ok := c["Udp6NoPorts"]; !ok {
			t.Error("ReadSelf has no Udp6NoPorts though /proc/self/net/snmp6 exists")
		}
	}
}

func TestReadNetnsEmptyPath(t *testing.T) {
	c, err := ReadNetns("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c["Udp.NoPorts"]; !ok {
		t.Error(`ReadNetns("") has no Udp.NoPorts`)
	}
}

func TestReadNetnsErrors(t *testing.T) {
	if _, err := ReadNetns("/nonexistent/netns"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadNetns(nonexistent) = %v, want ErrNotExist", err)
	}
	// Not a network namespace: setns fails (EINVAL as root, EPERM if not).
	for _, path := range []string{"/proc/self/ns/uts", "/dev/null"} {
		if _, err := ReadNetns(path); err == nil || !strings.Contains(err.Error(), "setns") {
			t.Errorf("ReadNetns(%s) = %v, want a setns error", path, err)
		}
	}
	// And the process can still read its own counters.
	if _, err := ReadSelf(); err != nil {
		t.Error(err)
	}
}
