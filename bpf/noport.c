// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receive side: UDP datagrams the kernel counted in UDP_MIB_NOPORTS, and
 * whether it answered them with ICMP port-unreachable.
 *
 * __udp4_lib_rcv / __udp6_lib_rcv, when no socket matches:
 *     __UDP_INC_STATS(net, UDP_MIB_NOPORTS, ...);
 *     icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0);   (icmpv6_send)
 *     kfree_skb_reason(skb, SKB_DROP_REASON_NO_SOCKET);          (sk_skb_reason_drop)
 * all in one softirq on one CPU. Three backends see this path, each from the
 * points its kernel offers, and feed one pipeline (draft -> wanted ->
 * account_and_submit) so that their events are identical:
 *
 * tracepoint  tp_btf/kfree_skb with reason NO_SOCKET (5.17+). The ICMP reply
 *             is seen first (tp_btf/icmp_send; ICMPv6 at net_dev_queue) and
 *             parked in a per-CPU slot that the drop picks up.
 * fentry      fentry/fexit on __udp{4,6}_lib_rcv open a per-CPU window; a
 *             port-unreachable built for the same skb inside the window
 *             (__icmp_send / icmp6_send) *is* the no-port path, since nothing
 *             else there sends one. icmp_glue_bits / icmpv6_getfrag, the
 *             callbacks that copy the reply's payload, run only for a reply
 *             that passed the rate limits: that is the "sent" verdict. The
 *             event is submitted when the window closes.
 * kprobe      the same points through kprobes/kretprobes.
 *
 * The rest of the chain is in the headers included below: chain.h (one id
 * per datagram), ratelimit.h (which rate limit suppressed a reply), task.h
 * (the current syscall and its sockets) and delivery.h (the reply reaching
 * the sending socket, and the call that returns its error).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "udptrace.h"

char LICENSE[] SEC("license") = "GPL";

#define E2BIG_ 7
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_ICMPV6_ 58
#define ICMP_DEST_UNREACH_ 3
#define ICMP_PORT_UNREACH_ 3
#define ICMPV6_DEST_UNREACH_ 1
#define ICMPV6_PORT_UNREACH_ 4
/* The reply and the drop happen within microseconds in the same softirq; a
 * slot older than this belongs to something else (e.g. netfilter REJECT). */
#define ICMP_MARK_MAX_AGE_NS (10 * 1000 * 1000ULL)

/* Set from Go before load; the verifier prunes the branches they disable. */
const volatile __u32 target_netns = 0; /* 0: every namespace */
const volatile __u32 stats_netns = 0;  /* namespace the summary reconciles */
const volatile __u8 want_family = 0;   /* 0: both, else 4 or 6 */
const volatile bool filter_dport = false;
const volatile bool filter_sport = false;
const volatile bool filter_src = false;
const volatile bool filter_dst = false;
const volatile bool filter_pid = false;  /* sender's tgid */
const volatile bool filter_comm = false; /* sender's task name */
const volatile bool have_icmp4_hook = false; /* icmp:icmp_send attached */
const volatile bool have_icmp6_hook = false; /* tracepoint backend: ICMPv6 replies seen at net_dev_queue */
/* Indexes of ICMP_MIB_RATELIMITGLOBAL, ICMP_MIB_RATELIMITHOST and
 * ICMP6_MIB_RATELIMITHOST in the per-CPU ICMP MIBs (anonymous enums, so
 * read from the kernel's BTF by Go); 0 when the kernel has no such counter
 * (before 6.6 and its backports). */
const volatile __u32 mib_rl_global4 = 0;
const volatile __u32 mib_rl_host4 = 0;
const volatile __u32 mib_rl_host6 = 0;
/* Address ranges of icmp_rcv and icmpv6_rcv (from /proc/kallsyms): the
 * tracepoint backend knows an ICMP error is fully handled when consume_skb
 * is called from there. */
const volatile __u64 icmp_rcv_lo = 0;
const volatile __u64 icmp_rcv_hi = 0;
const volatile __u64 icmpv6_rcv_lo = 0;
const volatile __u64 icmpv6_rcv_hi = 0;
/* udptrace top: count wanted datagrams in agg; stream: queue their
 * events (and run the chain's other hooks). */
const volatile bool aggregate = false;
const volatile bool stream = true;
/* --lean: net_dev_queue is not attached, so no sender is ever recorded. */
const volatile bool trace_senders = true;
/* Wake the reader only once this much is queued: a wakeup per event costs
 * more than the rest of the program. The reader also polls on a timer, so a
 * lone event still shows up promptly. */
const volatile __u64 wakeup_bytes = 1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized from Go */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Port sets as 65536-bit bitmaps: one lookup whatever the size of the set. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} dport_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} sport_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pid_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, __u8);
} comm_set SEC(".maps");

/* Address sets: one trie for both families; the family is the first byte of
 * the key, so prefixlen = 8 + CIDR bits. */
struct lpm_key {
	__u32 prefixlen;
	__u8 family;
	__u8 addr[16];
	__u8 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} src_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} dst_set SEC(".maps");

/* The last ICMP port-unreachable built on this CPU. IPv4 is keyed by the
 * offending skb (icmp:icmp_send passes it); IPv6 by the quoted tuple read
 * back from the outgoing ICMPv6 packet. */
struct icmp_mark {
	__u64 skb;
	__u64 ts;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 0: IPv4, 1: IPv6 */
	__type(key, __u32);
	__type(value, struct icmp_mark);
} icmp_marks SEC(".maps");

/* Local senders, by the sending socket's address as it appears on the
 * wire (source address and port): filled when a UDP datagram from a local
 * socket is queued to a device (process context, so the current task is the
 * sender), read when a datagram from that address hits a closed port. On
 * loopback the receive path cannot tell: the skb was orphaned. One record
 * per socket and source address, not per peer: a server answering 65 536
 * peers from one socket makes one record, and each later datagram costs a
 * lookup. A socket shared by threads is re-recorded when the sender changes. */
struct flow_key {
	__u8 family;
	__u8 _pad;
	__u16 sport;
	__u8 saddr[16];
};

struct sender_info {
	__u64 cgroup;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 netns;
	char comm[TASK_COMM_LEN];
	__u64 ts;  /* last send from this socket, boot ns */
	__u64 sk;  /* the sending socket, and its inode: the pair tells */
	__u64 ino; /* later whether that socket still exists */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct sender_info);
} senders SEC(".maps");

/* Bounded: a datagram whose key does not fit is counted in
 * CNT_AGG_OVERFLOW, never dropped silently. Go deletes idle keys. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct agg_key);
	__type(value, struct agg_val);
} agg SEC(".maps");

/* Referenced so that bpf2go can emit these types for Go. */
const struct event *unused_event __attribute__((unused));
const struct agg_key *unused_agg_key __attribute__((unused));
const struct agg_val *unused_agg_val __attribute__((unused));
const enum delivery_outcome *unused_outcome __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum icmp_verdict *unused_verdict __attribute__((unused));
const enum event_kind *unused_kind __attribute__((unused));
const enum sender_kind *unused_sender __attribute__((unused));

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline bool port_in(void *set, __u16 port)
{
	__u32 word = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(set, &word);

	return bits && (*bits & (1ULL << (port & 63)));
}

static __always_inline bool addr_in(void *set, __u8 family, const __u8 *addr)
{
	struct lpm_key key = { .prefixlen = 8 + 128, .family = family };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(set, &key) != NULL;
}

/* A kernel field. Programs whose arguments are BTF-typed (tp_btf, fentry,
 * fexit) load it directly: the verifier makes that one guarded load, where
 * bpf_probe_read_kernel is a helper call costing tens of ns. kprobes and
 * raw tracepoints have untyped pointers and must use the helper. btf is a
 * constant at every call site, so the compiler keeps one branch. Not for
 * pointers the program adds offsets to (skb->head): the verifier forbids
 * arithmetic on such a loaded pointer, so those stay helper reads. */
#define KREAD(btf, p, f) ((btf) ? (p)->f : BPF_CORE_READ(p, f))

/* An IPv4 header without options and the UDP header after it. */
struct ip4_udp {
	struct iphdr ip;
	struct udphdr uh;
};

/* Reads the IPv4 header at ip and the UDP header at udp: in one helper call
 * when they are neighbours (no IP options), as nearly always. */
static __always_inline long read_ip4_udp(struct ip4_udp *h, const void *ip, const void *udp)
{
	if (udp == ip + sizeof(h->ip))
		return bpf_probe_read_kernel(h, sizeof(*h), ip);
	return bpf_probe_read_kernel(&h->ip, sizeof(h->ip), ip) ?: bpf_probe_read_kernel(&h->uh, sizeof(h->uh), udp);
}

#define CHECKSUM_UNNECESSARY_ 1
#define CHECKSUM_PARTIAL_ 3

/* __udp6_lib_rcv sets NO_SOCKET *before* its checksum checks, so a corrupt
 * datagram to a closed port is dropped with that reason too, yet counted in
 * Udp6InCsumErrors, not Udp6NoPorts. One that reached NOPORTS has a non-zero
 * checksum and passed udp_lib_checksum_complete(), which leaves
 * skb_csum_unnecessary() true: replicate that test. */
static __always_inline bool udp6_checksum_passed(struct sk_buff *skb, __u16 check)
{
	__u8 ip_summed;

	if (check == 0)
		return false;
	ip_summed = BPF_CORE_READ_BITFIELD_PROBED(skb, ip_summed);
	if (ip_summed == CHECKSUM_UNNECESSARY_ || BPF_CORE_READ_BITFIELD_PROBED(skb, csum_valid))
		return true;
	if (ip_summed == CHECKSUM_PARTIAL_) {
		unsigned char *head = BPF_CORE_READ(skb, head);
		unsigned char *data = BPF_CORE_READ(skb, data);

		return (long)BPF_CORE_READ(skb, csum_start) - (data - head) >= 0;
	}
	return false;
}

/* Fills the sender part of e from the record of the local socket that sent
 * e's datagram, and returns that record (NULL: not sent from here). */
static __always_inline struct sender_info *find_sender(struct event *e)
{
	struct flow_key k = { .family = e->family, .sport = e->sport };
	struct sender_info *si;

	__builtin_memcpy(k.saddr, e->saddr, 16);
	si = trace_senders ? bpf_map_lookup_elem(&senders, &k) : NULL;
	if (!si) {
		e->sender = trace_senders ? SENDER_REMOTE : SENDER_UNTRACED;
		e->sender_cgroup = 0;
		e->sender_pid = e->sender_tid = e->sender_uid = e->sender_netns = 0;
		__builtin_memset(e->sender_comm, 0, sizeof(e->sender_comm));
		e->origin_ns = 0;
		e->sock_ino = 0;
		return NULL;
	}
	e->sender = SENDER_LOCAL;
	e->origin_ns = si->ts;
	e->sock_ino = si->ino;
	e->sender_cgroup = si->cgroup;
	e->sender_pid = si->pid;
	e->sender_tid = si->tid;
	e->sender_uid = si->uid;
	e->sender_netns = si->netns;
	__builtin_memcpy(e->sender_comm, si->comm, sizeof(e->sender_comm));
	return si;
}

#include "chain.h"
#include "ratelimit.h"

static __always_inline void clear_chain_fields(struct event *e)
{
	e->chain = e->origin_ns = e->sock_ino = 0;
	e->fd = e->syscall = -1;
	e->err = 0;
	e->outcome = OUT_NONE;
	e->_pad2[0] = e->_pad2[1] = e->_pad2[2] = 0;
}

/* Fills the datagram part of an event from a skb in the UDP receive path
 * (network and transport headers are set): addresses, ports, length, family,
 * and the receiving device's namespace. Returns false for anything but UDP
 * proper: TCP and UDP-Lite share the NO_SOCKET reason, not the counter.
 * The costlier parts, for wanted datagrams only, are in finish_draft. */
static __always_inline bool draft(struct sk_buff *skb, unsigned char *head, struct event *e, __u16 *ipid,
				  bool check_csum6, bool btf)
{
	__u16 nh = KREAD(btf, skb, network_header);
	__u16 th = KREAD(btf, skb, transport_header);
	__u16 proto = bpf_ntohs(KREAD(btf, skb, protocol));
	struct udphdr uh;

	if (proto == ETH_P_IP) {
		struct ip4_udp h;

		if (read_ip4_udp(&h, head + nh, head + th))
			return false;
		if (h.ip.protocol != IPPROTO_UDP)
			return false;
		__builtin_memset(e->saddr, 0, sizeof(e->saddr) + sizeof(e->daddr));
		__builtin_memcpy(e->saddr, &h.ip.saddr, 4);
		__builtin_memcpy(e->daddr, &h.ip.daddr, 4);
		e->family = 4;
		*ipid = bpf_ntohs(h.ip.id);
		uh = h.uh;
	} else if (proto == ETH_P_IPV6) {
		struct inet6_skb_parm *cb = (void *)&skb->cb;
		__u16 nhoff = BPF_CORE_READ(cb, nhoff);
		__u8 nexthdr;

		/* After extension headers, IP6CB(skb)->nhoff is the offset of
		 * the next-header byte that named this transport protocol. */
		if (bpf_probe_read_kernel(&nexthdr, 1, head + nh + nhoff))
			return false;
		if (nexthdr != IPPROTO_UDP)
			return false;
		/* saddr and daddr are neighbours in both structs. */
		if (bpf_probe_read_kernel(e->saddr, 32, head + nh + offsetof(struct ipv6hdr, saddr)))
			return false;
		if (bpf_probe_read_kernel(&uh, sizeof(uh), head + th))
			return false;
		e->family = 6;
		*ipid = 0;
	} else {
		return false;
	}
	if (check_csum6 && e->family == 6 && !udp6_checksum_passed(skb, uh.check))
		return false;
	e->sport = bpf_ntohs(uh.source);
	e->dport = bpf_ntohs(uh.dest);
	e->ulen = bpf_ntohs(uh.len);
	e->netns = btf ? skb->dev->nd_net.net->ns.inum : BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	e->kind = KIND_NOPORT;
	e->icmp = ICMP_UNKNOWN;
	e->_pad[0] = e->_pad[1] = 0;
	return true;
}

/* For a datagram the tuple filters want: its chain id (streaming only: top
 * has no chains) and its local sender. */
static __always_inline void finish_draft(struct sk_buff *skb, unsigned char *head, struct event *e, __u16 ipid,
					 bool btf)
{
	__u16 th = KREAD(btf, skb, transport_header);

	clear_chain_fields(e);
	if (stream)
		set_chain(e, ipid, head + th + sizeof(struct udphdr),
			  (long)KREAD(btf, skb, tail) - th - (long)sizeof(struct udphdr));
	find_sender(e);
}

/* With --netns, the namespaces whose no-port path matters: the traced one
 * and the one the summary counts (the same, unless set apart). */
static __always_inline bool traced_netns(__u32 ns)
{
	return ns == target_netns || ns == stats_netns;
}

/* The user's filters on a datagram's family, ports and addresses: what is
 * known before its sender is looked up. */
static __always_inline bool tuple_wanted(__u8 family, __u16 sport, __u16 dport, const __u8 *saddr,
					 const __u8 *daddr)
{
	if (want_family && family != want_family)
		return false;
	if (filter_dport && !port_in(&dport_set, dport))
		return false;
	if (filter_sport && !port_in(&sport_set, sport))
		return false;
	if (filter_src && !addr_in(&src_set, family, saddr))
		return false;
	if (filter_dst && !addr_in(&dst_set, family, daddr))
		return false;
	return true;
}

/* ... and its namespace. */
static __always_inline bool cheap_wanted(const struct event *e)
{
	if (target_netns && e->netns != target_netns)
		return false;
	return tuple_wanted(e->family, e->sport, e->dport, e->saddr, e->daddr);
}

/* The rest of the user's filters, once the sender is known. */
static __always_inline bool task_wanted(const struct event *e)
{
	/* A chain belongs to its sender and, for the syscall that got the
	 * error, to the process that made it. */
	if (filter_pid && !bpf_map_lookup_elem(&pid_set, &e->sender_pid) &&
	    !(e->kind == KIND_SYSCALL && bpf_map_lookup_elem(&pid_set, &e->pid)))
		return false;
	if (filter_comm && !bpf_map_lookup_elem(&comm_set, e->sender_comm) &&
	    !(e->kind == KIND_SYSCALL && bpf_map_lookup_elem(&comm_set, e->comm)))
		return false;
	return true;
}

/* The user's filters, applied before anything is queued. */
static __always_inline bool wanted(const struct event *e)
{
	return cheap_wanted(e) && task_wanted(e);
}

/* The rest of an event, read only for events that will be queued: time,
 * device, and the task running the receive path. */
static __always_inline void fill_context(struct sk_buff *skb, struct event *e, bool btf)
{
	struct net_device *dev = KREAD(btf, skb, dev);
	__u64 id = bpf_get_current_pid_tgid();

	e->ts_ns = bpf_ktime_get_boot_ns();
	e->ifindex = KREAD(btf, dev, ifindex);
	bpf_core_read_str(e->ifname, sizeof(e->ifname), &dev->name);
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* Queues e; ns says it counts for the summary's namespace. */
static __always_inline void submit(const struct event *e, bool ns)
{
	struct event *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);

	if (!r) {
		count(CNT_LOST);
		if (ns)
			count(CNT_LOST_NS);
		return;
	}
	__builtin_memcpy(r, e, sizeof(*r));
	bpf_ringbuf_submit(r, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				 BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	count(CNT_SUBMITTED);
}

static __always_inline void aggregate_event(const struct event *e)
{
	struct agg_key k = { .family = e->family, .sender = e->sender, .dport = e->dport, .netns = e->netns };
	struct agg_val zero = {}, *v;

	__builtin_memcpy(k.saddr, e->saddr, sizeof(k.saddr));
	if (e->sender == SENDER_LOCAL)
		__builtin_memcpy(k.comm, e->sender_comm, sizeof(k.comm));
	v = bpf_map_lookup_elem(&agg, &k);
	if (!v) {
		/* -E2BIG when full; -EEXIST when another CPU just added it. */
		if (bpf_map_update_elem(&agg, &k, &zero, BPF_NOEXIST) == -E2BIG_) {
			count(CNT_AGG_OVERFLOW);
			return;
		}
		v = bpf_map_lookup_elem(&agg, &k);
		if (!v) {
			count(CNT_AGG_OVERFLOW);
			return;
		}
	}
	__sync_fetch_and_add(&v->datagrams, 1);
	if (e->icmp == ICMP_SENT)
		__sync_fetch_and_add(&v->sent, 1);
	else if (e->icmp == ICMP_RATELIMITED_GLOBAL || e->icmp == ICMP_RATELIMITED_HOST)
		__sync_fetch_and_add(&v->ratelimited, 1);
	else if (e->icmp == ICMP_NOT_SENT)
		__sync_fetch_and_add(&v->notsent, 1);
	else
		__sync_fetch_and_add(&v->unknown, 1);
}

/* Counts the no-port datagram for the summary (before filters, in
 * stats_netns) and, if the filters wanted it, aggregates it (top) or queues
 * its event. */
static __always_inline void account_and_submit(const struct event *e, bool want)
{
	bool ns = e->netns == stats_netns;

	if (ns) {
		count(e->family == 4 ? CNT_NOPORT4_NS : CNT_NOPORT6_NS);
		if (e->icmp == ICMP_SENT)
			count(e->family == 4 ? CNT_ICMP4_SENT_NS : CNT_ICMP6_SENT_NS);
		if (e->icmp == ICMP_RATELIMITED_GLOBAL || e->icmp == ICMP_RATELIMITED_HOST)
			count(e->family == 4 ? CNT_RATELIMIT4_NS : CNT_RATELIMIT6_NS);
	}
	if (!want)
		return;
	if (ns)
		count(CNT_PASSED_NS);
	if (aggregate)
		aggregate_event(e);
	if (stream)
		submit(e, ns);
}

static __always_inline bool eq16(const __u8 *a, const __u8 *b)
{
	__u8 diff = 0;

#pragma unroll
	for (int i = 0; i < 16; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static __always_inline __u8 icmp_verdict(struct sk_buff *skb, const struct event *d)
{
	__u32 key = d->family == 4 ? 0 : 1;
	bool hooked = d->family == 4 ? have_icmp4_hook : have_icmp6_hook;
	struct icmp_mark *m = bpf_map_lookup_elem(&icmp_marks, &key);
	bool hit = false;
	__u8 rl;

	if (hooked && m && m->ts && bpf_ktime_get_ns() - m->ts < ICMP_MARK_MAX_AGE_NS) {
		if (d->family == 4)
			hit = m->skb == (__u64)skb;
		else
			hit = m->sport == d->sport && m->dport == d->dport &&
			      eq16(m->saddr, d->saddr) && eq16(m->daddr, d->daddr);
	}
	if (hit) {
		/* The reply's hook already moved the baseline past it. */
		m->ts = 0;
		return ICMP_SENT;
	}
	rl = ratelimited_since_baseline(skb->dev->nd_net.net, d->family, true);
	if (rl)
		return rl;
	/* icmp:icmp_send fires after the rate limits: silence there is a
	 * verdict. For IPv6 we only see the reply reach a device queue; a reply
	 * waiting for neighbour resolution would be missed, so say unknown. */
	return d->family == 4 && hooked ? ICMP_NOT_SENT : ICMP_UNKNOWN;
}

/* ---- tracepoint backend ---- */

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb, struct sk_buff *skb, void *location, int reason)
{
	/* The enum is renumbered across kernels: never hard-code it. */
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		return 0;

	unsigned char *head;
	struct event e;
	__u16 ipid;
	bool want;

	/* Another namespace's drop: neither traced nor counted. */
	if (target_netns && !traced_netns(skb->dev->nd_net.net->ns.inum))
		return 0;
	head = BPF_CORE_READ(skb, head);
	if (!draft(skb, head, &e, &ipid, true, true))
		return 0;
	e.icmp = icmp_verdict(skb, &e);
	want = cheap_wanted(&e);
	if (want) {
		finish_draft(skb, head, &e, ipid, true);
		want = task_wanted(&e);
	}
	if (want && stream)
		fill_context(skb, &e, true);
	account_and_submit(&e, want);
	return 0;
}

SEC("tp_btf/icmp_send")
int BPF_PROG(icmp_send, struct sk_buff *skb, int type, int code)
{
	__u32 key = 0;
	struct icmp_mark *m;

	if (type != ICMP_DEST_UNREACH_ || code != ICMP_PORT_UNREACH_)
		return 0;
	/* Another namespace's reply: its drop is neither traced nor counted. */
	if (target_netns && !traced_netns(skb->dev->nd_net.net->ns.inum))
		return 0;
	m = bpf_map_lookup_elem(&icmp_marks, &key);
	if (m) {
		m->skb = (__u64)skb;
		m->ts = bpf_ktime_get_ns();
	}
	/* This reply passed the limits: counters so far are not its drop's. */
	ratelimited_since_baseline(skb->dev->nd_net.net, 4, true);
	return 0;
}

#include "task.h"

/* ICMPv6 has no tracepoint: recognise the port-unreachable reply when it is
 * queued to a device, and park its quoted tuple for the drop that follows. */
static __always_inline void mark_icmp6_reply(struct net *net, unsigned char *l4, bool btf)
{
	struct {
		__u8 type;
		__u8 code;
		__u8 _unused[6];
		struct ipv6hdr ip6; /* the quoted datagram */
		struct udphdr uh;
	} q;
	__u32 key = 1;
	struct icmp_mark *m;

	if (bpf_probe_read_kernel(&q, sizeof(q), l4))
		return;
	if (q.type != ICMPV6_DEST_UNREACH_ || q.code != ICMPV6_PORT_UNREACH_)
		return;
	m = bpf_map_lookup_elem(&icmp_marks, &key);
	if (!m)
		return;
	__builtin_memcpy(m->saddr, &q.ip6.saddr, 16);
	__builtin_memcpy(m->daddr, &q.ip6.daddr, 16);
	m->sport = bpf_ntohs(q.uh.source);
	m->dport = bpf_ntohs(q.uh.dest);
	m->ts = bpf_ktime_get_ns();
	ratelimited_since_baseline(net, 6, btf);
}

#define IFF_LOOPBACK_ 0x8

/* With --netns X, a packet queued to another namespace's loopback can never
 * reach X: it is spared every other read. A veth or a physical device may
 * lead to X (a sender in a sibling namespace), so those go on. */
static __always_inline bool dev_may_reach_target(struct sk_buff *skb, bool btf)
{
	struct net_device *dev;
	__u32 ns;

	if (!target_netns)
		return true;
	dev = KREAD(btf, skb, dev);
	ns = btf ? dev->nd_net.net->ns.inum : BPF_CORE_READ(dev, nd_net.net, ns.inum);
	if (traced_netns(ns))
		return true;
	return !(KREAD(btf, dev, flags) & IFF_LOOPBACK_);
}

/* A packet from a local socket is queued to a device. Runs for every
 * transmitted packet of the host, so it leaves as early as it can: another
 * namespace's loopback under --netns, anything but IP from a local UDP (or,
 * for the IPv6 verdict, ICMPv6) socket. A UDP datagram names its sender,
 * once per socket and source address: a socket already recorded for the
 * current thread costs one lookup. ICMPv6 port-unreachable replies are
 * parked for the tracepoint backend's verdict. */
static __always_inline void on_dev_queue(struct sk_buff *skb, bool btf)
{
	__u16 proto;
	struct flow_key k = {};
	struct sender_info si, *old;
	struct sock *sk;
	unsigned char *head;
	struct udphdr uh;
	__u8 daddr[16] = {};
	__u16 nh, th, dport;
	__u64 id;

	if (!dev_may_reach_target(skb, btf))
		return;
	proto = bpf_ntohs(KREAD(btf, skb, protocol));
	if (proto != ETH_P_IP && proto != ETH_P_IPV6)
		return;
	sk = KREAD(btf, skb, sk);
	if (!sk)
		return;
	/* Only UDP sockets send datagrams to record, and only ICMPv6 ones
	 * replies to mark: one read spares TCP and the rest the header reads. */
	switch (KREAD(btf, sk, sk_protocol)) {
	case IPPROTO_UDP:
		break;
	case IPPROTO_ICMPV6_:
		if (proto == ETH_P_IPV6 && have_icmp6_hook)
			break;
		return;
	default:
		return;
	}
	head = BPF_CORE_READ(skb, head);
	nh = KREAD(btf, skb, network_header);
	th = KREAD(btf, skb, transport_header);
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return;
		if (ip6.nexthdr == IPPROTO_ICMPV6_ && have_icmp6_hook) {
			mark_icmp6_reply(btf ? skb->dev->nd_net.net : BPF_CORE_READ(skb, dev, nd_net.net),
					 head + nh + sizeof(struct ipv6hdr), btf);
			return;
		}
		if (ip6.nexthdr != IPPROTO_UDP)
			return;
		__builtin_memcpy(k.saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
		k.family = 6;
		if (bpf_probe_read_kernel(&uh, sizeof(uh), head + th))
			return;
	} else {
		struct ip4_udp h;

		if (read_ip4_udp(&h, head + nh, head + th))
			return;
		/* Later fragments carry no UDP header. */
		if (h.ip.protocol != IPPROTO_UDP || (h.ip.frag_off & bpf_htons(0x1fff)))
			return;
		__builtin_memcpy(k.saddr, &h.ip.saddr, 4);
		__builtin_memcpy(daddr, &h.ip.daddr, 4);
		k.family = 4;
		uh = h.uh;
	}
	k.sport = bpf_ntohs(uh.source);
	dport = bpf_ntohs(uh.dest);
	/* A datagram the filters reject is never looked up: do not record it. */
	if (!tuple_wanted(k.family, k.sport, dport, k.saddr, daddr))
		return;
	/* The same thread sending from the same socket again (a client's
	 * next datagram, a server's answer to another peer) is known already:
	 * skip the costlier checks and the update. */
	id = bpf_get_current_pid_tgid();
	old = bpf_map_lookup_elem(&senders, &k);
	if (old && old->pid && old->tid == (__u32)id && old->sk == (__u64)sk) {
		old->ts = bpf_ktime_get_boot_ns();
		return;
	}
	__builtin_memset(&si, 0, sizeof(si));
	si.ts = bpf_ktime_get_boot_ns();
	si.sk = (__u64)sk;
	si.ino = sock_ino(sk);
	si.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	si.uid = BPF_CORE_READ(sk, sk_uid.val);
	if (sent_by_current(sk)) {
		si.pid = id >> 32;
		si.tid = (__u32)id;
		si.cgroup = bpf_get_current_cgroup_id();
		bpf_get_current_comm(si.comm, sizeof(si.comm));
	}
	bpf_map_update_elem(&senders, &k, &si, BPF_ANY);
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(net_dev_queue, struct sk_buff *skb)
{
	on_dev_queue(skb, true);
	return 0;
}

/* The same for the fentry and kprobe backends: a raw tracepoint needs
 * neither BTF trampolines nor drop reasons (4.17+). */
SEC("raw_tp/net_dev_queue")
int BPF_PROG(raw_net_dev_queue, struct sk_buff *skb)
{
	on_dev_queue(skb, false);
	return 0;
}

/* ---- fentry and kprobe backends ---- */

enum window_state {
	WIN_IDLE = 0,
	WIN_OPEN,   /* inside __udp{4,6}_lib_rcv for skb */
	WIN_NOPORT, /* ... which built a port-unreachable for it */
};

/* One per CPU and family: the receive call in progress and, once it turns
 * out to be a no-port datagram, its event. The skb may be freed before the
 * window closes, so everything is read when the reply is built. */
struct rcv_window {
	__u64 skb;
	__u8 state;
	__u8 want;
	__u8 sent;
	__u8 _pad[5];
	__u64 net;         /* the receiving namespace (struct net *) */
	struct rl_snap rl; /* its rate-limit counters as the reply was started */
	struct event ev;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* 0: IPv4, 1: IPv6 */
	__type(key, __u32);
	__type(value, struct rcv_window);
} windows SEC(".maps");

static __always_inline void rcv_enter(__u32 fam, struct sk_buff *skb)
{
	struct rcv_window *w = bpf_map_lookup_elem(&windows, &fam);

	if (w) {
		w->skb = (__u64)skb;
		w->state = WIN_OPEN;
	}
}

static __always_inline void unreach_built(__u32 fam, struct sk_buff *skb, bool btf)
{
	unsigned char *head;
	__u16 ipid;

	struct rcv_window *w = bpf_map_lookup_elem(&windows, &fam);

	/* Only a reply to the datagram being received: netfilter's REJECT
	 * also sends port-unreachable, but before UDP ever sees the skb. */
	if (!w || w->state != WIN_OPEN || w->skb != (__u64)skb)
		return;
	head = BPF_CORE_READ(skb, head);
	if (!draft(skb, head, &w->ev, &ipid, false, btf)) {
		w->state = WIN_IDLE;
		return;
	}
	w->want = cheap_wanted(&w->ev);
	if (w->want) {
		finish_draft(skb, head, &w->ev, ipid, btf);
		w->want = task_wanted(&w->ev);
	}
	if (w->want && stream)
		fill_context(skb, &w->ev, btf);
	w->net = (__u64)(btf ? skb->dev->nd_net.net : BPF_CORE_READ(skb, dev, nd_net.net));
	read_ratelimits((struct net *)w->net, w->ev.family, &w->rl);
	w->sent = 0;
	w->state = WIN_NOPORT;
}

/* The reply's payload is being copied: it passed the rate limits. */
static __always_inline void reply_copied(__u32 fam, __u64 orig_skb)
{
	struct rcv_window *w = bpf_map_lookup_elem(&windows, &fam);

	if (w && w->state == WIN_NOPORT && w->skb == orig_skb)
		w->sent = 1;
}

static __always_inline void rcv_exit(__u32 fam)
{
	struct rcv_window *w = bpf_map_lookup_elem(&windows, &fam);

	if (!w)
		return;
	if (w->state == WIN_NOPORT) {
		w->ev.icmp = ICMP_SENT;
		if (!w->sent) {
			struct rl_snap now;

			read_ratelimits((struct net *)w->net, w->ev.family, &now);
			w->ev.icmp = ratelimit_verdict(&w->rl, &now, w->ev.family) ?: ICMP_NOT_SENT;
		}
		account_and_submit(&w->ev, w->want);
	}
	w->state = WIN_IDLE;
	w->skb = 0;
}

static __always_inline void icmp4_send(struct sk_buff *skb, int type, int code, bool btf)
{
	if (type == ICMP_DEST_UNREACH_ && code == ICMP_PORT_UNREACH_)
		unreach_built(0, skb, btf);
}

static __always_inline void icmp6_send_(struct sk_buff *skb, int type, int code, bool btf)
{
	if (type == ICMPV6_DEST_UNREACH_ && code == ICMPV6_PORT_UNREACH_)
		unreach_built(1, skb, btf);
}

/* icmp_glue_bits(from = struct icmp_bxm *), icmpv6_getfrag(from = struct
 * icmpv6_msg *): both start with the offending skb. */
static __always_inline void glue4(void *from)
{
	reply_copied(0, (__u64)BPF_CORE_READ((struct icmp_bxm *)from, skb));
}

static __always_inline void glue6(void *from)
{
	reply_copied(1, (__u64)BPF_CORE_READ((struct icmpv6_msg *)from, skb));
}

SEC("fentry/__udp4_lib_rcv")
int BPF_PROG(fe_udp4_rcv, struct sk_buff *skb)
{
	rcv_enter(0, skb);
	return 0;
}

SEC("fexit/__udp4_lib_rcv")
int BPF_PROG(fx_udp4_rcv)
{
	rcv_exit(0);
	return 0;
}

SEC("fentry/__udp6_lib_rcv")
int BPF_PROG(fe_udp6_rcv, struct sk_buff *skb)
{
	rcv_enter(1, skb);
	return 0;
}

SEC("fexit/__udp6_lib_rcv")
int BPF_PROG(fx_udp6_rcv)
{
	rcv_exit(1);
	return 0;
}

SEC("fentry/__icmp_send")
int BPF_PROG(fe_icmp_send, struct sk_buff *skb, int type, int code)
{
	icmp4_send(skb, type, code, true);
	return 0;
}

SEC("fentry/icmp6_send")
int BPF_PROG(fe_icmp6_send, struct sk_buff *skb, __u8 type, __u8 code)
{
	icmp6_send_(skb, type, code, true);
	return 0;
}

SEC("fentry/icmp_glue_bits")
int BPF_PROG(fe_icmp_glue_bits, void *from)
{
	glue4(from);
	return 0;
}

SEC("fentry/icmpv6_getfrag")
int BPF_PROG(fe_icmpv6_getfrag, void *from)
{
	glue6(from);
	return 0;
}

SEC("kprobe/__udp4_lib_rcv")
int BPF_KPROBE(kp_udp4_rcv, struct sk_buff *skb)
{
	rcv_enter(0, skb);
	return 0;
}

SEC("kretprobe/__udp4_lib_rcv")
int BPF_KRETPROBE(kr_udp4_rcv)
{
	rcv_exit(0);
	return 0;
}

SEC("kprobe/__udp6_lib_rcv")
int BPF_KPROBE(kp_udp6_rcv, struct sk_buff *skb)
{
	rcv_enter(1, skb);
	return 0;
}

SEC("kretprobe/__udp6_lib_rcv")
int BPF_KRETPROBE(kr_udp6_rcv)
{
	rcv_exit(1);
	return 0;
}

SEC("kprobe/__icmp_send")
int BPF_KPROBE(kp_icmp_send, struct sk_buff *skb, int type, int code)
{
	icmp4_send(skb, type, code, false);
	return 0;
}

SEC("kprobe/icmp6_send")
int BPF_KPROBE(kp_icmp6_send, struct sk_buff *skb, __u8 type, __u8 code)
{
	icmp6_send_(skb, type, code, false);
	return 0;
}

SEC("kprobe/icmp_glue_bits")
int BPF_KPROBE(kp_icmp_glue_bits, void *from)
{
	glue4(from);
	return 0;
}

SEC("kprobe/icmpv6_getfrag")
int BPF_KPROBE(kp_icmpv6_getfrag, void *from)
{
	glue6(from);
	return 0;
}

#include "delivery.h"
