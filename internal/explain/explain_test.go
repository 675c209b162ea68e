package explain

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/udptrace/udptrace/internal/events"
)

// Syscall numbers (x86-64) of the calls events.SyscallName names.
const (
	sysRead     = 0
	sysWrite    = 1
	sysReadv    = 19
	sysWritev   = 20
	sysSendto   = 44
	sysRecvfrom = 45
	sysSendmsg  = 46
	sysRecvmsg  = 47
	sysRecvmmsg = 299
	sysSendmmsg = 307
)

var (
	src4 = netip.MustParseAddr("10.0.0.1")
	dst4 = netip.MustParseAddr("10.0.0.2")
	src6 = netip.MustParseAddr("fd00::1")
	dst6 = netip.MustParseAddr("fd00::2")
)

// ev returns an event of kind k and family f between src:40000 and dst:9
// (IPv4) or dst:53 (IPv6).
func ev(k events.Kind, f events.Family) events.Event {
	e := events.Event{Kind: k, Family: f, Src: src4, Dst: dst4, SPort: 40000, DPort: 9, FD: -1, Syscall: -1}
	if f == events.FamilyIPv6 {
		e.Src, e.Dst, e.DPort = src6, dst6, 53
	}
	return e
}

func noPort(f events.Family, v events.ICMPVerdict) *events.Event {
	e := ev(events.KindNoPort, f)
	e.ICMP = v
	return &e
}

func delivery(f events.Family, o events.Outcome) *events.Event {
	e := ev(events.KindDelivery, f)
	e.Outcome, e.Err = o, 111
	return &e
}

func syscall(f events.Family, nr int32) *events.Event {
	e := ev(events.KindSyscall, f)
	e.Outcome, e.Err, e.Syscall, e.FD = events.OutcomeRefused, 111, nr, 3
	return &e
}

// samples returns an event of every kind, family, verdict, outcome and
// system call.
func samples() []*events.Event {
	var es []*events.Event
	for _, f := range []events.Family{events.FamilyIPv4, events.FamilyIPv6} {
		for v := events.ICMPUnknown; v <= events.ICMPRateLimitedHost; v++ {
			es = append(es, noPort(f, v))
		}
		for o := events.OutcomeNone; o <= events.OutcomeUnknown; o++ {
			es = append(es, delivery(f, o))
		}
		for _, nr := range []int32{sysRead, sysWrite, sysReadv, sysWritev, sysSendto,
			sysRecvfrom, sysSendmsg, sysRecvmsg, sysRecvmmsg, sysSendmmsg, -1, 2} {
			es = append(es, syscall(f, nr))
		}
	}
	return es
}

func all(string) bool  { return true }
func none(string) bool { return false }

// without returns a has that has every function but missing.
func without(missing ...string) func(string) bool {
	return func(name string) bool { return !slices.Contains(missing, name) }
}

type pathTest struct {
	name string
	e    *events.Event
	want string
}

func checkPaths(t *testing.T, x *Explainer, tests []pathTest) {
	t.Helper()
	for _, tt := range tests {
		if got := x.Path(tt.e); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// Common ends of lines.
const (
	sockError4 = "sock_recvmsg → inet_recvmsg → udp_recvmsg → __skb_recv_udp: sock_error() returns -ECONNREFUSED and clears sk_err"
	sockError6 = "sock_recvmsg → inet6_recvmsg → udpv6_recvmsg → __skb_recv_udp: sock_error() returns -ECONNREFUSED and clears sk_err"
	send4      = "__sock_sendmsg → inet_sendmsg → udp_sendmsg → ip_make_skb → __ip_append_data → sock_alloc_send_pskb: sock_error() returns -ECONNREFUSED and clears sk_err"
	send6      = "__sock_sendmsg → inet6_sendmsg → udpv6_sendmsg → ip6_make_skb → __ip6_append_data → sock_alloc_send_pskb: sock_error() returns -ECONNREFUSED and clears sk_err"
)

// TestPathAll checks every line when the kernel has every function: the
// first of each set of alternatives is named.
func TestPathAll(t *testing.T) {
	const (
		rcv4  = "ip_local_deliver_finish → ip_protocol_deliver_rcu → udp_rcv → __udp4_lib_rcv: no socket for 10.0.0.2:9 → UDP_MIB_NOPORTS++ (Udp NoPorts) → __icmp_send(type 3, code 3): "
		rcv6  = "ip6_input_finish → ip6_protocol_deliver_rcu → udpv6_rcv → __udp6_lib_rcv: no socket for [fd00::2]:53 → UDP_MIB_NOPORTS++ (Udp6NoPorts) → icmp6_send(type 1, code 4): "
		drop  = " → sk_skb_reason_drop: SKB_DROP_REASON_NO_SOCKET"
		err4  = "icmp_rcv: IcmpMsg InType3++ → icmp_unreach → icmp_socket_deliver → udp_err → __udp4_lib_err"
		err6  = "icmpv6_rcv: Icmp6InDestUnreachs++ → icmpv6_notify → udpv6_err → __udp6_lib_err"
		set   = " → sk->sk_err = ECONNREFUSED → sk_error_report"
		sock4 = ": socket 10.0.0.1:40000"
		sock6 = ": socket [fd00::1]:40000"
	)
	checkPaths(t, New(all), []pathTest{
		{"noport ipv4 sent", noPort(4, events.ICMPSent), rcv4 + "sent (IcmpMsg OutType3++)" + drop},
		{"noport ipv4 not-sent", noPort(4, events.ICMPNotSent), rcv4 + "not sent (no rate-limit counter moved)" + drop},
		{"noport ipv4 global", noPort(4, events.ICMPRateLimitedGlobal), rcv4 + "suppressed by the global rate limit in icmpv4_global_allow (Icmp OutRateLimitGlobal++)" + drop},
		{"noport ipv4 host", noPort(4, events.ICMPRateLimitedHost), rcv4 + "suppressed by the per-destination rate limit in icmpv4_xrlim_allow (Icmp OutRateLimitHost++)" + drop},
		{"noport ipv4 unknown", noPort(4, events.ICMPUnknown), rcv4 + "reply not visible" + drop},

		{"noport ipv6 sent", noPort(6, events.ICMPSent), rcv6 + "sent (Icmp6OutDestUnreachs++)" + drop},
		{"noport ipv6 not-sent", noPort(6, events.ICMPNotSent), rcv6 + "not sent (no rate-limit counter moved)" + drop},
		{"noport ipv6 global", noPort(6, events.ICMPRateLimitedGlobal), rcv6 + "suppressed by the global rate limit in icmpv6_global_allow (Icmp OutRateLimitGlobal++)" + drop},
		{"noport ipv6 host", noPort(6, events.ICMPRateLimitedHost), rcv6 + "suppressed by the per-destination rate limit in icmpv6_xrlim_allow (Icmp6OutRateLimitHost++)" + drop},
		{"noport ipv6 unknown", noPort(6, events.ICMPUnknown), rcv6 + "reply not visible" + drop},

		{"delivery ipv4 refused", delivery(4, events.OutcomeRefused), err4 + sock4 + " is connected" + set},
		{"delivery ipv4 queued", delivery(4, events.OutcomeQueued), err4 + sock4 + " has IP_RECVERR → ip_icmp_error → sock_queue_err_skb" + set},
		{"delivery ipv4 ignored", delivery(4, events.OutcomeIgnored), err4 + sock4 + " is not connected (sk_state != TCP_ESTABLISHED) and has no IP_RECVERR: error dropped"},
		{"delivery ipv4 no-socket", delivery(4, events.OutcomeNoSocket), err4 + " → __udp4_lib_lookup: no socket for 10.0.0.1:40000 → ICMP_MIB_INERRORS++ (Icmp InErrors)"},
		{"delivery ipv4 unknown", delivery(4, events.OutcomeUnknown), err4 + sock4 + " not seen sending: error ignored, or socket closed"},
		{"delivery ipv4 none", delivery(4, events.OutcomeNone), err4},

		{"delivery ipv6 refused", delivery(6, events.OutcomeRefused), err6 + sock6 + " is connected" + set},
		{"delivery ipv6 queued", delivery(6, events.OutcomeQueued), err6 + sock6 + " has IPV6_RECVERR → ipv6_icmp_error → sock_queue_err_skb" + set},
		{"delivery ipv6 ignored", delivery(6, events.OutcomeIgnored), err6 + sock6 + " is not connected (sk_state != TCP_ESTABLISHED) and has no IPV6_RECVERR: error dropped"},
		{"delivery ipv6 no-socket", delivery(6, events.OutcomeNoSocket), err6 + " → __udp6_lib_lookup: no socket for [fd00::1]:40000 → ICMP6_MIB_INERRORS++ (Icmp6InErrors)"},
		{"delivery ipv6 unknown", delivery(6, events.OutcomeUnknown), err6 + sock6 + " not seen sending: error ignored, or socket closed"},

		{"read ipv4", syscall(4, sysRead), "ksys_read → vfs_read → new_sync_read → sock_read_iter → " + sockError4},
		{"readv ipv4", syscall(4, sysReadv), "do_readv → vfs_readv → do_iter_read → do_iter_readv_writev → sock_read_iter → " + sockError4},
		{"recvfrom ipv4", syscall(4, sysRecvfrom), "__sys_recvfrom → " + sockError4},
		{"recvmsg ipv4", syscall(4, sysRecvmsg), "__sys_recvmsg → ___sys_recvmsg → ____sys_recvmsg → " + sockError4},
		{"recvmmsg ipv4", syscall(4, sysRecvmmsg), "__sys_recvmmsg → do_recvmmsg → ___sys_recvmsg → ____sys_recvmsg → " + sockError4},
		{"write ipv4", syscall(4, sysWrite), "ksys_write → vfs_write → new_sync_write → sock_write_iter → " + send4},
		{"writev ipv4", syscall(4, sysWritev), "do_writev → vfs_writev → do_iter_write → do_iter_readv_writev → sock_write_iter → " + send4},
		{"sendto ipv4", syscall(4, sysSendto), "__sys_sendto → " + send4},
		{"sendmsg ipv4", syscall(4, sysSendmsg), "__sys_sendmsg → ___sys_sendmsg → ____sys_sendmsg → " + send4},
		{"sendmmsg ipv4", syscall(4, sysSendmmsg), "__sys_sendmmsg → ___sys_sendmsg → ____sys_sendmsg → " + send4},
		{"unknown call ipv4", syscall(4, -1), "a socket call returned -ECONNREFUSED"},
		{"other call ipv4", syscall(4, 2), "a socket call returned -ECONNREFUSED"},

		{"read ipv6", syscall(6, sysRead), "ksys_read → vfs_read → new_sync_read → sock_read_iter → " + sockError6},
		{"recvfrom ipv6", syscall(6, sysRecvfrom), "__sys_recvfrom → " + sockError6},
		{"recvmsg ipv6", syscall(6, sysRecvmsg), "__sys_recvmsg → ___sys_recvmsg → ____sys_recvmsg → " + sockError6},
		{"write ipv6", syscall(6, sysWrite), "ksys_write → vfs_write → new_sync_write → sock_write_iter → " + send6},
		{"sendto ipv6", syscall(6, sysSendto), "__sys_sendto → " + send6},
		{"sendmmsg ipv6", syscall(6, sysSendmmsg), "__sys_sendmmsg → ___sys_sendmsg → ____sys_sendmsg → " + send6},
		{"unknown call ipv6", syscall(6, -1), "a socket call returned -ECONNREFUSED"},

		{"unknown kind", &events.Event{Kind: 9, Family: 4}, ""},
	})
}

// TestPathAlternatives checks the lines of kernels that lack the newest
// names: Linux 6.18 as built here (kfree_skb_reason, icmpv4_global_allow
// and other static helpers inlined, __sock_sendmsg inlined), 5.10 (no drop
// reasons, no sk_error_report, a kernel before UDP-Lite's removal), and one
// where udp_err and __udp4_lib_err are merged.
func TestPathAlternatives(t *testing.T) {
	linux618 := New(without("kfree_skb_reason", "kfree_skb", "icmp_send", "icmpv6_send",
		"icmpv4_global_allow", "icmpv4_xrlim_allow", "icmpv6_xrlim_allow",
		"new_sync_read", "new_sync_write", "do_iter_read", "do_iter_write", "__sock_sendmsg"))
	checkPaths(t, linux618, []pathTest{
		{"6.18 noport ipv4 global", noPort(4, events.ICMPRateLimitedGlobal),
			"ip_local_deliver_finish → ip_protocol_deliver_rcu → udp_rcv → __udp4_lib_rcv: no socket for 10.0.0.2:9 → UDP_MIB_NOPORTS++ (Udp NoPorts) → __icmp_send(type 3, code 3): suppressed by the global rate limit in icmp_global_allow (Icmp OutRateLimitGlobal++) → sk_skb_reason_drop: SKB_DROP_REASON_NO_SOCKET"},
		{"6.18 noport ipv6 host", noPort(6, events.ICMPRateLimitedHost),
			"ip6_input_finish → ip6_protocol_deliver_rcu → udpv6_rcv → __udp6_lib_rcv: no socket for [fd00::2]:53 → UDP_MIB_NOPORTS++ (Udp6NoPorts) → icmp6_send(type 1, code 4): suppressed by the per-destination rate limit in inet_peer_xrlim_allow (Icmp6OutRateLimitHost++) → sk_skb_reason_drop: SKB_DROP_REASON_NO_SOCKET"},
		{"6.18 read", syscall(4, sysRead), "ksys_read → vfs_read → sock_read_iter → " + sockError4},
		{"6.18 writev", syscall(4, sysWritev),
			"do_writev → vfs_writev → do_iter_readv_writev → sock_write_iter → inet_sendmsg → udp_sendmsg → ip_make_skb → __ip_append_data → sock_alloc_send_pskb: sock_error() returns -ECONNREFUSED and clears sk_err"},
		{"6.18 sendto ipv6", syscall(6, sysSendto),
			"__sys_sendto → inet6_sendmsg → udpv6_sendmsg → ip6_make_skb → __ip6_append_data → sock_alloc_send_pskb: sock_error() returns -ECONNREFUSED and clears sk_err"},
	})

	linux510 := New(without("sk_skb_reason_drop", "kfree_skb_reason", "sk_error_report", "icmp_send"))
	checkPaths(t, linux510, []pathTest{
		{"5.10 noport ipv4 sent", noPort(4, events.ICMPSent),
			"ip_local_deliver_finish → ip_protocol_deliver_rcu → udp_rcv → __udp4_lib_rcv: no socket for 10.0.0.2:9 → UDP_MIB_NOPORTS++ (Udp NoPorts) → __icmp_send(type 3, code 3): sent (IcmpMsg OutType3++) → kfree_skb"},
		{"5.10 delivery ipv6 refused", delivery(6, events.OutcomeRefused),
			"icmpv6_rcv: Icmp6InDestUnreachs++ → icmpv6_notify → udpv6_err → __udp6_lib_err: socket [fd00::1]:40000 is connected → sk->sk_err = ECONNREFUSED → sock_def_error_report"},
	})

	merged := New(without("__udp4_lib_rcv", "__udp4_lib_err"))
	checkPaths(t, merged, []pathTest{
		{"merged noport ipv4", noPort(4, events.ICMPNotSent),
			"ip_local_deliver_finish → ip_protocol_deliver_rcu → udp_rcv: no socket for 10.0.0.2:9 → UDP_MIB_NOPORTS++ (Udp NoPorts) → __icmp_send(type 3, code 3): not sent (no rate-limit counter moved) → sk_skb_reason_drop: SKB_DROP_REASON_NO_SOCKET"},
		{"merged delivery ipv4 ignored", delivery(4, events.OutcomeIgnored),
			"icmp_rcv: IcmpMsg InType3++ → icmp_unreach → icmp_socket_deliver → udp_err: socket 10.0.0.1:40000 is not connected (sk_state != TCP_ESTABLISHED) and has no IP_RECVERR: error dropped"},
		{"merged delivery ipv4 no-socket", delivery(4, events.OutcomeNoSocket),
			"icmp_rcv: IcmpMsg InType3++ → icmp_unreach → icmp_socket_deliver → udp_err → __udp4_lib_lookup: no socket for 10.0.0.1:40000 → ICMP_MIB_INERRORS++ (Icmp InErrors)"},
	})
}

// TestPathNone: with no function known, the words remain, and name nothing.
func TestPathNone(t *testing.T) {
	x := New(none)
	checkPaths(t, x, []pathTest{
		{"noport ipv4 host", noPort(4, events.ICMPRateLimitedHost),
			"no socket for 10.0.0.2:9 → UDP_MIB_NOPORTS++ (Udp NoPorts) → ICMP port unreachable (type 3, code 3): suppressed by the per-destination rate limit (Icmp OutRateLimitHost++) → dropped: SKB_DROP_REASON_NO_SOCKET"},
		{"noport ipv6 sent", noPort(6, events.ICMPSent),
			"no socket for [fd00::2]:53 → UDP_MIB_NOPORTS++ (Udp6NoPorts) → ICMPv6 port unreachable (type 1, code 4): sent (Icmp6OutDestUnreachs++) → dropped: SKB_DROP_REASON_NO_SOCKET"},
		{"delivery ipv4 queued", delivery(4, events.OutcomeQueued),
			"IcmpMsg InType3++ → socket 10.0.0.1:40000 has IP_RECVERR → sk->sk_err = ECONNREFUSED"},
		{"delivery ipv6 no-socket", delivery(6, events.OutcomeNoSocket),
			"Icmp6InDestUnreachs++ → no socket for [fd00::1]:40000 → ICMP6_MIB_INERRORS++ (Icmp6InErrors)"},
		{"read", syscall(4, sysRead), "sock_error() returns -ECONNREFUSED and clears sk_err"},
		{"delivery ipv4 none", delivery(4, events.OutcomeNone), "IcmpMsg InType3++"},
	})
	for _, e := range samples() {
		if fns := x.Functions(e); len(fns) != 0 {
			t.Errorf("%v %v: Functions = %q, want none", e.Kind, e.Family, fns)
		}
	}
}

// recorder is a has that answers from a set and records the names asked.
type recorder struct {
	has   func(string) bool
	asked map[string]int
}

func (r *recorder) ask(name string) bool {
	r.asked[name]++
	return r.has(name)
}

// candidates returns every function name the narrations may use: with no
// function known, every alternative is asked for.
func candidates(t *testing.T) map[string]bool {
	t.Helper()
	r := &recorder{has: none, asked: map[string]int{}}
	x := New(r.ask)
	for _, e := range samples() {
		x.Path(e)
	}
	names := make(map[string]bool, len(r.asked))
	for name := range r.asked {
		names[name] = true
	}
	if len(names) < 60 {
		t.Fatalf("only %d candidate names: %v", len(names), names)
	}
	return names
}

// named returns the words of line that are candidate function names, in
// order.
func named(line string, cands map[string]bool) []string {
	var out []string
	for _, w := range strings.FieldsFunc(line, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		if cands[w] {
			out = append(out, w)
		}
	}
	return out
}

// TestMissingNeverNamed: a function has does not know never appears, in
// Path or in Functions, and Functions lists exactly the functions Path names.
func TestMissingNeverNamed(t *testing.T) {
	cands := candidates(t)
	list := make([]string, 0, len(cands))
	for name := range cands {
		list = append(list, name)
	}
	slices.Sort(list)

	rng := rand.New(rand.NewPCG(1, 2))
	sets := []map[string]bool{cands, {}}
	for range 200 {
		set := map[string]bool{}
		for _, name := range list {
			if rng.IntN(3) > 0 {
				set[name] = true
			}
		}
		sets = append(sets, set)
	}
	for i, set := range sets {
		x := New(func(name string) bool { return set[name] })
		for _, e := range samples() {
			line := x.Path(e)
			fns := x.Functions(e)
			for _, fn := range fns {
				if !set[fn] {
					t.Fatalf("set %d: %q named, but missing: %s", i, fn, line)
				}
			}
			if got := named(line, cands); !slices.Equal(got, fns) {
				t.Fatalf("set %d: Path names %q, Functions %q: %s", i, got, fns, line)
			}
			if strings.Contains(line, "\n") || strings.Contains(line, "→  →") ||
				strings.HasPrefix(line, " →") || strings.HasSuffix(line, "→ ") {
				t.Fatalf("set %d: malformed line %q", i, line)
			}
		}
	}
}

// TestHasCachedOnce: has is asked once per name, however many lines.
func TestHasCachedOnce(t *testing.T) {
	r := &recorder{has: without("__sock_sendmsg", "icmpv4_global_allow"), asked: map[string]int{}}
	x := New(r.ask)
	for range 3 {
		for _, e := range samples() {
			x.Path(e)
			x.Functions(e)
		}
	}
	for name, n := range r.asked {
		if n != 1 {
			t.Errorf("has(%q) called %d times", name, n)
		}
	}
}

func TestConcurrent(t *testing.T) {
	x := New(without("kfree_skb_reason"))
	want := x.Path(noPort(6, events.ICMPSent))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, e := range samples() {
				x.Path(e)
			}
			if got := x.Path(noPort(6, events.ICMPSent)); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	wg.Wait()
}

func TestPathAllocs(t *testing.T) {
	x := New(all)
	for _, e := range []*events.Event{noPort(6, events.ICMPRateLimitedHost), delivery(6, events.OutcomeQueued), syscall(6, sysSendmmsg)} {
		x.Path(e) // fill the cache
		if n := testing.AllocsPerRun(100, func() { x.Path(e) }); n > 1 {
			t.Errorf("%v: %v allocations per Path, want 1", e.Kind, n)
		}
	}
}

// kernelFuncs returns the names of all the functions in the running kernel's
// BTF, going through every type (not through TypeByName, which FromKernel
// uses), or skips the test when the kernel has no BTF.
func kernelFuncs(t *testing.T) map[string]bool {
	t.Helper()
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); errors.Is(err, os.ErrNotExist) {
		t.Skip("no /sys/kernel/btf/vmlinux")
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	funcs := map[string]bool{}
	for typ := range spec.All() {
		if fn, ok := typ.(*btf.Func); ok {
			funcs[fn.Name] = true
		}
	}
	return funcs
}

// TestFromKernel: on this kernel, every function a line names is in its BTF,
// and FromKernel knows every candidate function the BTF has, even those
// that cilium/ebpf's TypeByName cannot find (___sys_recvmsg).
func TestFromKernel(t *testing.T) {
	funcs := kernelFuncs(t)
	x, err := FromKernel()
	if err != nil {
		t.Fatal(err)
	}
	for name := range candidates(t) {
		if got, want := x.exists(name), funcs[name]; got != want {
			t.Errorf("FromKernel: has(%q) = %v, BTF says %v", name, got, want)
		}
	}
	for _, e := range samples() {
		fns := x.Functions(e)
		for _, fn := range fns {
			if !funcs[fn] {
				t.Errorf("%s: %q is not a function of this kernel", x.Path(e), fn)
			}
		}
		if e.Kind == events.KindNoPort && len(fns) == 0 {
			t.Errorf("%s: names no function", x.Path(e))
		}
	}
	t.Log(x.Path(noPort(4, events.ICMPSent)))
	t.Log(x.Path(delivery(6, events.OutcomeQueued)))
	t.Log(x.Path(syscall(4, sysRecvmsg)))
}

func BenchmarkPath(b *testing.B) {
	x := New(all)
	e := noPort(6, events.ICMPRateLimitedHost)
	b.ReportAllocs()
	for b.Loop() {
		x.Path(e)
	}
}
