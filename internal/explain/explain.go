// Package explain narrates, for teaching (udptrace --explain), the kernel
// code path that an event took: which functions a UDP datagram went through
// before it was counted in UDP_MIB_NOPORTS, how the ICMP port-unreachable
// was decided, how that reply reached the sending socket, and how the error
// came back to the process as -ECONNREFUSED.
//
// A narration is one line of steps joined by " → ", each a kernel function,
// a function and a note ("__udp4_lib_rcv: no socket for 10.0.0.2:9"), or a
// note alone ("UDP_MIB_NOPORTS++ (Udp NoPorts)"):
//
//	ip_local_deliver_finish → ip_protocol_deliver_rcu → udp_rcv → __udp4_lib_rcv: no socket for 10.0.0.2:9 → UDP_MIB_NOPORTS++ (Udp NoPorts) → __icmp_send(type 3, code 3): sent (IcmpMsg OutType3++) → sk_skb_reason_drop: SKB_DROP_REASON_NO_SOCKET
//
// Kernels differ: functions get renamed, split, merged or inlined from one
// version to the next. So the narration names only functions that the
// running kernel has as functions of their own (FromKernel asks its BTF):
// where two names existed in different versions it names the one this
// kernel has, and a function this kernel lacks (or inlined) is left out,
// its note kept. The notes may mention static inline helpers in words, with
// parentheses, as in "sock_error()"; Functions lists the real functions
// only.
//
// The narration follows the kernel source (net/ipv4/udp.c, net/ipv4/icmp.c,
// net/ipv6/udp.c, net/ipv6/icmp.c, net/socket.c, fs/read_write.c) for the
// common case: it is a guide to where to read, not a recorded stack trace.
// It does not know, for instance, whether an IPv4 datagram was sent from an
// IPv6 socket (which takes inet6_recvmsg and udpv6_recvmsg): it follows the
// datagram's family.
package explain

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"

	"github.com/udptrace/udptrace/internal/events"
)

// Explainer builds kernel-path narrations naming only functions the kernel
// has. It is safe for concurrent use.
type Explainer struct {
	has func(name string) bool

	mu    sync.Mutex
	known map[string]bool // has's answers so far
}

// New returns an Explainer that calls has to decide whether the kernel has
// a function, at most once per name.
func New(has func(name string) bool) *Explainer {
	return &Explainer{has: has, known: make(map[string]bool)}
}

// FromKernel returns an Explainer for the running kernel: a function exists
// when the kernel's BTF (/sys/kernel/btf/vmlinux, readable without
// privileges) describes a function of that name. It keeps the parsed BTF for
// its lookups.
func FromKernel() (*Explainer, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("load kernel BTF: %w", err)
	}
	var leading map[string]bool // see below; filled on first need
	// New calls this under its lock, so leading needs no lock of its own.
	return New(func(name string) bool {
		if strings.LastIndex(name, "___") == 0 {
			// cilium/ebpf (v0.22) indexes a type under its name cut at
			// the last "___" (CO-RE flavours) but looks a name like
			// "___sys_recvmsg" up whole, and never finds it. Scan for
			// those once, in a spec of their own, which the garbage
			// collector takes back after.
			if leading == nil {
				leading = leadingUnderscoreFuncs()
			}
			return leading[name]
		}
		var fn *btf.Func
		err := spec.TypeByName(name, &fn)
		// Two static functions may share a name; either will do.
		return err == nil || errors.Is(err, btf.ErrMultipleMatches)
	}), nil
}

// leadingUnderscoreFuncs returns the names of the kernel's functions that
// begin with "___", by going through all its BTF types (~0.2 s).
func leadingUnderscoreFuncs() map[string]bool {
	names := make(map[string]bool)
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return names
	}
	for typ := range spec.All() {
		if fn, ok := typ.(*btf.Func); ok && strings.HasPrefix(fn.Name, "___") {
			names[fn.Name] = true
		}
	}
	return names
}

// exists tells whether the kernel has the function name.
func (x *Explainer) exists(name string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	ok, asked := x.known[name]
	if !asked {
		ok = x.has(name)
		x.known[name] = ok
	}
	return ok
}

// first returns the first of names that the kernel has, or "" if it has
// none. Alternatives are listed newest kernel first.
func (x *Explainer) first(names ...string) string {
	for _, name := range names {
		if x.exists(name) {
			return name
		}
	}
	return ""
}

// Path returns the kernel path of e as one line, without a newline; "" for
// an event of unknown kind.
func (x *Explainer) Path(e *events.Event) string {
	w := walk{x: x}
	w.line.Grow(320) // the longest lines, of IPv6 events, are shorter
	w.event(e)
	return w.line.String()
}

// Functions returns the kernel functions that Path(e) names, in order.
func (x *Explainer) Functions(e *events.Event) []string {
	w := walk{x: x, collect: true}
	w.event(e)
	return w.names
}

// walk goes along an event's path once, either writing the line (Path) or
// collecting the functions it names (Functions), so that the two always
// agree.
type walk struct {
	x       *Explainer
	collect bool            // collect names, else write the line
	line    strings.Builder // the line so far
	names   []string        // the functions so far
	steps   int             // steps begun
}

// sep begins a step.
func (w *walk) sep() {
	if !w.collect && w.steps > 0 {
		w.line.WriteString(" → ")
	}
	w.steps++
}

// str adds words to the current step.
func (w *walk) str(s string) {
	if !w.collect {
		w.line.WriteString(s)
	}
}

// addr adds an address and port, as netip.AddrPort.String writes them.
func (w *walk) addr(a netip.Addr, port uint16) {
	if !w.collect {
		var buf [64]byte // enough for "[IPv6]:port"; AppendTo grows it otherwise
		w.line.Write(netip.AddrPortFrom(a, port).AppendTo(buf[:0]))
	}
}

// fn adds the function name, which the kernel has, to the current step.
func (w *walk) fn(name string) {
	if w.collect {
		w.names = append(w.names, name)
		return
	}
	w.line.WriteString(name)
}

// call adds a step naming the first of names that the kernel has, and
// reports whether there was one; if there is none, it adds nothing.
func (w *walk) call(names ...string) bool {
	name := w.x.first(names...)
	if name == "" {
		return false
	}
	w.sep()
	w.fn(name)
	return true
}

// at begins a step that the caller's words complete: "name: " for the first
// of names that the kernel has, or nothing before the words if none.
func (w *walk) at(names ...string) {
	if w.call(names...) {
		w.str(": ")
	} else {
		w.sep()
	}
}

// note adds a step of words only.
func (w *walk) note(s string) {
	w.sep()
	w.str(s)
}

// in adds " in NAME" for the first of names that the kernel has.
func (w *walk) in(names ...string) {
	if name := w.x.first(names...); name != "" {
		w.str(" in ")
		w.fn(name)
	}
}

// atInner begins a step at inner, preceded by its caller outer, for a pair
// that newer kernels merged into outer alone (udp_err and __udp4_lib_err,
// say): "outer → inner: " where inner exists, else "outer: ".
func (w *walk) atInner(outer, inner string) {
	if w.x.exists(inner) {
		w.call(outer)
	}
	w.at(inner, outer)
}

func (w *walk) event(e *events.Event) {
	switch e.Kind {
	case events.KindNoPort:
		w.noPort(e)
	case events.KindDelivery:
		w.delivery(e)
	case events.KindSyscall:
		w.syscall(e)
	}
}

// noPort: the datagram finds no socket, is counted, answered and freed
// (__udp4_lib_rcv, __udp6_lib_rcv).
func (w *walk) noPort(e *events.Event) {
	v6 := e.Family == events.FamilyIPv6
	if v6 {
		w.call("ip6_input_finish")
		w.call("ip6_protocol_deliver_rcu")
		w.atInner("udpv6_rcv", "__udp6_lib_rcv")
	} else {
		w.call("ip_local_deliver_finish")
		w.call("ip_protocol_deliver_rcu")
		w.atInner("udp_rcv", "__udp4_lib_rcv")
	}
	w.str("no socket for ")
	w.addr(e.Dst, e.DPort)
	if v6 {
		w.note("UDP_MIB_NOPORTS++ (Udp6NoPorts)")
	} else {
		w.note("UDP_MIB_NOPORTS++ (Udp NoPorts)")
	}

	// icmp_send() and icmpv6_send() are inline wrappers on current kernels.
	if v6 {
		w.icmpSend("ICMPv6", "(type 1, code 4)", "icmp6_send", "icmpv6_send")
	} else {
		w.icmpSend("ICMP", "(type 3, code 3)", "__icmp_send", "icmp_send")
	}
	w.verdict(e, v6)

	// kfree_skb_reason() is an inline wrapper of sk_skb_reason_drop() since
	// Linux 6.11, and kfree_skb() one of kfree_skb_reason() since 5.17, when
	// drop reasons appeared.
	switch {
	case w.call("sk_skb_reason_drop", "kfree_skb_reason"):
		w.str(": SKB_DROP_REASON_NO_SOCKET")
	case w.call("kfree_skb"):
	default:
		w.note("dropped: SKB_DROP_REASON_NO_SOCKET")
	}
}

// icmpSend begins the step of the port-unreachable: "name(args): ", or
// "proto port unreachable args: " when the kernel has none of names.
func (w *walk) icmpSend(proto, args string, names ...string) {
	if !w.call(names...) {
		w.sep()
		w.str(proto)
		w.str(" port unreachable ")
	}
	w.str(args)
	w.str(": ")
}

// verdict completes the port-unreachable's step with what became of it.
func (w *walk) verdict(e *events.Event, v6 bool) {
	switch e.ICMP {
	case events.ICMPSent:
		if v6 {
			w.str("sent (Icmp6OutDestUnreachs++)")
		} else {
			w.str("sent (IcmpMsg OutType3++)")
		}
	case events.ICMPNotSent:
		w.str("not sent (no rate-limit counter moved)")
	case events.ICMPRateLimitedGlobal:
		// net.ipv4.icmp_msgs_per_sec: one bucket for both families,
		// counted in the IPv4 Icmp OutRateLimitGlobal.
		w.str("suppressed by the global rate limit")
		if v6 {
			w.in("icmpv6_global_allow", "icmp_global_allow")
		} else {
			w.in("icmpv4_global_allow", "icmp_global_allow")
		}
		w.counter(e)
	case events.ICMPRateLimitedHost:
		// net.ipv4.icmp_ratelimit, net.ipv6.icmp.ratelimit: a token bucket
		// per destination (struct inet_peer).
		w.str("suppressed by the per-destination rate limit")
		if v6 {
			w.in("icmpv6_xrlim_allow", "inet_peer_xrlim_allow")
		} else {
			w.in("icmpv4_xrlim_allow", "inet_peer_xrlim_allow")
		}
		w.counter(e)
	default:
		w.str("reply not visible")
	}
}

// counter adds the rate-limit counter that moved, as " (Icmp
// OutRateLimitHost++)".
func (w *walk) counter(e *events.Event) {
	reason := e.ICMP.Reason(e.Family)
	w.str(" (")
	if !strings.HasPrefix(reason, "Icmp6") {
		w.str("Icmp ") // /proc/net/snmp's line; Icmp6 counters carry their prefix
	}
	w.str(reason)
	w.str("++)")
}

// errPath names what differs between IPv4 and IPv6 where the
// port-unreachable meets the socket.
type errPath struct {
	// outer is the protocol's error handler; inner, which outer calls,
	// does the work (newer kernels merge it into outer).
	outer, inner string
	lookup       string // the socket lookup
	icmpError    string // queues the error on the error queue
	recvErr      string // the socket option that asks for that
	inErrors     string // the counter of errors for no socket
}

var (
	errPath4 = errPath{"udp_err", "__udp4_lib_err", "__udp4_lib_lookup",
		"ip_icmp_error", "IP_RECVERR", "ICMP_MIB_INERRORS++ (Icmp InErrors)"}
	errPath6 = errPath{"udpv6_err", "__udp6_lib_err", "__udp6_lib_lookup",
		"ipv6_icmp_error", "IPV6_RECVERR", "ICMP6_MIB_INERRORS++ (Icmp6InErrors)"}
)

// delivery: the port-unreachable comes back and meets the sending socket
// (__udp4_lib_err, __udp6_lib_err).
func (w *walk) delivery(e *events.Event) {
	p := &errPath4
	if e.Family == events.FamilyIPv6 {
		p = &errPath6
		w.at("icmpv6_rcv")
		w.str("Icmp6InDestUnreachs++")
		w.call("icmpv6_notify")
	} else {
		w.at("icmp_rcv")
		w.str("IcmpMsg InType3++")
		w.call("icmp_unreach")
		w.call("icmp_socket_deliver")
	}
	if w.x.exists(p.inner) {
		w.call(p.outer)
	}

	switch e.Outcome {
	case events.OutcomeRefused:
		w.atSocket(p, e)
		w.str(" is connected")
		w.setErr()
	case events.OutcomeQueued:
		w.atSocket(p, e)
		w.str(" has ")
		w.str(p.recvErr)
		w.call(p.icmpError)
		w.call("sock_queue_err_skb")
		w.setErr()
	case events.OutcomeIgnored:
		w.atSocket(p, e)
		w.str(" is not connected (sk_state != TCP_ESTABLISHED) and has no ")
		w.str(p.recvErr)
		w.str(": error dropped")
	case events.OutcomeNoSocket:
		w.call(p.inner, p.outer)
		w.at(p.lookup)
		w.str("no socket for ")
		w.addr(e.Src, e.SPort)
		w.note(p.inErrors)
	case events.OutcomeUnknown:
		w.atSocket(p, e)
		w.str(" not seen sending: error ignored, or socket closed")
	default:
		w.call(p.inner, p.outer)
	}
}

// atSocket begins the error handler's step with the sending socket:
// "__udp4_lib_err: socket 10.0.0.1:40000".
func (w *walk) atSocket(p *errPath, e *events.Event) {
	w.at(p.inner, p.outer)
	w.str("socket ")
	w.addr(e.Src, e.SPort)
}

// setErr: the error is set on the socket, and its owner woken.
func (w *walk) setErr() {
	w.note("sk->sk_err = ECONNREFUSED")
	// sk_error_report() appeared in Linux 5.12; before, the callers called
	// sk->sk_error_report, which is sock_def_error_report for UDP.
	w.call("sk_error_report", "sock_def_error_report")
}

// syscall: a call on the socket returns the pending error.
func (w *walk) syscall(e *events.Event) {
	v6 := e.Family == events.FamilyIPv6
	switch events.SyscallName(e.Syscall) {
	case "read":
		w.call("ksys_read")
		w.call("vfs_read")
		w.call("new_sync_read")
		w.call("sock_read_iter")
		w.recv(v6)
	case "readv":
		w.call("do_readv")
		w.call("vfs_readv")
		w.call("do_iter_read")
		w.call("do_iter_readv_writev")
		w.call("sock_read_iter")
		w.recv(v6)
	case "recvfrom":
		w.call("__sys_recvfrom")
		w.recv(v6)
	case "recvmsg":
		w.call("__sys_recvmsg")
		w.call("___sys_recvmsg")
		w.call("____sys_recvmsg")
		w.recv(v6)
	case "recvmmsg":
		w.call("__sys_recvmmsg")
		w.call("do_recvmmsg")
		w.call("___sys_recvmsg")
		w.call("____sys_recvmsg")
		w.recv(v6)
	case "write":
		w.call("ksys_write")
		w.call("vfs_write")
		w.call("new_sync_write")
		w.call("sock_write_iter")
		w.send(v6)
	case "writev":
		w.call("do_writev")
		w.call("vfs_writev")
		w.call("do_iter_write")
		w.call("do_iter_readv_writev")
		w.call("sock_write_iter")
		w.send(v6)
	case "sendto":
		w.call("__sys_sendto")
		w.send(v6)
	case "sendmsg":
		w.call("__sys_sendmsg")
		w.call("___sys_sendmsg")
		w.call("____sys_sendmsg")
		w.send(v6)
	case "sendmmsg":
		w.call("__sys_sendmmsg")
		w.call("___sys_sendmsg")
		w.call("____sys_sendmsg")
		w.send(v6)
	default:
		// Not a system call udptrace knows (io_uring, a call from the
		// kernel): it cannot tell receive from send.
		w.note("a socket call returned -ECONNREFUSED")
	}
}

// sockError completes a step with what sock_error() does.
const sockError = "sock_error() returns -ECONNREFUSED and clears sk_err"

// recv: the receive side, from the socket layer to the check of sk_err
// before the receive queue is looked at.
func (w *walk) recv(v6 bool) {
	w.call("sock_recvmsg")
	if v6 {
		w.call("inet6_recvmsg")
		w.call("udpv6_recvmsg")
	} else {
		w.call("inet_recvmsg")
		w.call("udp_recvmsg")
	}
	w.at("__skb_recv_udp", "__skb_recv_datagram")
	w.str(sockError)
}

// send: the send side, from the socket layer to the allocation of the
// datagram's skb, which checks sk_err first.
func (w *walk) send(v6 bool) {
	// __sock_sendmsg (Linux 6.6, and stable kernels since) is what
	// sock_write_iter, __sys_sendto and ____sys_sendmsg call; sock_sendmsg
	// still exists but is off this path, so it is not an alternative. On
	// older kernels, which called sock_sendmsg, the step is left out.
	w.call("__sock_sendmsg")
	if v6 {
		w.call("inet6_sendmsg")
		w.call("udpv6_sendmsg")
		w.call("ip6_make_skb")
		w.call("__ip6_append_data")
	} else {
		w.call("inet_sendmsg")
		w.call("udp_sendmsg")
		w.call("ip_make_skb")
		w.call("__ip_append_data")
	}
	// sock_alloc_send_skb() is an inline wrapper of sock_alloc_send_pskb().
	w.at("sock_alloc_send_pskb")
	w.str(sockError)
}
