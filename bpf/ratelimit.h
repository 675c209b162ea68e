/* SPDX-License-Identifier: GPL-2.0-only */
/* ICMP rate limits: which per-CPU MIB counter moved when a reply was
 * suppressed. Included by noport.c. */
#ifndef RATELIMIT_H
#define RATELIMIT_H

/* ---- ICMP rate limits ---- */

/* The kernel counts suppressed replies in per-CPU MIBs; the reply to a
 * datagram is decided on the CPU that received it, so a counter that moved
 * on this CPU between a snapshot and the verdict names the reason. */
struct rl_snap {
	__u64 global4;
	__u64 host4;
	__u64 host6;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_anchor SEC(".maps");

/* A pointer's value as a plain number, for arithmetic the verifier forbids
 * on map pointers (privileged programs may read pointers). */
static __always_inline __u64 ptr_value(const void *p)
{
	const void *volatile slot = p;
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (const void *)&slot);
	return v;
}

/* This CPU's per-CPU offset: where this CPU's copy of a per-CPU map value
 * lies relative to the map's per-CPU base pointer. Works on any kernel and
 * architecture, unlike the this_cpu_off / __per_cpu_offset symbols. */
static __always_inline __u64 this_cpu_offset(void)
{
	__u32 zero = 0;
	__u64 *mine = bpf_map_lookup_elem(&cpu_anchor, &zero);
	__u64 base = 0;

	if (!mine)
		return 0;
	/* A CPU's offset never changes: its slot keeps it once computed. */
	if (*mine)
		return *mine;
	if (bpf_probe_read_kernel(&base, sizeof(base),
				  (void *)(ptr_value(&cpu_anchor) + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	*mine = ptr_value(mine) - base;
	return *mine;
}

static __always_inline void read_ratelimits(struct net *net, __u8 family, struct rl_snap *s)
{
	__u64 off = this_cpu_offset(), mib;

	s->global4 = s->host4 = s->host6 = 0;
	if (!off)
		return;
	if (family == 4 && mib_rl_host4) {
		mib = (__u64)BPF_CORE_READ(net, mib.icmp_statistics) + off;
		/* Neighbours in the MIB (as in every kernel so far) and in
		 * rl_snap: one read for both. */
		if (mib_rl_global4 && mib_rl_host4 == mib_rl_global4 + 1) {
			bpf_probe_read_kernel(&s->global4, 16, (void *)(mib + mib_rl_global4 * 8));
			return;
		}
		bpf_probe_read_kernel(&s->host4, 8, (void *)(mib + mib_rl_host4 * 8));
		if (mib_rl_global4)
			bpf_probe_read_kernel(&s->global4, 8, (void *)(mib + mib_rl_global4 * 8));
	}
	if (family == 6 && mib_rl_host6 && bpf_core_field_exists(net->mib.icmpv6_statistics)) {
		mib = (__u64)BPF_CORE_READ(net, mib.icmpv6_statistics) + off;
		bpf_probe_read_kernel(&s->host6, 8, (void *)(mib + mib_rl_host6 * 8));
	}
}

/* 0, or the rate-limit verdict if a counter moved from before to now. */
static __always_inline __u8 ratelimit_verdict(const struct rl_snap *before, const struct rl_snap *now, __u8 family)
{
	if (family == 4) {
		if (now->host4 != before->host4)
			return ICMP_RATELIMITED_HOST;
		if (now->global4 != before->global4)
			return ICMP_RATELIMITED_GLOBAL;
	} else if (now->host6 != before->host6) {
		return ICMP_RATELIMITED_HOST;
	}
	return 0;
}

/* Tracepoint backend: no hook runs before the rate-limit checks, so each CPU
 * keeps, per namespace and family, the counters as last seen (at a reply
 * sent or a no-port drop); a counter that moved since says why the next
 * reply was suppressed. A reply suppressed in between for other traffic
 * (a netfilter REJECT, a forwarded packet's error) would be blamed on the
 * next drop; the fentry and kprobe backends read the counters just before
 * the reply is decided and have no such window. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* netns inode << 8 | family */
	__type(value, struct rl_snap);
} rl_baselines SEC(".maps");

/* Moves this CPU's baseline to now and returns the rate-limit verdict for
 * what moved since (0 when nothing did, or there was no baseline yet). */
static __always_inline __u8 ratelimited_since_baseline(struct net *net, __u8 family, bool btf)
{
	struct rl_snap now, *base;
	__u64 key;
	__u8 v;

	if (family == 4 ? !mib_rl_host4 : !mib_rl_host6)
		return 0;
	key = (__u64)KREAD(btf, net, ns.inum) << 8 | family;
	read_ratelimits(net, family, &now);
	base = bpf_map_lookup_elem(&rl_baselines, &key);
	if (!base) {
		bpf_map_update_elem(&rl_baselines, &key, &now, BPF_ANY);
		return 0;
	}
	v = ratelimit_verdict(base, &now, family);
	*base = now;
	return v;
}

/* Seeds this CPU's baselines for one namespace, so that even the first
 * suppressed reply there is named. Go runs it (BPF_PROG_TEST_RUN) at start
 * on every CPU: first on its own thread inside the namespace, which stores
 * the namespace's struct net in prime_net, then with BPF_F_TEST_RUN_ON_CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} prime_net SEC(".maps");

SEC("raw_tp/udptrace_prime")
int BPF_PROG(prime_ratelimits)
{
	__u32 zero = 0;
	__u64 *net = bpf_map_lookup_elem(&prime_net, &zero);
	struct task_struct *task;

	if (!net)
		return 0;
	if (!*net) {
		task = (struct task_struct *)bpf_get_current_task();
		*net = (__u64)BPF_CORE_READ(task, nsproxy, net_ns);
	}
	ratelimited_since_baseline((struct net *)*net, 4, false);
	ratelimited_since_baseline((struct net *)*net, 6, false);
	return 0;
}

#endif
