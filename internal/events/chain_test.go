package events

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// refChainKey is struct chain_key of bpf/noport.c, padding spelled out, for
// encoding/binary: 1+1+2+2+2+2+6+16+16+8 = 56 bytes.
type refChainKey struct {
	Family       uint8
	Pad          uint8
	IPID         uint16
	SPort, DPort uint16
	ULen         uint16
	Pad2         [6]byte
	Saddr, Daddr [16]byte
	Payload      [8]byte
}

// bytes lays k out as the BPF programs (x86-64, little endian) see it.
func (k refChainKey) bytes(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, k); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 56 {
		t.Fatalf("chain key is %d bytes, want 56", buf.Len())
	}
	return buf.Bytes()
}

// refChainHash is chain_hash of bpf/noport.c over the bytes of a key,
// written out again from the C.
func refChainHash(b []byte) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for i := range 7 {
		h ^= binary.LittleEndian.Uint64(b[8*i:])
		h *= 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	if h == 0 {
		return 1
	}
	return h
}

// payload8 returns s zero-padded to 8 bytes.
func payload8(s string) [8]byte {
	var p [8]byte
	copy(p[:], s)
	return p
}

func TestChainIDGolden(t *testing.T) {
	// The values that chain_hash, compiled from the C of bpf/noport.c
	// (gcc -O0, x86-64), returns for the same keys.
	tests := []struct {
		name string
		k    ChainKey
		want uint64
	}{
		{"loEvent's datagram", loChainKey(), 0xaa33a51c58da1f8d},
		{"remoteEvent's datagram", ChainKey{Family: FamilyIPv4, IPID: 4242,
			Src: netip.MustParseAddr("192.0.2.7"), Dst: netip.MustParseAddr("10.0.0.2"),
			SPort: 53124, DPort: 161, Len: 40,
			Payload: []byte{0x30, 0x26, 2, 1, 1, 4, 6, 'p', 'u', 'b'}}, 0x04283584c686943f},
		{"ipv6, one payload byte", ChainKey{Family: FamilyIPv6,
			Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("::1"),
			SPort: 5353, DPort: 53, Len: 9, Payload: []byte{0xab, 0xcd}}, 0x5d1e1f484f61777b},
		{"zero key", ChainKey{}, 0x6a91310bbd935ec6},
	}
	for _, tt := range tests {
		if got := ChainID(tt.k); got != tt.want {
			t.Errorf("%s: ChainID = %#016x, want %#016x", tt.name, got, tt.want)
		}
	}
	if e := loEvent(); e.Chain != ChainID(loChainKey()) {
		t.Errorf("loEvent's Chain %#x is not ChainID(loChainKey()) %#x", e.Chain, ChainID(loChainKey()))
	}
}

func TestChainIDLayout(t *testing.T) {
	tests := []struct {
		name string
		k    ChainKey
		ref  refChainKey
	}{
		{
			name: "ipv4: 4 address bytes, then zeros",
			k: ChainKey{Family: FamilyIPv4, IPID: 0x1234,
				Src: netip.MustParseAddr("10.1.2.3"), Dst: netip.MustParseAddr("192.0.2.255"),
				SPort: 0xabcd, DPort: 0x0102, Len: 16, Payload: []byte("01234567")},
			ref: refChainKey{Family: 4, IPID: 0x1234, SPort: 0xabcd, DPort: 0x0102, ULen: 16,
				Saddr: [16]byte{10, 1, 2, 3}, Daddr: [16]byte{192, 0, 2, 255},
				Payload: payload8("01234567")},
		},
		{
			name: "ipv6, v4-mapped kept in 16 bytes",
			k: ChainKey{Family: FamilyIPv6,
				Src: netip.MustParseAddr("::ffff:192.0.2.1"), Dst: netip.MustParseAddr("fe80::1:2:3:4"),
				SPort: 1, DPort: 65535, Len: 65535, Payload: []byte("0123456789abcdef")},
			ref: refChainKey{Family: 6, SPort: 1, DPort: 65535, ULen: 65535,
				Saddr: addr16("::ffff:192.0.2.1"), Daddr: addr16("fe80::1:2:3:4"),
				Payload: payload8("01234567")},
		},
		{
			name: "payload shorter than 8: zero-padded",
			k: ChainKey{Family: FamilyIPv4, IPID: 1,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 100, Payload: []byte("hi")},
			ref: refChainKey{Family: 4, IPID: 1, SPort: 40000, DPort: 9, ULen: 100,
				Saddr: addr16("127.0.0.1"), Daddr: addr16("127.0.0.1"), Payload: payload8("hi")},
		},
		{
			name: "the UDP length limits the payload",
			k: ChainKey{Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 11, Payload: []byte("hello, world")},
			ref: refChainKey{Family: 4, SPort: 40000, DPort: 9, ULen: 11,
				Saddr: addr16("127.0.0.1"), Daddr: addr16("127.0.0.1"), Payload: payload8("hel")},
		},
		{
			name: "length 8: no payload",
			k: ChainKey{Family: FamilyIPv6,
				Src: netip.MustParseAddr("::1"), Dst: netip.MustParseAddr("::1"),
				SPort: 40000, DPort: 9, Len: 8, Payload: []byte("junk")},
			ref: refChainKey{Family: 6, SPort: 40000, DPort: 9, ULen: 8,
				Saddr: addr16("::1"), Daddr: addr16("::1")},
		},
		{
			name: "length below 8 (a bogus header): no payload",
			k: ChainKey{Family: FamilyIPv4,
				Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"),
				SPort: 40000, DPort: 9, Len: 3, Payload: []byte("junk")},
			ref: refChainKey{Family: 4, SPort: 40000, DPort: 9, ULen: 3,
				Saddr: addr16("127.0.0.1"), Daddr: addr16("127.0.0.1")},
		},
		{
			name: "no payload given, invalid addresses as zeros",
			k:    ChainKey{Family: FamilyIPv4, IPID: 0xffff, Len: 1000},
			ref:  refChainKey{Family: 4, IPID: 0xffff, ULen: 1000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := refChainHash(tt.ref.bytes(t))
			if got := ChainID(tt.k); got != want {
				t.Errorf("ChainID = %#016x, want %#016x", got, want)
			}
		})
	}
}

func TestChainIDDistinguishes(t *testing.T) {
	// Each field of the key counts; bytes beyond the key do not.
	base := func() ChainKey {
		k := loChainKey()
		k.Payload = []byte("hello, world")
		k.Len = 20
		return k
	}
	id := ChainID(base())
	same := []func(*ChainKey){
		func(k *ChainKey) { k.Payload = []byte("hello, w") },          // the 8 bytes used
		func(k *ChainKey) { k.Payload = []byte("hello, wXXXXXXXXX") }, // bytes after them
	}
	for i, m := range same {
		k := base()
		m(&k)
		if got := ChainID(k); got != id {
			t.Errorf("same key %d: ChainID %#x, want %#x", i, got, id)
		}
	}
	differ := []func(*ChainKey){
		func(k *ChainKey) { k.Family = FamilyIPv6 },
		func(k *ChainKey) { k.IPID++ },
		func(k *ChainKey) { k.SPort++ },
		func(k *ChainKey) { k.DPort++ },
		func(k *ChainKey) { k.Len++ },
		func(k *ChainKey) { k.Src = netip.MustParseAddr("127.0.0.2") },
		func(k *ChainKey) { k.Dst = netip.MustParseAddr("127.0.0.2") },
		func(k *ChainKey) { k.Src = netip.MustParseAddr("::ffff:127.0.0.1") },
		func(k *ChainKey) { k.Payload = []byte("hello, W") },
		func(k *ChainKey) { k.Payload = []byte("hello, ") },
		func(k *ChainKey) { k.Src, k.Dst = k.Dst, netip.MustParseAddr("127.0.0.9") },
	}
	for i, m := range differ {
		k := base()
		m(&k)
		if got := ChainID(k); got == id {
			t.Errorf("changed key %d: ChainID unchanged %#x", i, got)
		}
	}
}

func TestChainIDNoAllocs(t *testing.T) {
	k4 := loChainKey()
	k6 := ChainKey{Family: FamilyIPv6, Src: netip.MustParseAddr("2001:db8::1"),
		Dst: netip.MustParseAddr("2001:db8::2"), SPort: 1, DPort: 2, Len: 100,
		Payload: bytes.Repeat([]byte{'x'}, 92)}
	var sink uint64
	allocs := testing.AllocsPerRun(1000, func() {
		sink ^= ChainID(k4) ^ ChainID(k6)
	})
	if allocs != 0 {
		t.Errorf("ChainID allocates %v times per call, want 0", allocs)
	}
	_ = sink
}

func TestSyscallName(t *testing.T) {
	tests := []struct {
		nr   int32
		want string
	}{
		{0, "read"},
		{1, "write"},
		{19, "readv"},
		{20, "writev"},
		{44, "sendto"},
		{45, "recvfrom"},
		{46, "sendmsg"},
		{47, "recvmsg"},
		{299, "recvmmsg"},
		{307, "sendmmsg"},
		{-1, "?"},
		{2, "syscall_2"},
		{999, "syscall_999"},
		{-2, "syscall_-2"},
		{-2147483648, "syscall_-2147483648"},
	}
	for _, tt := range tests {
		if got := SyscallName(tt.nr); got != tt.want {
			t.Errorf("SyscallName(%d) = %q, want %q", tt.nr, got, tt.want)
		}
		if got := string(appendSyscallName([]byte("x"), tt.nr)); got != "x"+tt.want {
			t.Errorf("appendSyscallName(%d) = %q, want %q", tt.nr, got, "x"+tt.want)
		}
	}
}

func BenchmarkChainID(b *testing.B) {
	k := loChainKey()
	b.ReportAllocs()
	for b.Loop() {
		ChainID(k)
	}
}
