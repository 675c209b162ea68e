package loader

import "runtime/debug"

// lowMemoryLoad makes loading collect garbage more often, and returns a
// function that restores the collector and gives the heap that loading used
// (the kernel's BTF parsed for CO-RE, the programs' specs) back to the
// system. Loading is a short burst of garbage; a tracer left running for
// days should keep none of it.
func lowMemoryLoad() (restore func()) {
	old := debug.SetGCPercent(20)
	return func() {
		debug.SetGCPercent(old)
		debug.FreeOSMemory()
	}
}
