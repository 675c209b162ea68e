// Package loader loads udptrace's BPF programs into the running kernel, sets
// their filters, attaches them and hands out the ring buffer of events.
package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
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

// DefaultRingSize holds about 80 000 events: ~0.4 s of a loopback flood.
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
	RingSize    int // bytes: a power of two, at least a page
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

	coll  *ebpf.Collection
	links []link.Link
}

// Sentinel causes, for callers that want to name a fix.
var (
	ErrNoBTF      = errors.New("kernel BTF not found at /sys/kernel/btf/vmlinux (udptrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)")
	ErrPermission = errors.New("permission denied: run udptrace as root (sudo), or grant it CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN")
)

// VerifierError is returned when the kernel rejects a program. Error() is
// one line; Log holds the verifier's full output.
type VerifierError struct {
	Program string
	Log     string
	err     error
}

func (e *VerifierError) Error() string {
	return fmt.Sprintf("the kernel's verifier rejected program %s: %v (run with --verbose for the full log)", e.Program, e.err)
}

func (e *VerifierError) Unwrap() error { return e.err }

// Open loads and attaches the tracepoint programs.
func Open(cfg Config) (*Tracer, error) {
	if cfg.RingSize == 0 {
		cfg.RingSize = DefaultRingSize
	}
	if cfg.RingSize < os.Getpagesize() || cfg.RingSize&(cfg.RingSize-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two of at least %d bytes", cfg.RingSize, os.Getpagesize())
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, permission(fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err))
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	if err := requireDropReasons(kernel); err != nil {
		return nil, err
	}

	spec, err := loadUdptrace()
	if err != nil {
		return nil, fmt.Errorf("parse embedded BPF object: %w", err)
	}
	t := &Tracer{Hooks: []string{"tp_btf/kfree_skb"}}
	t.ICMP4 = cfg.Family != 6 && hasTracepoint(kernel, "icmp_send")
	t.ICMP6 = cfg.Family != 4 && hasTracepoint(kernel, "net_dev_queue")
	if !t.ICMP4 {
		delete(spec.Programs, "icmp_send")
	}
	if !t.ICMP6 {
		delete(spec.Programs, "net_dev_queue")
	}
	spec.Maps["events"].MaxEntries = uint32(cfg.RingSize)

	vars := map[string]any{
		"target_netns":    cfg.TargetNetns,
		"stats_netns":     cfg.StatsNetns,
		"want_family":     cfg.Family,
		"filter_dport":    len(cfg.DPorts) > 0,
		"filter_sport":    len(cfg.SPorts) > 0,
		"filter_src":      len(cfg.Src) > 0,
		"filter_dst":      len(cfg.Dst) > 0,
		"have_icmp4_hook": t.ICMP4,
		"have_icmp6_hook": t.ICMP6,
		"wakeup_bytes":    uint64(cfg.RingSize / 16),
	}
	for name, v := range vars {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}

	t.coll, err = ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{})
	if err != nil {
		return nil, loadError(err)
	}
	if err := t.fillSets(cfg); err != nil {
		t.Close()
		return nil, err
	}
	for _, name := range []string{"icmp_send", "net_dev_queue", "kfree_skb"} {
		prog := t.coll.Programs[name]
		if prog == nil {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			t.Close()
			return nil, permission(fmt.Errorf("attach tp_btf/%s: %w", name, err))
		}
		t.links = append(t.links, l)
		if name != "kfree_skb" {
			t.Hooks = append(t.Hooks, "tp_btf/"+name)
		}
	}
	t.Reader, err = ringbuf.NewReader(t.coll.Maps["events"])
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	return t, nil
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
	return permission(fmt.Errorf("load BPF programs: %w", err))
}

func permission(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w (%v)", ErrPermission, err)
	}
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
