package loader

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Hooks of the sender's side of a chain (see bpf/noport.c).

// functionDelivery says why the fentry and kprobe backends cannot see
// port-unreachables arrive at local sockets, or "" when they can.
func functionDelivery(kernel *btf.Spec) string {
	for _, fn := range []string{"sock_def_error_report", "__udp4_lib_err", "icmpv6_notify"} {
		var f *btf.Func
		if err := kernel.TypeByName(fn, &f); err != nil {
			return fmt.Sprintf("function %s is not in the kernel's BTF", fn)
		}
	}
	return ""
}

// syscallHook picks how backend b sees calls that return -ECONNREFUSED
// (see Tracer.SyscallHook).
func syscallHook(b Backend, kernel *btf.Spec) string {
	if hasTracepoint(kernel, "sock_recv_length") && hasTracepoint(kernel, "sock_send_length") {
		return "sock_recv_length"
	}
	if b == Tracepoint {
		return ""
	}
	for _, fn := range []string{"sock_recvmsg", "sock_sendmsg"} {
		var f *btf.Func
		if kernel.TypeByName(fn, &f) != nil {
			return ""
		}
	}
	return "sock_recvmsg"
}

// symbolRange is a kernel function's text: [lo, hi).
type symbolRange struct{ lo, hi uint64 }

// symbolRanges holds icmp_rcv's and icmpv6_rcv's ranges.
type symbolRanges [2]symbolRange

// tracepointDelivery returns the ranges of icmp_rcv and icmpv6_rcv, which
// the tracepoint backend recognises as consume_skb's caller, or why it cannot
// see port-unreachables arrive at local sockets.
func tracepointDelivery(kernel *btf.Spec) (symbolRanges, string) {
	var r symbolRanges
	if !hasTracepoint(kernel, "inet_sk_error_report") {
		return r, "the kernel has no inet_sk_error_report tracepoint (added in 5.14)"
	}
	if tracepointArgs(kernel, "consume_skb") < 2 {
		return r, "the kernel's consume_skb tracepoint has no location argument (added in 6.3)"
	}
	ranges, err := kernelSymbolRanges("icmp_rcv", "icmpv6_rcv")
	if err != nil {
		return r, err.Error()
	}
	r[0], r[1] = ranges[0], ranges[1]
	return r, ""
}

// tracepointArgs returns the number of arguments of a raw tracepoint, from
// its btf_trace_<name> typedef (a pointer to a prototype whose first
// parameter is the context), or 0 if unknown.
func tracepointArgs(kernel *btf.Spec, name string) int {
	var td *btf.Typedef
	if kernel.TypeByName("btf_trace_"+name, &td) != nil {
		return 0
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return 0
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return 0
	}
	return len(proto.Params) - 1
}

// kernelSymbolRanges finds functions in /proc/kallsyms; each ends where the
// next symbol starts.
func kernelSymbolRanges(names ...string) ([]symbolRange, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	defer f.Close()
	var addrs []uint64
	start := make(map[string]uint64, len(names))
	for _, n := range names {
		start[n] = 0
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		a, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		addrs = append(addrs, a)
		if _, ok := start[fields[2]]; ok && (fields[1] == "t" || fields[1] == "T") {
			start[fields[2]] = a
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w", err)
	}
	if len(addrs) == 0 {
		return nil, errors.New(kallsymsHidden())
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	out := make([]symbolRange, len(names))
	for i, n := range names {
		lo := start[n]
		if lo == 0 {
			return nil, fmt.Errorf("%s's address is not in /proc/kallsyms (hidden by kernel.kptr_restrict, or not a function here)", n)
		}
		j := sort.Search(len(addrs), func(k int) bool { return addrs[k] > lo })
		if j == len(addrs) {
			return nil, fmt.Errorf("no symbol follows %s in /proc/kallsyms", n)
		}
		out[i] = symbolRange{lo, addrs[j]}
	}
	return out, nil
}

// mibIndexes are positions in the kernel's per-CPU ICMP MIBs; 0 is absent.
type mibIndexes struct{ global4, host4, host6 uint32 }

// ratelimitCounters finds ICMP_MIB_RATELIMITGLOBAL, ICMP_MIB_RATELIMITHOST
// and ICMP6_MIB_RATELIMITHOST. They are values of anonymous enums in the
// UAPI header linux/snmp.h, where entries are only ever appended: 28, 29 and
// 6 in every kernel that has them (6.6+, 6.1.113+). Whether this one does
// shows in /proc/net/snmp{,6}, which print them. (Searching the BTF for the
// enums instead cost 0.2 s and tens of MiB.)
func ratelimitCounters() mibIndexes {
	var m mibIndexes
	if b, err := os.ReadFile("/proc/net/snmp"); err == nil && bytes.Contains(b, []byte(" OutRateLimitGlobal OutRateLimitHost ")) {
		m.global4, m.host4 = 28, 29
	}
	if b, err := os.ReadFile("/proc/net/snmp6"); err == nil && bytes.Contains(b, []byte("Icmp6OutRateLimitHost")) {
		m.host6 = 6
	}
	return m
}

// primeProgram seeds the tracepoint backend's per-CPU rate-limit baselines.
const primeProgram = "prime_ratelimits"

// primeRateLimits runs the prime program for the namespace at path: once on
// a thread inside it (which tells the program the namespace), then on every
// CPU.
func primeRateLimits(p *ebpf.Program, netMap *ebpf.Map, path string) error {
	if err := netMap.Put(uint32(0), uint64(0)); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		// This thread's namespace changes: it ends with the goroutine
		// instead of returning to the pool.
		runtime.LockOSThread()
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		// Entering a namespace takes CAP_SYS_ADMIN: not needed for ours.
		var there, here unix.Stat_t
		if err := unix.Fstat(fd, &there); err != nil {
			errc <- err
			return
		}
		if unix.Stat("/proc/thread-self/ns/net", &here) != nil || here.Ino != there.Ino || here.Dev != there.Dev {
			if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				errc <- fmt.Errorf("setns: %w", err)
				return
			}
		}
		_, err = p.Run(&ebpf.RunOptions{})
		errc <- err
	}()
	if err := <-errc; err != nil {
		return err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	for cpu := 0; cpu < cpus; cpu++ {
		_, err := p.Run(&ebpf.RunOptions{CPU: uint32(cpu), Flags: unix.BPF_F_TEST_RUN_ON_CPU})
		if err != nil && !errors.Is(err, unix.ENXIO) { // ENXIO: CPU offline
			return fmt.Errorf("on CPU %d: %w", cpu, err)
		}
	}
	return nil
}
