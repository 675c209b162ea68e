package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
)

// wlResult is one workload's modes with their runs.
type wlResult struct {
	wl    workload
	modes []*mode
}

// modesFor copies the prepared modes for workload wl, without runs. The
// bpftrace one-liner counts no-port drops only, so it runs on noport alone:
// on other traffic it would measure a probe on kfree_skb, not udptrace's
// competitor.
func modesFor(proto []*mode, wl workload) []*mode {
	var out []*mode
	for _, p := range proto {
		if p.kind == kindBpftrace && wl.name != "noport" {
			continue
		}
		m := *p
		m.runs, m.stats = nil, nil
		m.noport = wl.name == "noport"
		m.expectNone = !m.noport || m.key == "other"
		out = append(out, &m)
	}
	return out
}

// peerCPU is the CPU of a workload's receiving (server) thread: another CPU
// than the sender's when there is one.
func peerCPU(cpu int) int {
	if runtime.NumCPU() < 2 {
		return cpu
	}
	if cpu == 0 {
		return 1
	}
	return 0
}

// runWorkloadModes runs b.wl under every mode: one untimed warm-up, then
// -repeats rounds that run each mode once (interleaved, so that drift on a
// shared machine spreads over every mode), then one bpf_stats run per
// traced mode.
func (b *bench) runWorkloadModes(ctx context.Context, o options, modes []*mode, notes *[]string) error {
	var active []*mode
	for _, m := range modes {
		if m.skip == "" {
			active = append(active, m)
		}
	}
	logf("%s: %d modes x %d runs of %d %s, interleaved; sender on CPU %d, receiver on CPU %d; netns %d",
		b.wl.name, len(active), o.repeats, b.n, b.wl.unit, b.cpu, b.peerCPU, b.ns.Inode)
	// Caches, the namespace's routes and the binary's pages warm for
	// every mode alike.
	var warm runResult
	if err := b.flood(ctx, &warm); err != nil {
		return fmt.Errorf("%s: warm-up: %w", b.wl.name, err)
	}
	for rep := range o.repeats {
		for _, m := range active {
			if m.skip != "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			r := b.measure(ctx, m, false, o.quietTimeout)
			if err := ctx.Err(); err != nil {
				return err
			}
			logRun(m, rep+1, o.repeats, r)
			if r.err != nil && !slices.ContainsFunc(m.runs, func(r runResult) bool { return r.err == nil }) {
				m.skip = r.err.Error()
				continue
			}
			m.runs = append(m.runs, r)
		}
	}
	if !o.bpfStats {
		return nil
	}
	for _, m := range active {
		if m.kind == kindBaseline || m.skip != "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r := b.measure(ctx, m, true, o.quietTimeout)
		logRun(m, 0, 0, r)
		if r.err == nil {
			m.stats = &r
		} else {
			*notes = append(*notes, fmt.Sprintf("%s, %s: the bpf_stats run failed: %v", b.wl.name, m.label, r.err))
		}
	}
	return nil
}
