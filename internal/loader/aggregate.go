package loader

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// AggKey is what udptrace top counts datagrams by.
type AggKey struct {
	Family uint8 // 4 or 6
	DPort  uint16
	Netns  uint32
	Src    netip.Addr
	Local  bool   // sent by a socket of this host
	Comm   string // the sender's name, when local and known
	raw    udptraceAggKey
}

// AggCounts are the datagrams of one key, since the key appeared, and what
// became of their ICMP replies.
type AggCounts struct {
	Datagrams, Sent, RateLimited, NotSent, Unknown uint64
}

// Aggregates reads every key counted so far (Config.Aggregate) into dst,
// cumulative values.
func (t *Tracer) Aggregates(dst map[AggKey]AggCounts) error {
	m := t.coll.Maps["agg"]
	var (
		k udptraceAggKey
		v udptraceAggVal
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		dst[aggKey(k)] = AggCounts{v.Datagrams, v.Sent, v.Ratelimited, v.Notsent, v.Unknown}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read the aggregation map: %w", err)
	}
	return nil
}

// DeleteAggregates removes keys (idle ones, to make room); a datagram
// counted between the last read and the delete is lost with its key.
func (t *Tracer) DeleteAggregates(keys []AggKey) error {
	m := t.coll.Maps["agg"]
	for _, k := range keys {
		if err := m.Delete(k.raw); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete from the aggregation map: %w", err)
		}
	}
	return nil
}

func aggKey(k udptraceAggKey) AggKey {
	out := AggKey{Family: k.Family, DPort: k.Dport, Netns: k.Netns, Local: k.Sender == 1, raw: k}
	if k.Family == 4 {
		out.Src = netip.AddrFrom4([4]byte(k.Saddr[:4]))
	} else {
		out.Src = netip.AddrFrom16(k.Saddr)
	}
	comm := make([]byte, len(k.Comm))
	for i, c := range k.Comm {
		comm[i] = byte(c)
	}
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	out.Comm = string(comm)
	return out
}
