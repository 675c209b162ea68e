/* SPDX-License-Identifier: GPL-2.0-only */
/* Chain ids: one hash per datagram, the same on every record and host.
 * Included by noport.c. */
#ifndef CHAIN_H
#define CHAIN_H

/* ---- chain ids ---- */

/* What identifies one datagram on every host it touches: not the TTL, not
 * the checksum (offloads fill it late), nothing a router rewrites. */
struct chain_key {
	__u8 family;
	__u8 _pad;
	__u16 ipid; /* IPv4 identification; 0 for IPv6 */
	__u16 sport;
	__u16 dport;
	__u16 ulen;
	__u8 _pad2[6];
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 payload[8]; /* first payload bytes (a DNS id, ...), zero-padded */
};

/* A 64-bit mix of the key's words; internal/events.ChainID is the same
 * function in Go. 0 is kept for "no chain". */
static __always_inline __u64 chain_hash(const struct chain_key *k)
{
	__u64 h = 0x9e3779b97f4a7c15ULL, w;

#pragma unroll
	for (int i = 0; i < sizeof(*k) / 8; i++) {
		__builtin_memcpy(&w, (const char *)k + i * 8, 8); /* no aliasing */
		h ^= w;
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1;
}

/* Sets e->chain from e's tuple, the IPv4 id and the payload at p, of which
 * avail bytes are readable (linear data). */
static __always_inline void set_chain(struct event *e, __u16 ipid, const void *p, long avail)
{
	struct chain_key k = {};
	long n = e->ulen > 8 ? e->ulen - 8 : 0;

	if (n > avail)
		n = avail;
	/* A fixed-size read, then the bytes past the payload cleared: older
	 * verifiers reject a variable size here. */
	if (n > 0 && !bpf_probe_read_kernel(k.payload, sizeof(k.payload), p)) {
#pragma unroll
		for (int i = 0; i < sizeof(k.payload); i++)
			if (i >= n)
				k.payload[i] = 0;
	}
	k.family = e->family;
	k.ipid = ipid;
	k.sport = e->sport;
	k.dport = e->dport;
	k.ulen = e->ulen;
	__builtin_memcpy(k.saddr, e->saddr, 16);
	__builtin_memcpy(k.daddr, e->daddr, 16);
	e->chain = chain_hash(&k);
}

#endif
