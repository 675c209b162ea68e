package loader

// SenderRecords counts the sender records the BPF side holds (one per
// sending socket and source address), for tests of their cost model.
func SenderRecords(t *Tracer) (int, error) {
	var (
		k  udptraceFlowKey
		v  udptraceSenderInfo
		n  int
		it = t.coll.Maps["senders"].Iterate()
	)
	for it.Next(&k, &v) {
		n++
	}
	return n, it.Err()
}
