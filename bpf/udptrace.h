/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared between the BPF programs and Go (through bpf2go -type). */
#ifndef UDPTRACE_H
#define UDPTRACE_H

#define TASK_COMM_LEN 16
#define IFNAMSIZ 16

/* event.kind: the links of one datagram's chain, joined by event.chain. */
enum event_kind {
	KIND_NOPORT = 1,   /* a datagram counted in UDP_MIB_NOPORTS */
	KIND_DELIVERY = 2, /* the port-unreachable it caused reached this host */
	KIND_SYSCALL = 3,  /* a call on the sender's socket returned -ECONNREFUSED */
};

/* event.icmp: did the kernel send ICMP port-unreachable for it? */
enum icmp_verdict {
	ICMP_UNKNOWN = 0,
	ICMP_SENT = 1,
	ICMP_NOT_SENT = 2,           /* suppressed, and no rate-limit counter moved */
	ICMP_RATELIMITED_GLOBAL = 3, /* Icmp OutRateLimitGlobal (icmp_msgs_per_sec) */
	ICMP_RATELIMITED_HOST = 4,   /* Icmp OutRateLimitHost / Icmp6OutRateLimitHost (icmp_ratelimit) */
};

/* event.outcome of a KIND_DELIVERY: what __udp4_lib_err / __udp6_lib_err
 * did with the port-unreachable. */
enum delivery_outcome {
	OUT_NONE = 0,      /* not a delivery record */
	OUT_REFUSED = 1,   /* connected socket: sk_err = ECONNREFUSED */
	OUT_QUEUED = 2,    /* IP_RECVERR / IPV6_RECVERR: on the error queue (and sk_err set) */
	OUT_IGNORED = 3,   /* socket not connected and without IP_RECVERR */
	OUT_NO_SOCKET = 4, /* no socket had the datagram's ports any more */
	OUT_UNKNOWN = 5,   /* a socket was not seen sending: cannot tell ignored from closed */
};

/* Fixed layout, no implicit padding: Go decodes it by offset. */
struct event {
	__u64 ts_ns;  /* bpf_ktime_get_boot_ns() */
	__u8 saddr[16]; /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	__u32 netns;  /* inode of the receiving device's network namespace */
	__u32 ifindex;
	__u32 pid;    /* context task (tgid) that ran the receive path */
	__u32 tid;
	__u32 cpu;
	__u16 sport;  /* host byte order */
	__u16 dport;
	__u16 ulen;   /* UDP header's length field */
	__u8 family;  /* 4 or 6 */
	__u8 icmp;    /* enum icmp_verdict */
	__u8 kind;    /* enum event_kind */
	__u8 sender;  /* enum sender_kind */
	__u8 _pad[2];
	char ifname[IFNAMSIZ];
	char comm[TASK_COMM_LEN];
	/* The local socket that sent the datagram (sender == SENDER_LOCAL):
	 * its namespace and uid, and the task that sent it (pid 0 when the
	 * datagram left later, e.g. after neighbour resolution). */
	__u64 sender_cgroup;
	__u32 sender_pid;
	__u32 sender_tid;
	__u32 sender_uid;
	__u32 sender_netns;
	char sender_comm[TASK_COMM_LEN];
	/* The chain: chain is a hash of the datagram (addresses, ports, length,
	 * IPv4 id, first 8 payload bytes), the same on every record of it and
	 * on any host that sees it. origin_ns is when the sender sent it (0:
	 * not seen). sock_ino is the sending socket's inode (socket:[ino]). */
	__u64 chain;
	__u64 origin_ns;
	__u64 sock_ino;
	__s32 fd;      /* KIND_SYSCALL: the call's fd; -1 unknown */
	__s32 syscall; /* KIND_SYSCALL: x86-64 syscall number; -1 unknown */
	__s32 err;     /* KIND_DELIVERY, KIND_SYSCALL: the errno (ECONNREFUSED) */
	__u8 outcome;  /* enum delivery_outcome */
	__u8 _pad2[3];
};

/* event.sender */
enum sender_kind {
	SENDER_REMOTE = 0, /* no local socket was seen sending it */
	SENDER_LOCAL = 1,
	SENDER_UNTRACED = 2, /* --lean: senders are not recorded */
};

/* udptrace top: no-port datagrams counted in the kernel, per destination
 * port, namespace, source address and (local senders) sender name. */
struct agg_key {
	__u8 family;
	__u8 sender; /* enum sender_kind */
	__u16 dport;
	__u32 netns;
	__u8 saddr[16];
	char comm[TASK_COMM_LEN]; /* the sender's; empty when remote or unknown */
};

struct agg_val {
	__u64 datagrams;
	__u64 sent;        /* ICMP port-unreachable sent */
	__u64 ratelimited; /* suppressed by a rate limit */
	__u64 notsent;     /* not sent for another reason */
	__u64 unknown;     /* verdict unknown (see the README) */
};

/* Indexes of the per-CPU counters array. "_NS" counters only count
 * datagrams in stats_netns, the namespace whose /proc/net/snmp the
 * summary reconciles against; they are counted before any filter. */
enum counter {
	CNT_NOPORT4_NS = 0,  /* IPv4 no-port datagrams seen */
	CNT_NOPORT6_NS,      /* IPv6 no-port datagrams seen */
	CNT_ICMP4_SENT_NS,   /* of those, ICMP port-unreachable sent */
	CNT_ICMP6_SENT_NS,
	CNT_PASSED_NS,       /* passed the filters (events submitted + lost) */
	CNT_LOST_NS,         /* ring buffer full */
	CNT_LOST,            /* ring buffer full, any namespace */
	CNT_SUBMITTED,       /* events submitted, any namespace */
	CNT_RATELIMIT4_NS,   /* no-port datagrams whose ICMP was rate-limited */
	CNT_RATELIMIT6_NS,
	CNT_AGG_OVERFLOW,    /* datagrams not aggregated: the agg map was full */
	CNT_MAX,
};

#endif
