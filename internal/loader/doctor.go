package loader

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Finding is one line of a diagnosis: something udptrace needs, and whether
// this kernel has it.
type Finding struct {
	Area   string // "kernel", "tracepoint", "fentry", "kprobe", ...
	Name   string
	OK     bool
	Detail string
}

// Diagnosis is what Diagnose found on the running kernel.
type Diagnosis struct {
	Findings []Finding
	// Backends maps each backend to nil when it loads and attaches here,
	// or to the reason it does not.
	Backends map[Backend]error
	// Chosen is what --backend auto would use ("" if none works).
	Chosen Backend
}

// Diagnose checks every requirement of every backend, and then tries each
// backend for real (load, attach, detach); with file (--btf), as it
// describes the kernel.
func Diagnose(file *BTF) Diagnosis {
	var d Diagnosis
	add := func(area, name string, ok bool, detail string) {
		d.Findings = append(d.Findings, Finding{area, name, ok, detail})
	}

	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		add("kernel", "version", true, unix.ByteSliceToString(uts.Release[:])+" "+unix.ByteSliceToString(uts.Machine[:]))
	}
	add("kernel", "privileges", privileged(), privilegeDetail())
	kernel, err := kernelTypes(file)
	switch {
	case err != nil:
		add("kernel", "BTF", false, err.Error())
	case file != nil:
		add("kernel", "BTF", true, file.Path+" (--btf)")
	default:
		add("kernel", "BTF", true, kernelBTFPath)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		add("kernel", "ring buffer", false, fmt.Sprintf("BPF_MAP_TYPE_RINGBUF: %v (Linux 5.8+)", err))
	} else {
		add("kernel", "ring buffer", true, "BPF_MAP_TYPE_RINGBUF")
	}

	if kernel != nil {
		if err := requireDropReasons(kernel); err != nil {
			add("tracepoint", "kfree_skb drop reason", false, err.Error())
		} else {
			var reasons *btf.Enum
			_ = kernel.TypeByName("skb_drop_reason", &reasons)
			add("tracepoint", "kfree_skb drop reason", true, fmt.Sprintf("SKB_DROP_REASON_NO_SOCKET = %d", enumValue(reasons, "SKB_DROP_REASON_NO_SOCKET")))
		}
		for _, tp := range []struct{ name, why string }{
			{"icmp_send", "IPv4 ICMP verdicts (Linux 6.10+, 6.6.81+, 6.1.130+)"},
			{"net_dev_queue", "IPv6 ICMP verdicts"},
		} {
			ok := hasTracepoint(kernel, tp.name)
			detail := tp.why
			if !ok {
				detail = "absent: no " + tp.why
			}
			add("tracepoint", tp.name, ok, detail)
		}
		for _, fn := range functionHooks {
			var f *btf.Func
			ok := kernel.TypeByName(fn, &f) == nil
			detail := "in BTF"
			if !ok {
				detail = "not in BTF (inlined or renamed)"
			}
			add("fentry", fn, ok, detail)
		}
	}
	add("kprobe", "kprobes", HaveKprobes(), kprobeDetail())
	syms := kallsyms(functionHooks)
	for _, fn := range functionHooks {
		detail := "in /proc/kallsyms"
		if !syms[fn] {
			detail = "not in /proc/kallsyms"
		}
		add("kprobe", fn, syms[fn], detail)
	}

	d.Backends = map[Backend]error{}
	for _, b := range Backends {
		d.Backends[b] = check(b, file)
		if d.Backends[b] == nil && d.Chosen == "" {
			d.Chosen = b
		}
	}
	return d
}

func enumValue(e *btf.Enum, name string) uint64 {
	if e == nil {
		return 0
	}
	for _, v := range e.Values {
		if v.Name == name {
			return v.Value
		}
	}
	return 0
}

func privilegeDetail() string {
	has, err := effectiveCaps()
	if err != nil {
		return err.Error()
	}
	var have, lack []string
	for _, c := range []struct {
		n    uint
		name string
	}{{unix.CAP_BPF, "CAP_BPF"}, {unix.CAP_PERFMON, "CAP_PERFMON"}, {unix.CAP_SYSLOG, "CAP_SYSLOG"}, {unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}} {
		if has(c.n) {
			have = append(have, c.name)
		} else {
			lack = append(lack, c.name)
		}
	}
	s := fmt.Sprintf("euid %d; effective: %s", os.Geteuid(), strings.Join(have, " "))
	if len(lack) > 0 {
		s += "; missing: " + strings.Join(lack, " ")
	}
	switch {
	case !initialUserNS():
		s += " (in a user namespace: they do not count for BPF)"
	case !privileged():
		s += " (run as root, or grant CAP_BPF and CAP_PERFMON)"
	case !has(unix.CAP_SYSLOG) || !has(unix.CAP_SYS_ADMIN):
		s += " (enough to trace; CAP_SYSLOG adds the delivery records of the tracepoint backend, CAP_SYS_ADMIN allows --netns of another namespace)"
	}
	return s
}

func kprobeDetail() string {
	if HaveKprobes() {
		return "kprobe PMU or tracefs kprobe_events present"
	}
	return "no kprobe PMU, no kprobe_events: CONFIG_KPROBES is not set"
}

// kallsyms reports which of names /proc/kallsyms lists as functions.
func kallsyms(names []string) map[string]bool {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = false
	}
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return want
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && (fields[1] == "t" || fields[1] == "T") {
			if _, ok := want[fields[2]]; ok {
				want[fields[2]] = true
			}
		}
	}
	return want
}

// ErrNoBackend is returned by doctor's caller when nothing works.
var ErrNoBackend = errors.New("no backend can run on this kernel")
