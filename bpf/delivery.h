/* SPDX-License-Identifier: GPL-2.0-only */
/* The sender's side of a chain. Included at the end of noport.c, whose
 * event helpers it uses. */
#ifndef DELIVERY_H
#define DELIVERY_H

/* ---- the sender's side: the port-unreachable comes back ---- */

/*
 * icmp_rcv -> icmp_unreach -> icmp_socket_deliver -> __udp4_lib_err
 * (icmpv6_rcv -> icmpv6_notify -> __udp6_lib_err) looks up the socket of the
 * quoted datagram. A connected one gets sk_err = ECONNREFUSED and
 * sk_error_report(); with IP_RECVERR the error is also queued on the error
 * queue (sk_err is set even unconnected); otherwise it is ignored. The
 * report, if any, is parked per CPU; when the ICMP is fully handled the
 * delivery record is written, and a delivered error waits in `pending`
 * for the call that returns it.
 */

#define ECONNREFUSED_ 111
#define ICMP_HDR_LEN 8

struct report {
	__u64 ts;
	__u64 sk;
	__u16 sport;
	__u8 queued;
	__u8 _pad[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct report);
} reports SEC(".maps");

/* Sockets with a delivered error no call has returned yet, to their
 * delivery record: the template of the syscall record. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* struct sock * */
	__type(value, struct event);
} pending SEC(".maps");

static __always_inline void error_reported(struct sock *sk, bool btf)
{
	__u32 zero = 0;
	struct report *r;

	if (KREAD(btf, sk, sk_protocol) != IPPROTO_UDP)
		return;
	r = bpf_map_lookup_elem(&reports, &zero);
	if (!r)
		return;
	r->ts = bpf_ktime_get_ns();
	r->sk = (__u64)sk;
	r->sport = KREAD(btf, sk, __sk_common.skc_num);
	r->queued = KREAD(btf, sk, sk_error_queue.qlen) > 0;
}

/* Is skb (transport header at the ICMP header) a port-unreachable? */
static __always_inline bool is_port_unreach(struct sk_buff *skb, unsigned char *head, __u8 family, bool btf)
{
	__u8 tc[2];

	if (bpf_probe_read_kernel(tc, sizeof(tc), head + KREAD(btf, skb, transport_header)))
		return false;
	if (family == 4)
		return tc[0] == ICMP_DEST_UNREACH_ && tc[1] == ICMP_PORT_UNREACH_;
	return tc[0] == ICMPV6_DEST_UNREACH_ && tc[1] == ICMPV6_PORT_UNREACH_;
}

/* The UDP error handler is done with the port-unreachable in skb, whose
 * data starts at the quoted IP header. */
static __always_inline void icmp_handled(struct sk_buff *skb, unsigned char *head, __u8 family, bool btf)
{
	unsigned char *q = BPF_CORE_READ(skb, data);
	long avail = (long)KREAD(btf, skb, tail) - (q - head);
	struct sender_info *si;
	struct report *r;
	struct udphdr uh;
	struct event e;
	__u32 zero = 0, l4;
	__u16 ipid = 0;
	__u64 sk = 0;
	__u8 queued = 0;
	bool want;

	__builtin_memset(&e, 0, sizeof(e));
	if (family == 4) {
		struct ip4_udp h;

		/* The quoted header's options, if any, come before UDP's. */
		if (bpf_probe_read_kernel(&h, sizeof(h), q) || h.ip.protocol != IPPROTO_UDP)
			return;
		__builtin_memcpy(e.saddr, &h.ip.saddr, 4);
		__builtin_memcpy(e.daddr, &h.ip.daddr, 4);
		ipid = bpf_ntohs(h.ip.id);
		l4 = (h.ip.ihl & 0xf) * 4;
		uh = h.uh;
		if (l4 != sizeof(h.ip) && bpf_probe_read_kernel(&uh, sizeof(uh), q + l4))
			return;
	} else {
		struct {
			struct ipv6hdr ip;
			struct udphdr uh;
		} h;

		/* Quoted extension headers are not followed. */
		if (bpf_probe_read_kernel(&h, sizeof(h), q) || h.ip.nexthdr != IPPROTO_UDP)
			return;
		__builtin_memcpy(e.saddr, &h.ip.saddr, 16);
		__builtin_memcpy(e.daddr, &h.ip.daddr, 16);
		l4 = sizeof(h.ip);
		uh = h.uh;
	}
	e.family = family;
	e.sport = bpf_ntohs(uh.source);
	e.dport = bpf_ntohs(uh.dest);
	e.ulen = bpf_ntohs(uh.len);
	e.kind = KIND_DELIVERY;
	e.icmp = ICMP_SENT; /* it arrived */
	e.netns = btf ? skb->dev->nd_net.net->ns.inum : BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	r = bpf_map_lookup_elem(&reports, &zero);
	if (r && r->ts && bpf_ktime_get_ns() - r->ts < ICMP_MARK_MAX_AGE_NS && r->sport == e.sport) {
		sk = r->sk;
		queued = r->queued;
	}
	if (r)
		r->ts = 0;
	/* Its syscall record would have the same tuple: if the filters reject
	 * this one, they reject that too. Nothing more to read. */
	if (!cheap_wanted(&e))
		return;
	clear_chain_fields(&e);
	set_chain(&e, ipid, q + l4 + sizeof(uh), avail - l4 - (long)sizeof(uh));
	si = find_sender(&e);

	if (sk) {
		e.outcome = queued ? OUT_QUEUED : OUT_REFUSED;
		e.err = ECONNREFUSED_;
		e.sock_ino = sock_ino((struct sock *)sk);
	} else if (!si) {
		e.outcome = OUT_UNKNOWN;
	} else if (si->ino && sock_ino((struct sock *)si->sk) == si->ino) {
		/* The socket that sent it is still open, yet nobody was told. */
		e.outcome = OUT_IGNORED;
	} else {
		e.outcome = OUT_NO_SOCKET;
	}
	want = task_wanted(&e);
	if (!want && !sk)
		return;
	fill_context(skb, &e, btf);
	if (sk) /* the template of the syscall record, wanted or not yet */
		bpf_map_update_elem(&pending, &sk, &e, BPF_ANY);
	if (want)
		submit(&e, false);
}

#define NR_read 0
#define NR_readv 19
#define NR_recvfrom 45
#define NR_recvmsg 47
#define NR_recvmmsg 299

static __always_inline bool socket_io_call(unsigned long nr)
{
	return nr == NR_read || nr == NR_readv || nr == NR_recvfrom || nr == NR_recvmsg || nr == NR_recvmmsg ||
	       nr == NR_write || nr == NR_writev || nr == NR_sendto || nr == NR_sendmsg || nr == NR_sendmmsg;
}

/* A call on sk returned -ECONNREFUSED: if udptrace saw the error arrive,
 * that closes its chain. */
static __always_inline void refused_call(struct sock *sk, long nr, long fd)
{
	__u64 key = (__u64)sk, id;
	struct event *t = bpf_map_lookup_elem(&pending, &key);
	struct event e;

	if (!t)
		return;
	__builtin_memcpy(&e, t, sizeof(e));
	bpf_map_delete_elem(&pending, &key);
	/* The socket closed and its memory went to another one since. */
	if (e.sock_ino != sock_ino(sk))
		return;
	id = bpf_get_current_pid_tgid();
	e.kind = KIND_SYSCALL;
	e.syscall = nr;
	e.fd = fd;
	e.err = ECONNREFUSED_;
	e.ts_ns = bpf_ktime_get_boot_ns();
	e.pid = id >> 32;
	e.tid = (__u32)id;
	e.cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	if (wanted(&e))
		submit(&e, false);
}

/* sock_recvmsg / sock_sendmsg returned ret on sk (6.3+): the syscall and
 * its fd come from the user registers. */
static __always_inline void socket_call_returned(struct sock *sk, int ret)
{
	struct pt_regs *regs;
	unsigned long nr;

	if (ret != -ECONNREFUSED_)
		return;
	regs = user_regs((struct task_struct *)bpf_get_current_task());
	nr = BPF_CORE_READ(regs, orig_ax);
	if (socket_io_call(nr))
		refused_call(sk, nr, BPF_CORE_READ(regs, di));
	else
		refused_call(sk, -1, -1); /* io_uring, a kernel socket, ... */
}

SEC("raw_tp/sock_recv_length")
int BPF_PROG(sc_recv_length, struct sock *sk, int ret)
{
	socket_call_returned(sk, ret);
	return 0;
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(sc_send_length, struct sock *sk, int ret)
{
	socket_call_returned(sk, ret);
	return 0;
}

/* Before 6.3 there is no socket-level tracepoint with the result: the
 * fentry and kprobe backends watch sock_recvmsg / sock_sendmsg return (every
 * socket call of the host passes there). A raw tracepoint on sys_exit would
 * do too, but attaching it deadlocked Debian's 5.10 under QEMU. */
SEC("fexit/sock_recvmsg")
int BPF_PROG(sc_fx_recvmsg, struct socket *sock, void *msg, int flags, int ret)
{
	if (ret == -ECONNREFUSED_)
		socket_call_returned(BPF_CORE_READ(sock, sk), ret);
	return 0;
}

SEC("fexit/sock_sendmsg")
int BPF_PROG(sc_fx_sendmsg, struct socket *sock, void *msg, int ret)
{
	if (ret == -ECONNREFUSED_)
		socket_call_returned(BPF_CORE_READ(sock, sk), ret);
	return 0;
}

/* kprobes: the socket, from entry to return, per thread (the call sleeps). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);   /* pid_tgid */
	__type(value, __u64); /* struct sock * */
} sock_calls SEC(".maps");

static __always_inline void sock_call_enter(struct socket *sock)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 sk = (__u64)BPF_CORE_READ(sock, sk);

	bpf_map_update_elem(&sock_calls, &id, &sk, BPF_ANY);
}

static __always_inline void sock_call_exit(int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *sk = bpf_map_lookup_elem(&sock_calls, &id);

	if (!sk)
		return;
	if (ret == -ECONNREFUSED_)
		socket_call_returned((struct sock *)*sk, ret);
	bpf_map_delete_elem(&sock_calls, &id);
}

SEC("kprobe/sock_recvmsg")
int BPF_KPROBE(sc_kp_recvmsg, struct socket *sock)
{
	sock_call_enter(sock);
	return 0;
}

SEC("kretprobe/sock_recvmsg")
int BPF_KRETPROBE(sc_kr_recvmsg, int ret) /* int: rax's upper half is undefined */
{
	sock_call_exit(ret);
	return 0;
}

SEC("kprobe/sock_sendmsg")
int BPF_KPROBE(sc_kp_sendmsg, struct socket *sock)
{
	sock_call_enter(sock);
	return 0;
}

SEC("kretprobe/sock_sendmsg")
int BPF_KRETPROBE(sc_kr_sendmsg, int ret)
{
	sock_call_exit(ret);
	return 0;
}

/* tracepoint backend */

SEC("tp_btf/inet_sk_error_report")
int BPF_PROG(error_report, struct sock *sk)
{
	error_reported(sk, true);
	return 0;
}

/* consume_skb from icmp_rcv / icmpv6_rcv: an ICMP message was handled. */
SEC("tp_btf/consume_skb")
int BPF_PROG(consume_skb, struct sk_buff *skb, void *location)
{
	__u64 loc = (__u64)location;
	unsigned char *head;
	__u8 family;

	if (loc >= icmp_rcv_lo && loc < icmp_rcv_hi)
		family = 4;
	else if (loc >= icmpv6_rcv_lo && loc < icmpv6_rcv_hi)
		family = 6;
	else
		return 0;
	/* A delivery record belongs to the namespace the ICMP arrived in. */
	if (target_netns && skb->dev->nd_net.net->ns.inum != target_netns)
		return 0;
	head = BPF_CORE_READ(skb, head);
	if (is_port_unreach(skb, head, family, true))
		icmp_handled(skb, head, family, true);
	return 0;
}

/* fentry and kprobe backends */

SEC("fentry/sock_def_error_report")
int BPF_PROG(fe_error_report, struct sock *sk)
{
	error_reported(sk, true);
	return 0;
}

SEC("fexit/__udp4_lib_err")
int BPF_PROG(fx_udp4_err, struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);

	if (is_port_unreach(skb, head, 4, true))
		icmp_handled(skb, head, 4, true);
	return 0;
}

SEC("fexit/icmpv6_notify")
int BPF_PROG(fx_icmpv6_notify, struct sk_buff *skb, __u8 type, __u8 code)
{
	if (type == ICMPV6_DEST_UNREACH_ && code == ICMPV6_PORT_UNREACH_)
		icmp_handled(skb, BPF_CORE_READ(skb, head), 6, true);
	return 0;
}

/* kprobes: the skb, kept from entry to return, per CPU and family. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} err_skbs SEC(".maps");

static __always_inline void err_enter(__u32 fam, struct sk_buff *skb)
{
	__u64 *slot = bpf_map_lookup_elem(&err_skbs, &fam);

	if (slot)
		*slot = (__u64)skb;
}

static __always_inline void err_exit(__u32 fam)
{
	__u64 *slot = bpf_map_lookup_elem(&err_skbs, &fam);
	struct sk_buff *skb;

	if (!slot || !*slot)
		return;
	skb = (struct sk_buff *)*slot;
	*slot = 0;
	icmp_handled(skb, BPF_CORE_READ(skb, head), fam == 0 ? 4 : 6, false);
}

SEC("kprobe/sock_def_error_report")
int BPF_KPROBE(kp_error_report, struct sock *sk)
{
	error_reported(sk, false);
	return 0;
}

SEC("kprobe/__udp4_lib_err")
int BPF_KPROBE(kp_udp4_err, struct sk_buff *skb)
{
	if (is_port_unreach(skb, BPF_CORE_READ(skb, head), 4, false))
		err_enter(0, skb);
	return 0;
}

SEC("kretprobe/__udp4_lib_err")
int BPF_KRETPROBE(kr_udp4_err)
{
	err_exit(0);
	return 0;
}

SEC("kprobe/icmpv6_notify")
int BPF_KPROBE(kp_icmpv6_notify, struct sk_buff *skb, __u8 type, __u8 code)
{
	if (type == ICMPV6_DEST_UNREACH_ && code == ICMPV6_PORT_UNREACH_)
		err_enter(1, skb);
	return 0;
}

SEC("kretprobe/icmpv6_notify")
int BPF_KRETPROBE(kr_icmpv6_notify)
{
	err_exit(1);
	return 0;
}

#endif
