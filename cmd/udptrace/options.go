package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/filter"
	"github.com/udptrace/udptrace/internal/loader"
)

// options are the raw flag values; config validates them.
type options struct {
	ports, sports []string
	src, dst      []string
	pids, comms   []string
	ipv4, ipv6    bool
	netns         string
	json          bool
	record        string
	explain       bool
	color         string
	count         uint64
	duration      time.Duration
	readyFile     string
	ringSize      string
	backend       string
	metrics       string
	btf           string // --btf FILE
	lean          bool
	// changed tells whether a flag was on the command line (for the
	// values whose default means "unset"); nil: none was.
	changed func(name string) bool
}

// explicit tells whether the flag name was given on the command line.
func (o *options) explicit(name string) bool { return o.changed != nil && o.changed(name) }

func (o *options) register(c *cobra.Command) {
	f := c.Flags()
	f.SortFlags = false
	o.registerFilters(f)
	f.BoolVarP(&o.json, "json", "j", false, "print JSON lines (schema in the README) instead of a table")
	f.StringVar(&o.record, "record", "", "also write every record, and the summary, as JSON lines to `FILE` (see udptrace replay)")
	f.BoolVar(&o.explain, "explain", false, "follow each record with the kernel functions it went through")
	registerColor(f, &o.color)
	f.Uint64VarP(&o.count, "count", "c", 0, "stop after `N` datagrams (and the rest of their chains, 0.25 s more)")
	f.DurationVarP(&o.duration, "duration", "d", 0, "stop after `D`, e.g. 30s, 5m")
	f.StringVar(&o.readyFile, "ready-file", "", "create `PATH` once every program is attached")
	f.StringVar(&o.ringSize, "ring-size", "8M", "ring buffer `SIZE` in bytes, a power of two (K and M suffixes)")
	f.StringVar(&o.backend, "backend", "auto", "how to hook the kernel: `auto`, fentry, tracepoint or kprobe (see udptrace doctor)")
	f.BoolVar(&o.lean, "lean", false, "cheapest mode, for busy hosts: the drop and its ICMP verdict only; no sender (shown as untraced), no delivery or syscall records, so healthy traffic runs no udptrace program (see Cost in the README)")
	registerMetrics(f, &o.metrics)
	registerBTF(f, &o.btf)
}

// registerFilters adds the flags that select datagrams (shared with top).
func (o *options) registerFilters(f *pflag.FlagSet) {
	f.StringArrayVarP(&o.ports, "port", "p", nil, "destination `PORTS`: a list and ranges, e.g. 53,5353,8000-8100 (repeatable)")
	f.StringArrayVar(&o.sports, "sport", nil, "source `PORTS`, same form as --port (repeatable)")
	f.StringArrayVar(&o.src, "src", nil, "source `ADDR|CIDR`, IPv4 or IPv6 (repeatable)")
	f.StringArrayVar(&o.dst, "dst", nil, "destination `ADDR|CIDR`, IPv4 or IPv6 (repeatable)")
	f.StringArrayVar(&o.pids, "pid", nil, "only chains of process `PID`: datagrams it sent, and its calls that got ECONNREFUSED (repeatable, or comma-separated)")
	f.StringArrayVar(&o.comms, "comm", nil, "only chains of tasks named `NAME`, as --pid (its first 15 bytes, as the kernel keeps; repeatable)")
	f.BoolVarP(&o.ipv4, "ipv4", "4", false, "IPv4 only (not with -6; without either, both families)")
	f.BoolVarP(&o.ipv6, "ipv6", "6", false, "IPv6 only (not with -4)")
	f.StringVar(&o.netns, "netns", "", "only this network namespace: a `NAME` under /var/run/netns, a path such as /proc/PID/ns/net, or an inode number")
}

// config is a validated run configuration.
type config struct {
	loader    loader.Config
	ns        netnsRef // the namespace to reconcile with (and to trace, if netnsSet)
	format    events.Format
	record    string    // --record FILE, or ""
	explain   bool      // --explain
	color     colorMode // of the table
	count     uint64
	duration  time.Duration
	readyFile string
	metrics   string // --metrics ADDR, or ""
}

func (o *options) config() (config, error) {
	c := config{format: events.FormatText, count: o.count, duration: o.duration, readyFile: o.readyFile,
		record: o.record, explain: o.explain, metrics: o.metrics}
	if o.json {
		c.format = events.FormatJSON
	}
	var err error
	if c.color, err = parseColor(o.color); err != nil {
		return c, err
	}
	if c.loader.DPorts, err = parsePortFlags("--port", o.ports); err != nil {
		return c, err
	}
	if c.loader.SPorts, err = parsePortFlags("--sport", o.sports); err != nil {
		return c, err
	}
	if c.loader.Src, err = parsePrefixFlags("--src", o.src); err != nil {
		return c, err
	}
	if c.loader.Dst, err = parsePrefixFlags("--dst", o.dst); err != nil {
		return c, err
	}
	if c.loader.PIDs, err = parsePIDFlags(o.pids); err != nil {
		return c, err
	}
	if c.loader.Comms, err = parseCommFlags(o.comms); err != nil {
		return c, err
	}
	switch {
	case o.ipv4 && o.ipv6:
		return c, usagef("-4/--ipv4 and -6/--ipv6 together: give one family, or neither for both")
	case o.ipv4:
		c.loader.Family = 4
	case o.ipv6:
		c.loader.Family = 6
	}
	if err := checkFamily("--src", c.loader.Src, c.loader.Family); err != nil {
		return c, err
	}
	if err := checkFamily("--dst", c.loader.Dst, c.loader.Family); err != nil {
		return c, err
	}
	if o.duration < 0 || o.duration == 0 && o.explicit("duration") {
		return c, usagef("--duration %s: want a positive duration such as 30s (without -d, until Ctrl-C)", o.duration)
	}
	if o.count == 0 && o.explicit("count") {
		return c, usagef("--count 0: want at least 1 (without -c, until Ctrl-C)")
	}
	if c.loader.Lean = o.lean; o.lean && (len(c.loader.PIDs) > 0 || len(c.loader.Comms) > 0) {
		return c, usagef("--lean records no sender, so --pid/--comm cannot select chains: give one or the other")
	}
	if c.loader.BTF, err = loadBTFFlag(o.btf); err != nil {
		return c, err
	}
	if c.loader.Backend, err = loader.ParseBackend(o.backend); err != nil {
		return c, usagef("--backend: %v", err)
	}
	if c.loader.RingSize, err = parseSize(o.ringSize); err != nil {
		return c, usagef("--ring-size %q: %v", o.ringSize, err)
	}
	if o.metrics != "" {
		if err := checkMetricsAddr(o.metrics); err != nil {
			return c, err
		}
	}
	if c.ns, err = resolveNetns(o.netns); err != nil {
		return c, netnsError(o.netns, err)
	}
	c.loader.StatsNetns = c.ns.inode
	c.loader.PrimeNetns = []string{c.ns.path}
	if c.ns.path == "" {
		c.loader.PrimeNetns = []string{"/proc/self/ns/net"}
	}
	if o.netns != "" {
		c.loader.TargetNetns = c.ns.inode
	}
	return c, nil
}

// colorMode is the --color flag: when the table has colours.
type colorMode int

const (
	colorAuto   colorMode = iota // when stdout is a terminal and NO_COLOR is not set
	colorAlways                  // always, NO_COLOR or not
	colorNever
)

func registerColor(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "color", "auto", "colour the table: `WHEN` is auto (when stdout is a terminal and NO_COLOR is not set), always or never")
}

// parseColor parses --color; "" is the default, auto.
func parseColor(s string) (colorMode, error) {
	switch s {
	case "auto", "":
		return colorAuto, nil
	case "always":
		return colorAlways, nil
	case "never":
		return colorNever, nil
	}
	return 0, usagef("--color %q: want auto, always or never", s)
}

// colorWanted parses a --color value and tells whether output to w gets
// colours.
func colorWanted(s string, w io.Writer) (bool, error) {
	m, err := parseColor(s)
	if err != nil {
		return false, err
	}
	return m.on(w), nil
}

// on tells whether output to w has colours: always; or, for auto, when w
// is a terminal and the environment has no NO_COLOR (https://no-color.org:
// set and not empty).
func (m colorMode) on(w io.Writer) bool {
	switch m {
	case colorAlways:
		return true
	case colorAuto:
		return os.Getenv("NO_COLOR") == "" && isTerminal(w)
	}
	return false
}

// isTerminal tells whether w is a file open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func parsePortFlags(flag string, values []string) ([]filter.PortRange, error) {
	var all []filter.PortRange
	for _, v := range values {
		r, err := filter.ParsePorts(v)
		if err != nil {
			return nil, usagef("%s: %v", flag, err)
		}
		all = append(all, r...)
	}
	return all, nil
}

func parsePrefixFlags(flag string, values []string) ([]netip.Prefix, error) {
	var all []netip.Prefix
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			if strings.TrimSpace(item) == "" {
				return nil, usagef("%s: %q: empty item (want ADDR or CIDR, e.g. 10.0.0.0/8,fd00::/64)", flag, v)
			}
			p, err := filter.ParsePrefix(item)
			if err != nil {
				return nil, usagef("%s: %v", flag, err)
			}
			all = append(all, p)
		}
	}
	return all, nil
}

// checkFamily refuses a prefix of flag that -4 or -6 (family 4 or 6; 0 for
// neither) keeps from ever matching.
func checkFamily(flag string, prefixes []netip.Prefix, family uint8) error {
	for _, p := range prefixes {
		if family != 0 && (family == 4) != p.Addr().Is4() {
			return usagef("%s %s can never match with -%d (IPv%d only)", flag, p, family, family)
		}
	}
	return nil
}

// parsePIDFlags parses the --pid values: process ids, each value a
// comma-separated list.
func parsePIDFlags(values []string) ([]uint32, error) {
	var all []uint32
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(item), 10, 32)
			if err != nil || n == 0 {
				return nil, usagef("--pid: %q is not a process id (a positive number)", item)
			}
			all = append(all, uint32(n))
		}
	}
	return all, nil
}

// parseCommFlags parses the --comm values: task names, cut to the 15
// bytes the kernel keeps (TASK_COMM_LEN - 1).
func parseCommFlags(values []string) ([]string, error) {
	var all []string
	for _, v := range values {
		if v == "" {
			return nil, usagef("--comm: empty name")
		}
		if len(v) > 15 {
			v = v[:15]
		}
		all = append(all, v)
	}
	return all, nil
}

// maxRingSize is the largest --ring-size, 1024M.
const maxRingSize = 1 << 30

// parseSize parses "8M", "512K", "4194304": decimal digits, and a K or M
// (or k, m) suffix.
func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if !isDigits(s) || err != nil || n <= 0 {
		return 0, fmt.Errorf("want a size such as 8M, 512K or 4194304")
	}
	if n > maxRingSize/mult { // before n*mult can wrap round to a valid size
		return 0, fmt.Errorf("want a power of two between 4K and 1024M")
	}
	size := n * mult
	if size&(size-1) != 0 || size < 4096 || size > maxRingSize {
		return 0, fmt.Errorf("want a power of two between 4K and 1024M")
	}
	return size, nil
}
