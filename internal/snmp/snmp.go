// Package snmp reads the per-network-namespace protocol counters of Linux,
// /proc/net/snmp and /proc/net/snmp6, the ones that nstat and netstat -s
// show: udptrace checks its event counts against Udp.NoPorts, Udp6NoPorts
// and the ICMP port-unreachable counters.
//
// It imports nothing else from udptrace.
package snmp

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Counters maps counter names to values. Names from /proc/net/snmp are
// "Section.Name", as nstat spells them without its prefix: "Udp.NoPorts",
// "Icmp.OutDestUnreachs", "IcmpMsg.OutType3". Names from /proc/net/snmp6
// are kept as they are: "Udp6NoPorts", "Icmp6OutDestUnreachs",
// "Icmp6OutType1".
//
// The one signed counter, Tcp.MaxConn (-1: no limit), is stored as its
// two's complement: read it as int64(c.Get("Tcp.MaxConn")).
type Counters map[string]uint64

// Get returns the counter called name, or 0 when c has no such counter.
// Absent and zero are the same for the counters that udptrace reads: the
// kernel prints an IcmpMsg column (InType3, OutType3, ...) only once that
// counter is non-zero, and no IcmpMsg lines at all in a namespace that has
// not seen ICMP yet.
func (c Counters) Get(name string) uint64 { return c[name] }

// Sub returns after - before for each counter of after, in uint64
// arithmetic: counters only grow, and the modular difference is still the
// right one across a wrap of the counter. A counter absent from before
// counts as 0 there (an IcmpMsg column that became non-zero); counters only
// in before are left out. Tcp.MaxConn and the other gauges (Ip.Forwarding,
// Ip.DefaultTTL, Tcp.CurrEstab, ...) are not counters: their difference
// means little.
func Sub(after, before Counters) Counters {
	d := make(Counters, len(after))
	for name, v := range after {
		d[name] = v - before[name]
	}
	return d
}

// Parse parses the contents of /proc/net/snmp and /proc/net/snmp6. Either
// reader may be nil, for a file that is absent: snmp6 is when IPv6 is
// disabled. It is strict: a header line without its values line, a values
// line of another section or with another number of fields, a value that
// is not a number, or a counter that appears twice is an error that names
// the file and line.
func Parse(snmp, snmp6 io.Reader) (Counters, error) {
	c := make(Counters, 256)
	if snmp != nil {
		if err := parseSNMP(snmp, c); err != nil {
			return nil, err
		}
	}
	if snmp6 != nil {
		if err := parseSNMP6(snmp6, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// parseSNMP parses /proc/net/snmp into c: pairs of lines
//
//	Udp: InDatagrams NoPorts InErrors ...
//	Udp: 42 0 0 ...
//
// for each section (Ip, Icmp, IcmpMsg, Tcp, Udp, UdpLite). A section may
// come more than once: the kernel prints IcmpMsg 16 columns to a pair.
func parseSNMP(r io.Reader, c Counters) error {
	s := bufio.NewScanner(r)
	n := 0 // line number
	for s.Scan() {
		n++
		section, names, err := splitSNMPLine(s.Text())
		if err != nil {
			return fmt.Errorf("snmp line %d: %w", n, err)
		}
		if !s.Scan() {
			if err := s.Err(); err != nil {
				return fmt.Errorf("read snmp: %w", err)
			}
			return fmt.Errorf("snmp line %d (%s): header without a values line", n, section)
		}
		n++
		vsection, values, err := splitSNMPLine(s.Text())
		if err != nil {
			return fmt.Errorf("snmp line %d: %w", n, err)
		}
		if vsection != section {
			return fmt.Errorf("snmp line %d (%s): values line follows the %s header", n, vsection, section)
		}
		if len(values) != len(names) {
			return fmt.Errorf("snmp line %d (%s): %d values for %d names", n, section, len(values), len(names))
		}
		for i, name := range names {
			key := section + "." + name
			v, err := parseValue(values[i])
			if err != nil {
				return fmt.Errorf("snmp line %d (%s): %w", n, key, err)
			}
			if _, dup := c[key]; dup {
				return fmt.Errorf("snmp line %d: %s appears twice", n-1, key)
			}
			c[key] = v
		}
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read snmp: %w", err)
	}
	return nil
}

// splitSNMPLine splits "Section: f1 f2 ..." into the section name and the
// fields.
func splitSNMPLine(line string) (section string, fields []string, err error) {
	section, rest, ok := strings.Cut(line, ": ")
	if !ok || section == "" || strings.ContainsAny(section, " \t") {
		return "", nil, fmt.Errorf("%q: not \"Section: fields\"", line)
	}
	fields = strings.Fields(rest)
	if len(fields) == 0 {
		return "", nil, fmt.Errorf("%q: no fields", line)
	}
	return section, fields, nil
}

// parseSNMP6 parses /proc/net/snmp6 into c: lines "Name value", the name
// padded with spaces and a tab.
func parseSNMP6(r io.Reader, c Counters) error {
	s := bufio.NewScanner(r)
	n := 0
	for s.Scan() {
		n++
		f := strings.Fields(s.Text())
		if len(f) != 2 {
			return fmt.Errorf("snmp6 line %d: %q: not \"Name value\"", n, s.Text())
		}
		v, err := parseValue(f[1])
		if err != nil {
			return fmt.Errorf("snmp6 line %d (%s): %w", n, f[0], err)
		}
		if _, dup := c[f[0]]; dup {
			return fmt.Errorf("snmp6 line %d: %s appears twice", n, f[0])
		}
		c[f[0]] = v
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read snmp6: %w", err)
	}
	return nil
}

// parseValue parses a counter: a decimal uint64, or for Tcp.MaxConn a
// negative int64, returned as its two's complement.
func parseValue(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid value %q", s)
		}
		return uint64(v), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q", s)
	}
	return v, nil
}
