package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// reportInput is everything the report prints.
type reportInput struct {
	opts         options
	results      []wlResult
	notes        []string
	date         time.Time
	version      string // udptrace --version
	goBench      map[string]goBench
	goBenchOrder []string
	goBenchErr   error
}

// summary is one mode's runs reduced to medians.
type summary struct {
	ok        bool
	runs      int
	rate      float64 // median datagrams/s
	cpuUS     float64 // median sender CPU µs per datagram
	spread    float64 // half the range of cpuUS, relative to the median
	tracerUS  float64 // median tracer CPU µs per datagram
	lost      int64   // the most lost in any run; -1 when unknown
	rssMiB    float64 // the highest peak RSS
	bpfNS     float64 // BPF ns per datagram, from the bpf_stats run; -1 when not measured
	countsOK  bool    // every run: the kernel dropped every datagram sent (noport), or none (other workloads)
	seenOK    bool    // every run: the tracer saw at least every datagram (udptrace: exactly); expectNone: saw and printed nothing
	seenKnown bool
	deliverOK bool   // every run: the receiving end got every unit sent (not noport)
	rcvbufErr uint64 // the most Udp RcvbufErrors of any run
}

func summarize(m *mode) summary {
	s := summary{lost: 0, bpfNS: -1, countsOK: true, seenOK: true, seenKnown: true, deliverOK: true}
	var rates, cpus, tracers []float64
	for _, r := range m.runs {
		if r.err != nil {
			continue
		}
		rates = append(rates, r.rate)
		cpus = append(cpus, r.cpuUS)
		tracers = append(tracers, r.tracerUS)
		s.rssMiB = max(s.rssMiB, r.rssMiB)
		if r.lost < 0 || s.lost < 0 {
			s.lost = -1
		} else {
			s.lost = max(s.lost, r.lost)
		}
		if (m.noport && r.noPorts != r.sent) || (!m.noport && r.noPorts != 0) {
			s.countsOK = false
		}
		if !m.noport && r.received != r.units {
			s.deliverOK = false
		}
		s.rcvbufErr = max(s.rcvbufErr, r.rcvbufErr)
		switch {
		case r.seen < 0:
			s.seenKnown = false
		case m.expectNone && m.kind == kindUdptrace:
			if r.seen != 0 || r.events > 0 {
				s.seenOK = false
			}
		case m.kind == kindUdptrace && uint64(r.seen) != r.noPorts,
			m.kind == kindBpftrace && uint64(r.seen) < r.noPorts:
			s.seenOK = false
		}
	}
	s.runs = len(cpus)
	if s.runs == 0 {
		return s
	}
	s.ok = true
	s.rate, s.cpuUS, s.tracerUS = median(rates), median(cpus), median(tracers)
	s.spread = (slices.Max(cpus) - slices.Min(cpus)) / 2 / s.cpuUS
	if m.stats != nil && m.stats.sent > 0 {
		s.bpfNS = float64(m.stats.bpfNS) / float64(m.stats.sent)
		if m.stats.lost > s.lost && s.lost >= 0 {
			s.lost = m.stats.lost
		}
	}
	return s
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// report prints the no-port table as before, the runs, the per-workload
// tables of issue 12, the Go benchmarks and the targets.
func report(w io.Writer, in reportInput) {
	o := in.opts
	fmt.Fprintf(w, "\nudptrace cost benchmark, %s\n", in.date.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "machine: %s\n", machine())
	fmt.Fprintf(w, "measured: %s\n", in.version)
	fmt.Fprintf(w, "workloads, each in a fresh network namespace on lo, the sending thread pinned to CPU %d (a receiving/server thread, when there is one, to CPU %d);\n"+
		"%d runs per mode, interleaved; medians. CPU = rusage of the workload process, both ends, from the start of its loop.\n",
		o.cpu, peerCPU(o.cpu), o.repeats)
	for _, res := range in.results {
		fmt.Fprintf(w, "  %-9s %d %s per run: %s\n", res.wl.name, res.wl.n, res.wl.unit, res.wl.about)
	}
	fmt.Fprintf(w, "  packets: tcp-* count the namespace's lo tx_packets delta over the loop (segments and ACKs; a GSO super-packet is one),\n"+
		"           udp-* and noport the datagrams sent.\n")

	var noport *wlResult
	all := map[*mode]summary{}
	for i, res := range in.results {
		for _, m := range res.modes {
			all[m] = summarize(m)
		}
		if res.wl.name == "noport" {
			noport = &in.results[i]
		}
	}
	if noport != nil {
		printNoport(w, o, noport.modes, all)
	}
	for _, res := range in.results {
		printChecks(w, res.wl.name, res.modes, all)
	}
	printWorkloads(w, in.results, all, o.markdown)
	printGoBench(w, in)
	if noport != nil {
		printTargets(w, in, noport.modes, all)
	}
	printIssue12Targets(w, in.results, all)

	if len(in.notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range in.notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
}

// printNoport prints the no-port flood's table, the one the bench always had.
func printNoport(w io.Writer, o options, modes []*mode, sums map[*mode]summary) {
	fmt.Fprintf(w, "\nnoport: %d datagrams (16-byte payload) from one unconnected UDP socket, a sendto loop on one thread pinned to CPU %d,\n"+
		"       to 127.0.0.1:9 (closed); slowdown = traced / baseline: sender CPU per datagram (the steadier measure), and datagrams/s.\n\n",
		o.n, o.cpu)
	var base summary
	for _, m := range modes {
		if m.kind == kindBaseline {
			base = sums[m]
		}
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\tdatagrams/s\tsender CPU µs/dgram\tslowdown CPU\tslowdown rate\tlost\tRSS MiB\tBPF ns/dgram\ttracer CPU µs/dgram\t")
	for _, m := range modes {
		s := sums[m]
		if m.skip != "" || !s.ok {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t\t\t\n", m.label)
			continue
		}
		cpuRatio, rateRatio := "1.00x", "1.00x"
		if m.kind != kindBaseline && base.ok {
			cpuRatio = fmt.Sprintf("%.2fx", s.cpuUS/base.cpuUS)
			rateRatio = fmt.Sprintf("%.2fx", base.rate/s.rate)
		}
		lost, rss, bpf, tracer := "-", "-", "-", "-"
		if m.kind != kindBaseline {
			rss = fmt.Sprintf("%.1f", s.rssMiB)
			tracer = fmt.Sprintf("%.2f", s.tracerUS)
			if s.bpfNS >= 0 {
				bpf = fmt.Sprintf("%.0f", s.bpfNS)
			}
		}
		if m.kind == kindUdptrace {
			lost = intOrQ(s.lost)
		}
		fmt.Fprintf(tw, "%s\t%.1f k\t%.2f ±%.1f%%\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			m.label, s.rate/1e3, s.cpuUS, 100*s.spread, cpuRatio, rateRatio, lost, rss, bpf, tracer)
	}
	tw.Flush()

	fmt.Fprintln(w)
	for _, m := range modes {
		if m.skip != "" {
			fmt.Fprintf(w, "  %-18s skipped: %s\n", m.label, m.skip)
			continue
		}
		fmt.Fprintf(w, "  %-18s %s\n", m.label, m.display)
	}
	fmt.Fprintf(w, "  (lost: events lost in udptrace's ring buffer; for top, which has none, datagrams its kernel table could not count)\n")
	fmt.Fprintf(w, "  (± is half the range of the %d runs; tracer CPU is the tracer process's own, during the flood and its drain;\n"+
		"   BPF ns/dgram is the run time of all the tracer's BPF programs over the flood / datagrams, from the bpf_stats run)\n", o.repeats)
	printPrograms(w, modes, sums)
}

// printPrograms prints, per mode, where the BPF time went.
func printPrograms(w io.Writer, modes []*mode, sums map[*mode]summary) {
	var any bool
	for _, m := range modes {
		if m.stats == nil || len(m.stats.progs) == 0 {
			continue
		}
		if !any {
			fmt.Fprintln(w, "\nBPF programs over one flood (bpf_stats run): runs per datagram x ns per run = ns per datagram")
			any = true
		}
		st := m.stats
		n := float64(st.sent)
		fmt.Fprintf(w, "  %s: %.0f ns/dgram in %d programs (sender CPU in this run %.2f µs/dgram, vs %.2f with bpf_stats off)\n",
			m.label, float64(st.bpfNS)/n, len(st.progs), st.cpuUS, sums[m].cpuUS)
		for i, p := range st.progs {
			if i == 8 {
				fmt.Fprintf(w, "    ... %d more\n", len(st.progs)-i)
				break
			}
			runs := fmt.Sprintf("%5.2f", float64(p.RunCount)/n)
			if float64(p.RunCount)/n < 0.005 {
				runs = fmt.Sprintf("%d runs", p.RunCount) // not per datagram: other traffic
			}
			fmt.Fprintf(w, "    %-16s %5s x %5.0f ns = %5.0f ns\n", p.Name,
				runs, float64(p.RunTimeNS)/float64(p.RunCount), float64(p.RunTimeNS)/n)
		}
	}
}

// printChecks prints per mode whether the counts add up, and every run's
// raw numbers.
func printChecks(w io.Writer, wl string, modes []*mode, sums map[*mode]summary) {
	fmt.Fprintf(w, "\n%s runs (CPU µs/packet @ k packets/s), in order:\n", wl)
	for _, m := range modes {
		if m.skip != "" {
			continue
		}
		var parts []string
		for _, r := range m.runs {
			if r.err != nil {
				parts = append(parts, "error")
				continue
			}
			parts = append(parts, fmt.Sprintf("%.2f@%.0f", r.cpuUS, r.rate/1e3))
		}
		s := sums[m]
		var checks []string
		var sendErrs uint64
		for _, r := range m.runs {
			sendErrs += r.sendErrs
		}
		if sendErrs > 0 {
			checks = append(checks, fmt.Sprintf("%d sendto calls failed and were retried", sendErrs))
		}
		switch {
		case !s.countsOK && m.noport:
			checks = append(checks, "WARNING: Udp NoPorts != datagrams sent in some run")
		case !s.countsOK:
			checks = append(checks, "WARNING: Udp NoPorts grew in some run")
		}
		if !m.noport {
			if !s.deliverOK {
				checks = append(checks, "WARNING: the receiving end did not get everything in some run")
			}
			if s.rcvbufErr > 0 {
				checks = append(checks, fmt.Sprintf("NOTE: up to %d Udp RcvbufErrors (receiver drops) in a run", s.rcvbufErr))
			}
		}
		switch {
		case m.kind == kindBaseline:
		case m.expectNone && m.kind == kindUdptrace && s.seenKnown && s.seenOK:
			checks = append(checks, "udptrace printed 0 events and saw 0 datagrams, as it should")
		case m.expectNone && m.kind == kindUdptrace && s.seenKnown:
			checks = append(checks, "WARNING: udptrace reported events on traffic it should not report")
		case !s.seenKnown:
			checks = append(checks, "seen: not reported")
		case !s.seenOK:
			checks = append(checks, "WARNING: the tracer's count differs from Udp NoPorts")
		case m.kind == kindUdptrace:
			checks = append(checks, "udptrace saw = Udp NoPorts")
		default:
			checks = append(checks, "@n >= Udp NoPorts")
		}
		all := append(slices.Clone(m.runs), derefRuns(m.stats)...)
		for _, r := range all {
			if r.tracerErr != "" {
				checks = append(checks, "tracer exit: "+r.tracerErr)
				break
			}
		}
		var disturbed []string
		nDisturbed := 0
		for _, r := range all {
			if len(r.disturbed) > 0 {
				nDisturbed++
				disturbed = merge(disturbed, r.disturbed)
			}
		}
		if nDisturbed > 0 {
			checks = append(checks, fmt.Sprintf("WARNING: %d runs disturbed by %s", nDisturbed, describe(disturbed)))
		}
		fmt.Fprintf(w, "  %-18s %s  %s\n", m.label, strings.Join(parts, " "), strings.Join(checks, "; "))
	}
}

func derefRuns(r *runResult) []runResult {
	if r == nil {
		return nil
	}
	return []runResult{*r}
}

// printGoBench prints the user-space per-event benchmarks.
func printGoBench(w io.Writer, in reportInput) {
	if in.goBench == nil && in.goBenchErr == nil {
		return
	}
	fmt.Fprintf(w, "\nGo benchmarks (go test -run '^$' -bench '%s' ./internal/events), one CPU:\n", goBenchPattern)
	if in.goBenchErr != nil {
		fmt.Fprintf(w, "  failed: %v\n", in.goBenchErr)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, name := range in.goBenchOrder {
		b := in.goBench[name]
		fmt.Fprintf(tw, "  %s\t%.1f ns/op\t%.2f M/s\t%s\t\n", b.name, b.nsPerOp, 1e3/b.nsPerOp, b.rest)
	}
	tw.Flush()
}

// target is one line of the issue's targets.
type target struct{ name, measured, verdict string }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// printTargets checks the issue's targets against the measurements.
func printTargets(w io.Writer, in reportInput, modes []*mode, sums map[*mode]summary) {
	byKey := map[string]*mode{}
	var base summary
	for _, m := range modes {
		byKey[m.key] = m
		if m.kind == kindBaseline {
			base = sums[m]
		}
	}
	slow := func(key string, limit float64, needLost bool) target {
		m := byKey[key]
		name := fmt.Sprintf("%s <= %.0f %% slower than untraced", map[string]string{
			"top": "udptrace top", "json": "streaming JSON", "filter": "non-matching filter"}[key], 100*limit)
		if needLost {
			name += ", 0 lost"
		}
		if m == nil || m.skip != "" || !sums[m].ok || !base.ok {
			why := "mode not run"
			if m != nil && m.skip != "" {
				why = m.skip
			}
			return target{name, "not measured: " + why, "n/a"}
		}
		s := sums[m]
		cpu, rate := s.cpuUS/base.cpuUS-1, base.rate/s.rate-1
		measured := fmt.Sprintf("%+.1f %% CPU/dgram (rate %+.1f %%)", 100*cpu, 100*rate)
		ok := cpu <= limit
		if needLost {
			measured += fmt.Sprintf(", lost %s", intOrQ(s.lost))
			ok = ok && s.lost == 0
		}
		return target{name, measured, verdict(ok)}
	}
	targets := []target{slow("top", 0.02, false), slow("json", 0.10, true), slow("filter", 0.01, false)}

	bpf := target{name: "BPF cost <= 150 ns per event (datagram)", verdict: "n/a", measured: "not measured (no bpf_stats run)"}
	if m := byKey["json"]; m != nil && sums[m].bpfNS >= 0 {
		bpf.measured = fmt.Sprintf("streaming: %.0f ns/dgram", sums[m].bpfNS)
		for _, k := range []string{"top", "filter"} {
			if o := byKey[k]; o != nil && sums[o].bpfNS >= 0 {
				bpf.measured += fmt.Sprintf(", %s: %.0f", k, sums[o].bpfNS)
			}
		}
		bpf.verdict = verdict(sums[m].bpfNS <= 150)
	}
	targets = append(targets, bpf)

	df := target{name: "decode+format >= 1 M events/s", verdict: "n/a", measured: "not measured"}
	if in.goBenchErr != nil {
		df.measured = "go test -bench failed"
	} else if in.goBench != nil {
		ns, perSec, ok := decodeFormat(in.goBench, "DecodePrintJSON")
		label := "DecodePrintJSON"
		if !ok {
			ns, perSec, ok = decodeFormat(in.goBench, "Decode", "PrinterJSON")
			label = "Decode+PrinterJSON"
		}
		if ok {
			df.measured = fmt.Sprintf("JSON: %s %.0f ns = %.2f M/s", label, ns, perSec/1e6)
			if tns, tps, tok := decodeFormat(in.goBench, "Decode", "PrinterText"); tok {
				df.measured += fmt.Sprintf("; table: Decode+PrinterText %.0f ns = %.2f M/s", tns, tps/1e6)
				ok = perSec >= 1e6 && tps >= 1e6
			} else {
				ok = perSec >= 1e6
			}
			df.verdict = verdict(ok)
		}
	}
	targets = append(targets, df)

	rss := target{name: "udptrace RSS < 40 MiB", verdict: "n/a", measured: "not measured"}
	var maxRSS float64
	var which string
	for m, s := range sums {
		if m.kind == kindUdptrace && s.ok && s.rssMiB > maxRSS {
			maxRSS, which = sums[m].rssMiB, m.label
		}
	}
	if which != "" {
		rss.measured = fmt.Sprintf("peak VmHWM %.1f MiB (%s)", maxRSS, which)
		rss.verdict = verdict(maxRSS < 40)
	}
	targets = append(targets, rss)

	writeTargets(w, "targets of the first performance issue (noport flood; RSS over every workload):", targets)
}

// writeTargets prints a titled table of targets: name, measured, verdict.
func writeTargets(w io.Writer, title string, targets []target) {
	fmt.Fprintln(w, "\n"+title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range targets {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", t.name, t.measured, t.verdict)
	}
	tw.Flush()
}
