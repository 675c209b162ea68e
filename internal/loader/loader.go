// Package loader loads udptrace's BPF programs into the running kernel, sets
// their filters, attaches them and hands out the ring buffer of events.
package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/filter"
)

// DefaultRingSize holds about 55 000 events (152 bytes each with the
// record header): ~0.4 s of a loopback flood.
const DefaultRingSize = 8 << 20

// Sizes of the structs shared with the BPF side, as bpf2go generated them
// from the object's BTF.
const (
	EventSize  = int(unsafe.Sizeof(udptraceEvent{}))
	LPMKeySize = unsafe.Sizeof(udptraceLpmKey{})
)

// CStructSize returns the size of a struct as the compiler laid it out in
// the embedded BPF object (from its BTF).
func CStructSize(name string) (int, error) {
	spec, err := loadUdptrace()
	if err != nil {
		return 0, err
	}
	var st *btf.Struct
	if err := spec.Types.TypeByName(name, &st); err != nil {
		return 0, err
	}
	return int(st.Size), nil
}

// Config says what to trace. The zero value traces every namespace and
// family with no filter.
type Config struct {
	TargetNetns uint32 // only this namespace (inode); 0 for all
	StatsNetns  uint32 // namespace whose datagrams are counted for the summary
	Family      uint8  // 4, 6, or 0 for both
	DPorts      []filter.PortRange
	SPorts      []filter.PortRange
	Src, Dst    []netip.Prefix
	PIDs        []uint32 // sender's process id (tgid)
	Comms       []string // sender's task name (the kernel keeps 15 bytes)
	RingSize    int      // bytes: a power of two, at least a page
	Backend     Backend  // "" or Auto: the first of Backends that works
	// Aggregate counts wanted datagrams in the kernel (udptrace top, read
	// with Tracer.Aggregates) instead of streaming events; the chain's
	// other hooks are then not attached.
	Aggregate bool
	// Lean attaches only the drop and its reply's hooks (--lean): no
	// sender (events say SenderUntraced), no delivery or syscall records,
	// and on the tracepoint backend no IPv6 verdict. Healthy traffic then
	// runs no udptrace program at all.
	Lean bool
	// AggEntries bounds top's table (keys); 0 means 16384.
	AggEntries int
	// PrimeNetns are paths of namespaces (/proc/PID/ns/net, ...) whose
	// ICMP rate-limit counters the tracepoint backend reads at start, so
	// that its first rate-limited verdict there is named too.
	// udptrace also reads their SNMP counters from inside them, so one
	// other than its own takes CAP_SYS_ADMIN whatever the backend.
	PrimeNetns []string
	// BTF, when set, describes the kernel instead of /sys/kernel/btf/vmlinux
	// (--btf): for kernels without BTF, with the kprobe backend.
	BTF *BTF
}

// PollInterval bounds how long an event can wait in the ring: the BPF side
// wakes the reader only when the ring fills up (see wakeup_bytes), so the
// reader must also look on its own this often.
const PollInterval = 50 * time.Millisecond

// Tracer is a set of attached programs and the ring buffer they fill.
type Tracer struct {
	// Reader yields raw event records (see package events).
	Reader *ringbuf.Reader
	// Hooks names the attach points in use, e.g. "tp_btf/kfree_skb".
	Hooks []string
	// ICMP4, ICMP6 report whether ICMP replies can be seen per family;
	// without them events say "unknown".
	ICMP4, ICMP6 bool
	// Backend is the backend in use; Skipped says why Auto passed over
	// the ones before it.
	Backend Backend
	Skipped []error
	// Delivery reports whether port-unreachables arriving at local
	// sockets are traced (delivery records); NoDelivery says why not.
	Delivery   bool
	NoDelivery string
	// SyscallHook names how calls that return -ECONNREFUSED are seen:
	// "sock_recv_length" (the socket tracepoints, 6.3+), "sock_recvmsg"
	// (fexit or kretprobe on sock_recvmsg/sock_sendmsg, before 6.3), or ""
	// (not seen: the tracepoint backend before 6.3).
	SyscallHook string
	// RateLimits reports whether the kernel counts rate-limited ICMP
	// replies (6.6+, backported to 6.1.113), which the verdicts need.
	RateLimits bool

	coll      *ebpf.Collection
	links     []link.Link
	aggregate bool
	lean      bool
}

// Sentinel causes, for callers that want to name a fix.
var (
	ErrNoBTF      = errors.New("kernel BTF not found at /sys/kernel/btf/vmlinux (a kernel built without CONFIG_DEBUG_INFO_BTF=y, or /sys/kernel/btf not mounted here): give udptrace this kernel's BTF with --btf FILE, or mount /sys/kernel/btf")
	ErrPermission = errors.New("permission denied: run udptrace as root, or grant it CAP_BPF and CAP_PERFMON (see Privileges in the README)")
)

// VerifierError is returned when the kernel rejects a program. Error() is
// one line; Log holds the verifier's full output.
type VerifierError struct {
	Program string
	Log     string
	err     error
	btf     string // the --btf file the program was adapted to, or ""
}

func (e *VerifierError) Error() string {
	s := fmt.Sprintf("the kernel's verifier rejected program %s: %v (run with --verbose for the full log)", e.Program, e.err)
	if e.btf != "" {
		s += fmt.Sprintf("; its reads were adapted to the types of --btf %s: is that this kernel's own BTF?", e.btf)
	}
	return s
}

func (e *VerifierError) Unwrap() error { return e.err }

// Backend is a way of hooking the kernel's no-port path.
type Backend string

// The backends. Auto tries them in the order of Backends.
const (
	Auto       Backend = "auto"
	FEntry     Backend = "fentry"     // fentry/fexit: BTF trampolines (5.5+, needs BPF trampoline support)
	Tracepoint Backend = "tracepoint" // tp_btf on kfree_skb's drop reason (5.17+)
	Kprobe     Backend = "kprobe"     // kprobes, for kernels without trampolines
)

// Backends lists the concrete backends, most exact and cheapest first: fentry
// sees the no-port path itself and both ICMP verdicts; the tracepoints
// cannot always tell an IPv6 verdict; kprobes see what fentry sees, slower.
var Backends = []Backend{FEntry, Tracepoint, Kprobe}

// ParseBackend accepts "auto", "" (auto) and the concrete backend names.
func ParseBackend(s string) (Backend, error) {
	switch b := Backend(s); b {
	case "", Auto:
		return Auto, nil
	case FEntry, Tracepoint, Kprobe:
		return b, nil
	}
	return "", fmt.Errorf("%q is not a backend (want auto, fentry, tracepoint or kprobe)", s)
}

// sections maps a backend to the ELF section prefixes of its programs.
var sections = map[Backend][]string{
	Tracepoint: {"tp_btf/"},
	FEntry:     {"fentry/", "fexit/", "raw_tp/"},
	Kprobe:     {"kprobe/", "kretprobe/", "raw_tp/"},
}

// BackendError says why a backend cannot run here.
type BackendError struct {
	Backend Backend
	Err     error
}

func (e *BackendError) Error() string { return fmt.Sprintf("%s: %v", e.Backend, e.Err) }
func (e *BackendError) Unwrap() error { return e.Err }

// Open loads and attaches the programs of cfg.Backend; with Auto, of the
// first backend in Backends that works on this kernel.
func Open(cfg Config) (*Tracer, error) {
	defer lowMemoryLoad()()
	if cfg.RingSize == 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.RingSize < os.Getpagesize() || cfg.RingSize&(cfg.RingSize-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two of at least %d bytes", cfg.RingSize, os.Getpagesize())
	}
	b, err := ParseBackend(string(cfg.Backend))
	if err != nil {
		return nil, err
	}
	if err := requirePrivileges(cfg); err != nil {
		return nil, err
	}
	kernel, err := prepare(cfg.BTF)
	if err != nil {
		return nil, err
	}
	if b != Auto {
		t, err := open(cfg, b, kernel)
		if err == nil || fatal(err) {
			return t, err
		}
		var works []string
		for _, other := range Backends {
			if other != b && check(other, cfg.BTF) == nil {
				works = append(works, string(other))
			}
		}
		hint := "no other backend works here either"
		if len(works) > 0 {
			hint = "backends that work here: " + strings.Join(works, ", ")
		}
		return nil, fmt.Errorf("backend %s cannot run on this kernel: %w (%s)", b, err, hint)
	}
	var errs []error
	for _, b := range Backends {
		t, err := open(cfg, b, kernel)
		if err == nil {
			t.Skipped = errs
			return t, nil
		}
		if fatal(err) {
			return nil, err
		}
		errs = append(errs, &BackendError{b, err})
	}
	return nil, fmt.Errorf("no backend can run on this kernel: %w", errors.Join(errs...))
}

// fatal tells the errors after which no other backend is tried: they
// would fail the same way.
func fatal(err error) bool {
	var re *RingBufferError
	return errors.Is(err, ErrPermission) || errors.As(err, &re)
}

// Check reports whether backend b loads and attaches on this kernel, by
// doing so briefly.
func Check(b Backend) error { return check(b, nil) }

// check is Check with the kernel described by file (--btf), if not nil.
func check(b Backend, file *BTF) error {
	if b == Auto || b == "" {
		t, err := Open(Config{RingSize: os.Getpagesize(), BTF: file})
		if err != nil {
			return err
		}
		return t.Close()
	}
	if _, err := ParseBackend(string(b)); err != nil {
		return err
	}
	if err := requirePrivileges(Config{}); err != nil {
		return err
	}
	kernel, err := prepare(file)
	if err != nil {
		return err
	}
	t, err := open(Config{RingSize: os.Getpagesize(), BTF: file}, b, kernel)
	if err != nil {
		return err
	}
	return t.Close()
}

// prepare does what every load needs first: lift RLIMIT_MEMLOCK (kernels
// before 5.11 charge BPF memory to it) and read the kernel's BTF (or file's).
func prepare(file *BTF) (*btf.Spec, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, memlockError(err)
	}
	return kernelTypes(file)
}

func open(cfg Config, b Backend, kernel *btf.Spec) (*Tracer, error) {
	t := &Tracer{Backend: b, aggregate: cfg.Aggregate, lean: cfg.Lean}
	if err := ownBTF(b, cfg.BTF); err != nil {
		return nil, err
	}
	var icmpRcv symbolRanges
	if b == Tracepoint {
		if err := requireDropReasons(kernel); err != nil {
			return nil, byFile(err, cfg.BTF)
		}
		t.ICMP4 = hasTracepoint(kernel, "icmp_send")
		t.ICMP6 = hasTracepoint(kernel, "net_dev_queue")
		icmpRcv, t.NoDelivery = tracepointDelivery(kernel)
	} else {
		if err := requireHooks(b, kernel); err != nil {
			return nil, byFile(err, cfg.BTF)
		}
		t.ICMP4, t.ICMP6 = true, true
		t.NoDelivery = functionDelivery(kernel)
	}
	t.SyscallHook = syscallHook(b, kernel)
	if cfg.Lean {
		// net_dev_queue, which sees the ICMPv6 replies, is left out too.
		t.ICMP6 = t.ICMP6 && b != Tracepoint
		t.NoDelivery, t.SyscallHook = "--lean leaves the delivery and syscall links out", ""
	}
	t.Delivery = t.NoDelivery == ""
	mib := ratelimitCounters()
	t.RateLimits = mib.host4 != 0

	spec, err := loadUdptrace()
	if err != nil {
		return nil, fmt.Errorf("parse embedded BPF object: %w", err)
	}
	for name, p := range spec.Programs {
		if !t.uses(b, name, p.SectionName) {
			delete(spec.Programs, name)
		}
	}
	spec.Maps["events"].MaxEntries = uint32(cfg.RingSize)
	if cfg.AggEntries > 0 {
		spec.Maps["agg"].MaxEntries = uint32(cfg.AggEntries)
	}

	vars := map[string]any{
		"target_netns":    cfg.TargetNetns,
		"stats_netns":     cfg.StatsNetns,
		"want_family":     cfg.Family,
		"filter_dport":    len(cfg.DPorts) > 0,
		"filter_sport":    len(cfg.SPorts) > 0,
		"filter_src":      len(cfg.Src) > 0,
		"filter_dst":      len(cfg.Dst) > 0,
		"filter_pid":      len(cfg.PIDs) > 0,
		"filter_comm":     len(cfg.Comms) > 0,
		"have_icmp4_hook": b == Tracepoint && t.ICMP4,
		"have_icmp6_hook": b == Tracepoint && t.ICMP6,
		"wakeup_bytes":    uint64(cfg.RingSize / 16),
		"aggregate":       cfg.Aggregate,
		"stream":          !cfg.Aggregate,
		"trace_senders":   !cfg.Lean,
		"mib_rl_global4":  mib.global4,
		"mib_rl_host4":    mib.host4,
		"mib_rl_host6":    mib.host6,
		"icmp_rcv_lo":     icmpRcv[0].lo,
		"icmp_rcv_hi":     icmpRcv[0].hi,
		"icmpv6_rcv_lo":   icmpRcv[1].lo,
		"icmpv6_rcv_hi":   icmpRcv[1].hi,
	}
	for name, v := range vars {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}

	if editSpec != nil {
		editSpec(spec)
	}
	ring, err := newRing(spec.Maps["events"])
	if err != nil {
		return nil, err
	}
	defer ring.Close() // the collection holds a clone
	t.coll, err = ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: kernel},
		MapReplacements: map[string]*ebpf.Map{"events": ring},
	})
	if err != nil {
		if b == FEntry && errors.Is(err, unix.EPERM) && privileged() {
			return nil, fmt.Errorf("the kernel refused to load fentry programs although udptrace is privileged: BPF trampolines are unavailable here (%w)", unix.EPERM)
		}
		return nil, byFile(loadError(err), cfg.BTF)
	}
	if err := t.fillSets(cfg); err != nil {
		t.Close()
		return nil, err
	}
	// Attach the ICMP hooks and window closers before what they complete.
	names := make([]string, 0, len(t.coll.Programs))
	for name := range t.coll.Programs {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return attachOrder(spec, names[i]) < attachOrder(spec, names[j]) })
	for _, name := range names {
		if name == primeProgram {
			continue // run, never attached
		}
		sec := spec.Programs[name].SectionName
		l, err := attach(t.coll.Programs[name], sec)
		if err != nil {
			t.Close()
			return nil, privilege(perfEventPrivilege(sec, fmt.Errorf("attach %s: %w", sec, err)))
		}
		t.links = append(t.links, l)
		t.Hooks = append(t.Hooks, sec)
	}
	t.Reader, err = ringbuf.NewReader(t.coll.Maps["events"])
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	if p := t.coll.Programs[primeProgram]; p != nil && t.RateLimits {
		for _, path := range cfg.PrimeNetns {
			if err := primeRateLimits(p, t.coll.Maps["prime_net"], path); err != nil {
				t.Close()
				return nil, fmt.Errorf("read the ICMP rate-limit counters of %s: %w", path, err)
			}
		}
	}
	return t, nil
}

// editSpec, when set (by tests), changes the collection before it is loaded.
var editSpec func(*ebpf.CollectionSpec)

// uses decides whether a program belongs to this run.
func (t *Tracer) uses(b Backend, name, section string) bool {
	// The syscall hooks are raw tracepoints every backend can use.
	switch name {
	case primeProgram:
		return b == Tracepoint
	}
	if t.aggregate && (deliveryPrograms[name] || strings.HasPrefix(name, "sc_")) {
		return false // top counts datagrams only
	}
	if t.lean && (deliveryPrograms[name] || strings.HasPrefix(name, "sc_") || strings.HasSuffix(name, "net_dev_queue")) {
		return false // the drop and its reply only
	}
	switch name {
	case "sc_recv_length", "sc_send_length":
		return t.SyscallHook == "sock_recv_length"
	case "sc_fx_recvmsg", "sc_fx_sendmsg":
		return t.SyscallHook == "sock_recvmsg" && b == FEntry
	case "sc_kp_recvmsg", "sc_kr_recvmsg", "sc_kp_sendmsg", "sc_kr_sendmsg":
		return t.SyscallHook == "sock_recvmsg" && b == Kprobe
	}
	ok := false
	for _, prefix := range sections[b] {
		ok = ok || strings.HasPrefix(section, prefix)
	}
	if !ok {
		return false
	}
	switch {
	case b == Tracepoint && name == "icmp_send":
		return t.ICMP4
	case deliveryPrograms[name]:
		return t.Delivery
	}
	// Every family stays hooked even under -4/-6: the summary counts both.
	return true
}

// deliveryPrograms see port-unreachables arrive at local sockets.
var deliveryPrograms = map[string]bool{
	"error_report": true, "consume_skb": true,
	"fe_error_report": true, "fx_udp4_err": true, "fx_icmpv6_notify": true,
	"kp_error_report": true, "kp_udp4_err": true, "kr_udp4_err": true, "kp_icmpv6_notify": true, "kr_icmpv6_notify": true,
}

// attachOrder puts the hooks that complete an event before the one that
// emits it, so a datagram in flight during attach is never half-seen.
func attachOrder(spec *ebpf.CollectionSpec, name string) int {
	sec := spec.Programs[name].SectionName
	switch {
	case strings.HasPrefix(sec, "fexit/"), strings.HasPrefix(sec, "kretprobe/"):
		return 0
	case strings.Contains(sec, "glue_bits"), strings.Contains(sec, "getfrag"), strings.Contains(sec, "icmp"), strings.Contains(sec, "net_dev_queue"):
		return 1
	case strings.Contains(sec, "kfree_skb"):
		return 3
	}
	return 2
}

func attach(p *ebpf.Program, section string) (link.Link, error) {
	kind, target, _ := strings.Cut(section, "/")
	switch kind {
	case "tp_btf":
		return link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
	case "fentry":
		return link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceFEntry})
	case "fexit":
		return link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceFExit})
	case "raw_tp":
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: target, Program: p})
	case "kprobe":
		return link.Kprobe(target, p, nil)
	case "kretprobe":
		return link.Kretprobe(target, p, nil)
	}
	return nil, fmt.Errorf("unknown section %s", section)
}

// requireDropReasons checks that kfree_skb carries a drop reason (5.17+),
// which is how the tracepoint backend tells a no-port drop from any other.
func requireDropReasons(kernel *btf.Spec) error {
	var reasons *btf.Enum
	if err := kernel.TypeByName("skb_drop_reason", &reasons); err != nil {
		return fmt.Errorf("this kernel has no skb drop reasons, so the kfree_skb tracepoint cannot tell a no-port drop from others: the tracepoint backend needs Linux 5.17 or later")
	}
	for _, v := range reasons.Values {
		if v.Name == "SKB_DROP_REASON_NO_SOCKET" {
			return nil
		}
	}
	return fmt.Errorf("this kernel's skb_drop_reason has no SKB_DROP_REASON_NO_SOCKET")
}

// Functions the fentry and kprobe backends hook; all are out of line in every
// supported kernel (icmp_send and icmpv6_send are inline wrappers of these,
// and the two copy callbacks are only ever called through pointers).
var functionHooks = []string{"__udp4_lib_rcv", "__udp6_lib_rcv", "__icmp_send", "icmp6_send", "icmp_glue_bits", "icmpv6_getfrag"}

var errNoKprobes = errors.New("this kernel has no kprobes (no kprobe PMU in /sys/bus/event_source/devices, no kprobe_events in tracefs: CONFIG_KPROBES is not set)")

// requireHooks checks the preconditions of the fentry and kprobe backends, to
// say why in words rather than with a load error.
func requireHooks(b Backend, kernel *btf.Spec) error {
	if b == Kprobe && !HaveKprobes() {
		return errNoKprobes
	}
	for _, fn := range functionHooks {
		var f *btf.Func
		if err := kernel.TypeByName(fn, &f); err != nil {
			return fmt.Errorf("function %s is not in the kernel's BTF (inlined or renamed in this version)", fn)
		}
	}
	return nil
}

// HaveKprobes reports whether kprobes can be created, through the perf PMU or
// the tracefs interface.
func HaveKprobes() bool {
	for _, p := range []string{"/sys/bus/event_source/devices/kprobe", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// hasTracepoint reports whether the kernel's BTF describes a raw tracepoint.
func hasTracepoint(kernel *btf.Spec, name string) bool {
	var fn *btf.Typedef
	return kernel.TypeByName("btf_trace_"+name, &fn) == nil
}

func (t *Tracer) fillSets(cfg Config) error {
	for _, s := range []struct {
		m      string
		ranges []filter.PortRange
	}{{"dport_set", cfg.DPorts}, {"sport_set", cfg.SPorts}} {
		if len(s.ranges) == 0 {
			continue
		}
		bm := filter.Bitmap(s.ranges)
		keys := make([]uint32, len(bm))
		for i := range keys {
			keys[i] = uint32(i)
		}
		if _, err := t.coll.Maps[s.m].BatchUpdate(keys, bm[:], nil); err != nil {
			// Batch ops arrived in 5.6; fall back to one update per word.
			for i, w := range bm {
				if err := t.coll.Maps[s.m].Put(uint32(i), w); err != nil {
					return fmt.Errorf("fill %s: %w", s.m, err)
				}
			}
		}
	}
	for _, pid := range cfg.PIDs {
		if err := t.coll.Maps["pid_set"].Put(pid, uint8(1)); err != nil {
			return fmt.Errorf("fill pid_set: %w", err)
		}
	}
	for _, comm := range cfg.Comms {
		var key [16]byte
		copy(key[:15], comm)
		if err := t.coll.Maps["comm_set"].Put(key, uint8(1)); err != nil {
			return fmt.Errorf("fill comm_set: %w", err)
		}
	}
	for _, s := range []struct {
		m        string
		prefixes []netip.Prefix
	}{{"src_set", cfg.Src}, {"dst_set", cfg.Dst}} {
		for _, p := range s.prefixes {
			if err := t.coll.Maps[s.m].Put(filter.Key(p), uint8(1)); err != nil {
				return fmt.Errorf("fill %s with %s: %w", s.m, p, err)
			}
		}
	}
	return nil
}

// Counters are the kernel-side counts (see bpf/udptrace.h enum counter).
type Counters struct {
	NoPort4NS, NoPort6NS     uint64 // seen in the stats namespace, before filters
	ICMP4SentNS, ICMP6SentNS uint64
	PassedNS                 uint64 // stats namespace, passed the filters
	LostNS, Lost             uint64 // ring buffer full
	Submitted                uint64
	// Rate-limited ICMP replies to no-port datagrams, stats namespace.
	RateLimited4NS, RateLimited6NS uint64
	// AggOverflow: datagrams top could not count, its map being full.
	AggOverflow uint64
}

// Counters sums the per-CPU counters.
func (t *Tracer) Counters() (Counters, error) {
	m := t.coll.Maps["counters"]
	var sum [udptraceCounterCNT_MAX]uint64
	var perCPU []uint64
	for i := range sum {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return Counters{}, fmt.Errorf("read counters: %w", err)
		}
		for _, v := range perCPU {
			sum[i] += v
		}
	}
	return Counters{
		NoPort4NS:   sum[udptraceCounterCNT_NOPORT4NS],
		NoPort6NS:   sum[udptraceCounterCNT_NOPORT6NS],
		ICMP4SentNS: sum[udptraceCounterCNT_ICMP4SENT_NS],
		ICMP6SentNS: sum[udptraceCounterCNT_ICMP6SENT_NS],
		PassedNS:    sum[udptraceCounterCNT_PASSED_NS],
		LostNS:      sum[udptraceCounterCNT_LOST_NS],
		Lost:        sum[udptraceCounterCNT_LOST],
		Submitted:   sum[udptraceCounterCNT_SUBMITTED],

		RateLimited4NS: sum[udptraceCounterCNT_RATELIMIT4NS],
		RateLimited6NS: sum[udptraceCounterCNT_RATELIMIT6NS],
		AggOverflow:    sum[udptraceCounterCNT_AGG_OVERFLOW],
	}, nil
}

// Detach stops new events; records already in the ring stay readable.
func (t *Tracer) Detach() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	return errors.Join(errs...)
}

// Close detaches the programs and frees every kernel object.
func (t *Tracer) Close() error {
	errs := []error{t.Detach()}
	if t.Reader != nil {
		errs = append(errs, t.Reader.Close())
	}
	if t.coll != nil {
		t.coll.Close()
	}
	return errors.Join(errs...)
}

func loadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		prog := "?"
		// cilium/ebpf names the program in the wrapping message.
		if _, after, ok := strings.Cut(err.Error(), "program "); ok {
			prog, _, _ = strings.Cut(after, ":")
		}
		return &VerifierError{Program: prog, Log: fmt.Sprintf("%+v", ve), err: errors.New(firstLine(ve.Error()))}
	}
	return privilege(fmt.Errorf("load BPF programs: %w", err))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
