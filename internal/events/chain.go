package events

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// ChainKey is what identifies a datagram on every host it passes: nothing a
// router rewrites (no TTL, no checksum). ChainID hashes it.
type ChainKey struct {
	Family Family
	// IPID is the IPv4 header's identification field, as a number (the
	// header holds it in network byte order); 0 for IPv6.
	IPID uint16
	// Src and Dst are the datagram's addresses: 4-byte ones for IPv4 and
	// 16-byte ones for IPv6 (an IPv4-mapped address stays 16 bytes), as
	// in Event. The zero Addr counts as all zeros.
	Src, Dst netip.Addr
	// SPort and DPort are the UDP ports, Len the UDP length field (header
	// plus payload).
	SPort, DPort, Len uint16
	// Payload is the datagram's payload, or at least its start: ChainID
	// uses its first min(8, Len-8, len(Payload)) bytes.
	Payload []byte
}

// Constants of the chain hash (bpf/noport.c, chain_hash): the 64-bit golden
// ratio as the seed, and MurmurHash3's fmix64 multipliers.
const (
	chainSeed = 0x9e3779b97f4a7c15
	chainMul1 = 0xff51afd7ed558ccd
	chainMul2 = 0xc4ceb9fe1a85ec53
)

// chainKeySize is the size of struct chain_key in bpf/noport.c.
const chainKeySize = 56

// ChainID returns the chain id of the datagram k, as the BPF programs
// compute it for Event.Chain, bit for bit: the hash of struct chain_key (56
// bytes: family, a pad byte, IPv4 id, ports and length in the host's byte
// order, 6 pad bytes, both addresses in 16 bytes each, IPv4 ones followed by
// zeros, and up to 8 payload bytes, zero-padded) taken as seven 64-bit words
// in little-endian order (the BPF side runs on x86-64). It is never 0, which
// Event.Chain keeps for "no chain". It allocates nothing.
func ChainID(k ChainKey) uint64 {
	var key [chainKeySize]byte
	le := binary.LittleEndian
	key[0] = byte(k.Family)
	le.PutUint16(key[2:], k.IPID)
	le.PutUint16(key[4:], k.SPort)
	le.PutUint16(key[6:], k.DPort)
	le.PutUint16(key[8:], k.Len)
	putChainAddr(key[16:32], k.Src)
	putChainAddr(key[32:48], k.Dst)
	payload := 0 // bytes of payload, by the UDP length
	if k.Len > 8 {
		payload = int(k.Len) - 8
	}
	copy(key[48:], k.Payload[:min(8, payload, len(k.Payload))])

	h := uint64(chainSeed)
	for i := 0; i < chainKeySize; i += 8 {
		h ^= le.Uint64(key[i:])
		h *= chainMul1
		h ^= h >> 32
	}
	h ^= h >> 33
	h *= chainMul2
	h ^= h >> 33
	if h == 0 {
		return 1
	}
	return h
}

// putChainAddr writes a into the 16 bytes of dst as struct event and
// struct chain_key hold addresses: IPv4 in the first 4 bytes, zeros after.
func putChainAddr(dst []byte, a netip.Addr) {
	switch {
	case a.Is4():
		v4 := a.As4()
		copy(dst, v4[:])
	case a.Is6():
		v6 := a.As16()
		copy(dst, v6[:])
	}
}

// syscallName returns the name of the x86-64 system call nr if it is one
// of those that the BPF side reports (socket_io_call in bpf/noport.c: the
// calls that read from or write to a socket), or "".
func syscallName(nr int32) string {
	switch nr {
	case 0:
		return "read"
	case 1:
		return "write"
	case 19:
		return "readv"
	case 20:
		return "writev"
	case 44:
		return "sendto"
	case 45:
		return "recvfrom"
	case 46:
		return "sendmsg"
	case 47:
		return "recvmsg"
	case 299:
		return "recvmmsg"
	case 307:
		return "sendmmsg"
	}
	return ""
}

// SyscallName returns the name of the x86-64 system call number nr (as in
// Event.Syscall) for the calls that read from or write to a socket: "read",
// "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg",
// "recvmmsg" and "sendmmsg". It returns "?" for -1 (unknown) and
// "syscall_<nr>" for other numbers.
func SyscallName(nr int32) string {
	if name := syscallName(nr); name != "" {
		return name
	}
	if nr == -1 {
		return "?"
	}
	return "syscall_" + strconv.Itoa(int(nr))
}

// appendSyscallName appends SyscallName(nr) to b without allocating.
func appendSyscallName(b []byte, nr int32) []byte {
	if name := syscallName(nr); name != "" {
		return append(b, name...)
	}
	if nr == -1 {
		return append(b, '?')
	}
	b = append(b, "syscall_"...)
	return strconv.AppendInt(b, int64(nr), 10)
}
