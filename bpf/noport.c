// SPDX-License-Identifier: GPL-2.0-only
/*
 * The receive side: UDP datagrams the kernel counted in UDP_MIB_NOPORTS, and
 * whether it answered them with ICMP port-unreachable.
 *
 * __udp4_lib_rcv / __udp6_lib_rcv, when no socket matches:
 *     __UDP_INC_STATS(net, UDP_MIB_NOPORTS, ...);
 *     icmp_send(skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0);   (icmpv6_send)
 *     kfree_skb_reason(skb, SKB_DROP_REASON_NO_SOCKET);          (sk_skb_reason_drop)
 * all in one softirq on one CPU. The ICMP reply is therefore seen first and
 * parked in a per-CPU slot; the drop that follows picks it up.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "udptrace.h"

char LICENSE[] SEC("license") = "GPL";

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
const volatile bool have_icmp4_hook = false; /* icmp:icmp_send attached */
const volatile bool have_icmp6_hook = false; /* net:net_dev_queue attached */
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

/* Referenced so that bpf2go can emit these types for Go. */
const struct event *unused_event __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum icmp_verdict *unused_verdict __attribute__((unused));
const enum event_kind *unused_kind __attribute__((unused));

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

/* A parsed no-port datagram, before it becomes an event. */
struct datagram {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u16 ulen;
	__u8 family;
};

/* Reads the IP and UDP headers of a datagram in the UDP receive path (network
 * and transport headers are set). Returns false for anything but UDP proper:
 * TCP and UDP-Lite share the NO_SOCKET reason but not the Udp NoPorts counter. */
static __always_inline bool parse_datagram(struct sk_buff *skb, struct datagram *d)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	struct udphdr uh;

	if (proto == ETH_P_IP) {
		struct iphdr iph;

		if (bpf_probe_read_kernel(&iph, sizeof(iph), head + nh))
			return false;
		if (iph.protocol != IPPROTO_UDP)
			return false;
		__builtin_memcpy(d->saddr, &iph.saddr, 4);
		__builtin_memcpy(d->daddr, &iph.daddr, 4);
		d->family = 4;
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
		if (bpf_probe_read_kernel(d->saddr, 32,
					  head + nh + offsetof(struct ipv6hdr, saddr)))
			return false;
		d->family = 6;
	} else {
		return false;
	}
	if (bpf_probe_read_kernel(&uh, sizeof(uh), head + th))
		return false;
	if (d->family == 6 && !udp6_checksum_passed(skb, uh.check))
		return false;
	d->sport = bpf_ntohs(uh.source);
	d->dport = bpf_ntohs(uh.dest);
	d->ulen = bpf_ntohs(uh.len);
	return true;
}

static __always_inline bool eq16(const __u8 *a, const __u8 *b)
{
	__u8 diff = 0;

#pragma unroll
	for (int i = 0; i < 16; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

static __always_inline __u8 icmp_verdict(struct sk_buff *skb, const struct datagram *d)
{
	__u32 key = d->family == 4 ? 0 : 1;
	struct icmp_mark *m;
	bool hit = false;

	if (d->family == 4 && !have_icmp4_hook)
		return ICMP_UNKNOWN;
	if (d->family == 6 && !have_icmp6_hook)
		return ICMP_UNKNOWN;
	m = bpf_map_lookup_elem(&icmp_marks, &key);
	if (!m)
		return ICMP_UNKNOWN;
	if (m->ts && bpf_ktime_get_ns() - m->ts < ICMP_MARK_MAX_AGE_NS) {
		if (d->family == 4)
			hit = m->skb == (__u64)skb;
		else
			hit = m->sport == d->sport && m->dport == d->dport &&
			      eq16(m->saddr, d->saddr) && eq16(m->daddr, d->daddr);
	}
	if (hit) {
		m->ts = 0;
		return ICMP_SENT;
	}
	/* icmp:icmp_send fires after the rate limits: silence there is a
	 * verdict. For IPv6 we only see the reply reach a device queue; a reply
	 * waiting for neighbour resolution would be missed, so say unknown. */
	return d->family == 4 ? ICMP_NOT_SENT : ICMP_UNKNOWN;
}

static __always_inline int handle_noport(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u32 netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct datagram d = {};
	struct event *e;
	__u8 icmp;
	__u64 id;

	if (!parse_datagram(skb, &d))
		return 0;
	icmp = icmp_verdict(skb, &d);

	/* Counted before any filter, for the summary's reconciliation. */
	if (netns == stats_netns) {
		count(d.family == 4 ? CNT_NOPORT4_NS : CNT_NOPORT6_NS);
		if (icmp == ICMP_SENT)
			count(d.family == 4 ? CNT_ICMP4_SENT_NS : CNT_ICMP6_SENT_NS);
	}

	if (target_netns && netns != target_netns)
		return 0;
	if (want_family && d.family != want_family)
		return 0;
	if (filter_dport && !port_in(&dport_set, d.dport))
		return 0;
	if (filter_sport && !port_in(&sport_set, d.sport))
		return 0;
	if (filter_src && !addr_in(&src_set, d.family, d.saddr))
		return 0;
	if (filter_dst && !addr_in(&dst_set, d.family, d.daddr))
		return 0;
	if (netns == stats_netns)
		count(CNT_PASSED_NS);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_LOST);
		if (netns == stats_netns)
			count(CNT_LOST_NS);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(e->saddr, d.saddr, 16);
	__builtin_memcpy(e->daddr, d.daddr, 16);
	e->netns = netns;
	e->ifindex = BPF_CORE_READ(dev, ifindex);
	id = bpf_get_current_pid_tgid();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->sport = d.sport;
	e->dport = d.dport;
	e->ulen = d.ulen;
	e->family = d.family;
	e->icmp = icmp;
	e->kind = KIND_NOPORT;
	e->_pad[0] = e->_pad[1] = e->_pad[2] = 0;
	bpf_core_read_str(e->ifname, sizeof(e->ifname), &dev->name);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ?
				 BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	count(CNT_SUBMITTED);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb, struct sk_buff *skb, void *location, int reason)
{
	/* The enum is renumbered across kernels: never hard-code it. */
	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		return 0;
	return handle_noport(skb);
}

SEC("tp_btf/icmp_send")
int BPF_PROG(icmp_send, struct sk_buff *skb, int type, int code)
{
	__u32 key = 0;
	struct icmp_mark *m;

	if (type != ICMP_DEST_UNREACH_ || code != ICMP_PORT_UNREACH_)
		return 0;
	m = bpf_map_lookup_elem(&icmp_marks, &key);
	if (m) {
		m->skb = (__u64)skb;
		m->ts = bpf_ktime_get_ns();
	}
	return 0;
}

/* ICMPv6 has no tracepoint: recognise the port-unreachable reply when it is
 * queued to a device. Runs for every transmitted packet, so it bails out
 * after one field for anything that isn't IPv6. */
SEC("tp_btf/net_dev_queue")
int BPF_PROG(net_dev_queue, struct sk_buff *skb)
{
	struct {
		__u8 type;
		__u8 code;
		__u8 _unused[6];
		struct ipv6hdr ip6; /* the quoted datagram */
		struct udphdr uh;
	} q;
	unsigned char *head;
	__u16 nh;
	__u8 nexthdr;
	__u32 key = 1;
	struct icmp_mark *m;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return 0;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	if (bpf_probe_read_kernel(&nexthdr, 1, head + nh + offsetof(struct ipv6hdr, nexthdr)))
		return 0;
	if (nexthdr != IPPROTO_ICMPV6_)
		return 0;
	if (bpf_probe_read_kernel(&q, sizeof(q), head + nh + sizeof(struct ipv6hdr)))
		return 0;
	if (q.type != ICMPV6_DEST_UNREACH_ || q.code != ICMPV6_PORT_UNREACH_)
		return 0;
	m = bpf_map_lookup_elem(&icmp_marks, &key);
	if (!m)
		return 0;
	__builtin_memcpy(m->saddr, &q.ip6.saddr, 16);
	__builtin_memcpy(m->daddr, &q.ip6.daddr, 16);
	m->sport = bpf_ntohs(q.uh.source);
	m->dport = bpf_ntohs(q.uh.dest);
	m->ts = bpf_ktime_get_ns();
	return 0;
}
