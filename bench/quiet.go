package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// This machine is shared: other jobs boot kernels in QEMU, and other test
// runs load udptrace's own programs, which then run on the bench's flood too
// (a tracepoint program runs for every namespace's packets). The bench waits
// for such neighbours to go away before each flood, and redoes a flood they
// disturbed.

// maxAttempts is how often one flood is tried while disturbed.
const maxAttempts = 3

// disturbances lists what would distort a measurement now: qemu-system
// processes, and tracing BPF programs that were not loaded when the bench
// started (b.preexisting: tools that run all along, in every mode alike) and
// are not the bench's own tracers' (own: the one being measured; b.retired:
// those of tracers that have exited, which the kernel frees a little later).
func (b *bench) disturbances(own map[uint32]progStat) []string {
	out := qemuProcesses()
	for _, p := range foreignTracers(own) {
		if !b.preexisting[p.id] && !b.retired[p.id] {
			out = append(out, p.desc)
		}
	}
	return out
}

// describe shortens a list of disturbances for one line.
func describe(d []string) string {
	var qemu, progs []string
	for _, s := range d {
		if strings.Contains(s, "qemu-system") {
			qemu = append(qemu, s)
		} else {
			name, _, _ := strings.Cut(s, "(")
			if !slices.Contains(progs, name) {
				progs = append(progs, name)
			}
		}
	}
	var parts []string
	if len(qemu) > 0 {
		parts = append(parts, strings.Join(qemu, ", "))
	}
	if n := len(d) - len(qemu); n > 0 {
		parts = append(parts, fmt.Sprintf("%d tracing BPF programs of another process (%s)", n, strings.Join(progs, " ")))
	}
	return strings.Join(parts, "; ")
}

// waitQuiet waits, up to timeout, until nothing disturbs a measurement.
func (b *bench) waitQuiet(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var lastLog time.Time
	for {
		d := b.disturbances(nil)
		if len(d) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if timeout > 0 {
				logf("still busy after %s (%s); measuring anyway", timeout, describe(d))
			}
			return
		}
		if time.Since(lastLog) > 30*time.Second {
			logf("waiting for a quiet machine (up to %s): %s; load %s", time.Until(deadline).Round(time.Second), describe(d), loadavg())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// measure runs one flood under mode m once the machine is quiet, and again
// (maxAttempts in all) when a neighbour disturbed it.
func (b *bench) measure(ctx context.Context, m *mode, stats bool, quietTimeout time.Duration) runResult {
	var r runResult
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		b.waitQuiet(ctx, quietTimeout)
		r = b.runOnce(ctx, m, stats)
		r.attempts = attempt
		if r.err != nil || len(r.disturbed) == 0 || ctx.Err() != nil {
			return r
		}
		if attempt < maxAttempts {
			logf("%s: flood disturbed by %s; doing it again", m.label, describe(r.disturbed))
		}
	}
	return r
}
