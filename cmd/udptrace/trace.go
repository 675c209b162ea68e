package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/metrics"
	"github.com/udptrace/udptrace/internal/reconcile"
	"github.com/udptrace/udptrace/internal/snmp"
)

// snapshot is the kernel's SNMP counters and the BPF counters read together.
type snapshot struct {
	snmp snmp.Counters
	bpf  loader.Counters
	err  error
}

func readSnapshot(t *loader.Tracer, ns netnsRef) snapshot {
	var s snapshot
	s.snmp, s.err = snmp.ReadNetns(ns.path)
	if s.err == nil {
		s.bpf, s.err = t.Counters()
	}
	return s
}

// takeSnapshot reads the two sets of counters at one moment. The kernel
// counts a datagram in NoPorts a moment before udptrace's program counts it,
// so while datagrams arrive, one reading of each can disagree by those that
// came in between (seen in QEMU: a burst during the closing snapshot gave
// NoPorts 1, seen 3). So it reads until two readings in a row agree, for at
// most ~20 ms; then the last reading stands.
func takeSnapshot(t *loader.Tracer, ns netnsRef) snapshot {
	s := readSnapshot(t, ns)
	for i := 0; i < 20 && s.err == nil; i++ {
		again := readSnapshot(t, ns)
		if again.err != nil || maps.Equal(s.snmp, again.snmp) && s.bpf.NoPort4NS == again.bpf.NoPort4NS &&
			s.bpf.NoPort6NS == again.bpf.NoPort6NS && s.bpf.ICMP4SentNS == again.bpf.ICMP4SentNS &&
			s.bpf.ICMP6SentNS == again.bpf.ICMP6SentNS {
			return again
		}
		s = again
		time.Sleep(time.Millisecond)
	}
	return s
}

func trace(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	m, stopMetrics, err := serveMetrics(ctx, cfg.metrics)
	if err != nil {
		return err
	}
	defer stopMetrics()
	t, err := loader.Open(cfg.loader)
	if err != nil {
		return err
	}
	defer t.Close()
	if m != nil {
		m.SetBuildInfo(version, string(t.Backend))
		m.SetSources(lostSource(t), nil)
		defer func() { // before t.Close: no scrape reads a closed map
			c, _ := t.Counters()
			m.SetSources(func() uint64 { return c.Lost }, nil)
		}()
	}

	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	ctx, stopNow := context.WithCancel(ctx)
	defer stopNow()

	var explain func(*events.Event) string
	if cfg.explain {
		if explain, err = explainFromKernel(); err != nil {
			fmt.Fprintf(stderr, "udptrace: --explain: %v; naming the functions of recent kernels\n", err)
			explain = explainAnyKernel()
		}
	}
	// --record: the same records again, as --json prints them.
	var recFile *os.File
	if cfg.record != "" {
		if recFile, err = os.Create(cfg.record); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
		defer recFile.Close()
	}

	clock := events.NewClock()
	before := takeSnapshot(t, cfg.ns)
	if before.err != nil {
		return fmt.Errorf("read counters of netns %d: %w", cfg.ns.inode, before.err)
	}
	start := time.Now()

	out := bufio.NewWriterSize(stdout, 64<<10)
	printer := events.NewPrinter(out, cfg.format, clock)
	printer.SetColor(cfg.format == events.FormatText && cfg.color.on(stdout))
	printer.SetExplain(explain)
	var (
		recOut     *bufio.Writer
		recPrinter *events.Printer
	)
	if recFile != nil {
		recOut = bufio.NewWriterSize(recFile, 64<<10)
		recPrinter = events.NewPrinter(recOut, events.FormatJSON, clock)
		recPrinter.SetExplain(explain)
	}
	l := &eventLoop{out: out, printer: printer, recOut: recOut, recPrinter: recPrinter, record: cfg.record,
		m: m, statsNS: cfg.ns.inode, count: cfg.count, chains: map[uint64]bool{}, stop: stopNow,
		panicAfter: faultPanicAfter()}
	// A stdout that refuses the header (udptrace | true) stops the run at
	// once; the summary still follows.
	if err := printer.Header(); err != nil {
		l.outputFailed(err)
	} else if err := out.Flush(); err != nil {
		l.outputFailed(err)
	}
	scope := "all network namespaces"
	if cfg.loader.TargetNetns != 0 {
		scope = fmt.Sprintf("netns %d", cfg.loader.TargetNetns)
	}
	chosen := string(t.Backend)
	if cfg.loader.Backend == loader.Auto {
		chosen += " (auto)"
	}
	// The ready line comes last: scripts may wait for it.
	if m != nil {
		fmt.Fprintf(stderr, "udptrace: serving Prometheus metrics at %s on %s\n", metrics.Path, cfg.metrics)
	}
	if !t.Delivery {
		fmt.Fprintf(stderr, "udptrace: errors arriving back at local senders are not traced here: %s\n", t.NoDelivery)
	}
	fmt.Fprintf(stderr, "udptrace: ready: tracing UDP no-port drops in %s; backend %s: %s. Ctrl-C to stop.\n",
		scope, chosen, strings.Join(t.Hooks, ", "))
	if verbose {
		for _, err := range t.Skipped {
			fmt.Fprintf(stderr, "udptrace: backend %v\n", err)
		}
	}
	if cfg.readyFile != "" {
		if err := os.WriteFile(cfg.readyFile, []byte("ready\n"), 0o644); err != nil {
			return fmt.Errorf("--ready-file: %w", err)
		}
	}

	// The stopper takes the closing snapshot, detaches the programs so no
	// new event arrives, then makes the reader return what is left.
	var after snapshot
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		after = takeSnapshot(t, cfg.ns)
		t.Detach()
		t.Reader.Flush()
	}()
	done := make(chan struct{})
	go func() {
		defer wg.Done()
		reportLost(t, stderr, done)
	}()

	// Every way out of this loop (a signal, -c, --duration, an output that
	// fails, a ring that cannot be read, a panic) goes on to the summary.
	var rec ringbuf.Record
	t.Reader.SetDeadline(time.Now().Add(loader.PollInterval))
	for {
		err := t.Reader.ReadInto(&rec)
		if errors.Is(err, ringbuf.ErrFlushed) {
			break
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Reader.SetDeadline(time.Now().Add(loader.PollInterval))
			continue
		}
		if err != nil {
			l.fail(fmt.Errorf("read ring buffer: %w", err))
			break
		}
		l.handle(&rec)
		// Flush when the ring is idle: cheap while flooding, prompt when not.
		if rec.Remaining == 0 {
			t.Reader.SetDeadline(time.Now().Add(loader.PollInterval))
			l.flush()
		}
	}
	close(done)
	wg.Wait()
	l.flush()
	if l.decodeErrs > 0 {
		fmt.Fprintf(stderr, "udptrace: %d malformed records skipped (first: %v)\n", l.decodeErrs, l.firstDecodeErr)
	}

	final, err := t.Counters()
	if err != nil {
		return err
	}
	if after.err != nil {
		return fmt.Errorf("read counters of netns %d at exit: %w", cfg.ns.inode, after.err)
	}
	delta := snmp.Sub(after.snmp, before.snmp)
	rep := reconcile.Reconcile(reconcile.Input{
		Duration:            time.Since(start),
		Netns:               l.statsNS,
		Printed:             l.printed,
		PrintedNS:           l.printedNS,
		Unprinted:           l.skipped,
		Lost:                final.Lost,
		LostNS:              final.LostNS,
		PassedNS:            final.PassedNS,
		Seen4:               after.bpf.NoPort4NS - before.bpf.NoPort4NS,
		Seen6:               after.bpf.NoPort6NS - before.bpf.NoPort6NS,
		ICMP4Sent:           after.bpf.ICMP4SentNS - before.bpf.ICMP4SentNS,
		ICMP6Sent:           after.bpf.ICMP6SentNS - before.bpf.ICMP6SentNS,
		ICMP4Known:          t.ICMP4,
		ICMP6Known:          t.ICMP6,
		NoPorts:             delta.Get("Udp.NoPorts"),
		Udp6NoPorts:         delta.Get("Udp6NoPorts"),
		OutType3:            delta.Get("IcmpMsg.OutType3"),
		Icmp6OutDestUnreach: delta.Get("Icmp6OutDestUnreachs"),
		RateLimited4:        after.bpf.RateLimited4NS - before.bpf.RateLimited4NS,
		RateLimited6:        after.bpf.RateLimited6NS - before.bpf.RateLimited6NS,
		OutRateLimit4:       delta.Get("Icmp.OutRateLimitGlobal") + delta.Get("Icmp.OutRateLimitHost"),
		OutRateLimit6:       delta.Get("Icmp6OutRateLimitHost"),
		RateLimitsKnown:     t.RateLimits,
	})
	line := append(rep.AppendJSON(nil), '\n')
	if cfg.format == events.FormatJSON && l.outErr == nil {
		if _, err := stdout.Write(line); err != nil {
			l.outputFailed(err)
		}
	}
	if recOut != nil && l.recErr == nil {
		recOut.Write(line)
		if err := recOut.Flush(); err != nil {
			l.recordFailed(err)
		} else if err := recFile.Close(); err != nil {
			l.recordFailed(err)
		}
	}
	werr := rep.WriteText(stderr)
	switch {
	case l.failure == errStdoutClosed:
		return nil // the reader has what it wanted (udptrace | head)
	case l.failure != nil:
		return l.failure
	case errors.Is(werr, syscall.EPIPE):
		return nil
	}
	return werr
}

// errStdoutClosed ends a run whose stdout's reader went away (EPIPE, as in
// udptrace | head -1): udptrace stops as on Ctrl-C, prints the summary on
// stderr and exits 0.
var errStdoutClosed = errors.New("stdout was closed by its reader")

// eventLoop is the state of trace's reading loop: where records go, and
// what it counted for the summary.
type eventLoop struct {
	out, recOut         *bufio.Writer
	printer, recPrinter *events.Printer
	record              string // --record's path
	m                   *metrics.Metrics
	stop                func() // ends the run: detach, drain, summary
	statsNS             uint32
	count               uint64 // -c
	panicAfter          uint64 // see faultEnv

	ev                          events.Event
	printed, printedNS, skipped uint64
	decodeErrs                  uint64
	firstDecodeErr              error
	countReached                bool
	chains                      map[uint64]bool // of the datagrams printed, under -c

	// failure is the first error that stopped the run (outErr, recErr:
	// stdout's and --record's, a ring read, a panic); after it the loop
	// drains the ring, printing nothing.
	failure, outErr, recErr error
}

// handle decodes one record and prints it. Once the run is stopping, after
// -c N, only the rest of the printed datagrams' chains are printed, and
// after a failure nothing is; either way the datagrams of the reconciled
// namespace are still counted (unprinted), so the summary accounts for each.
// A panic (a bug decoding or formatting a record) is a failure like an
// output error: the run stops, the ring is drained, the summary printed,
// and the panic returned with its stack.
func (l *eventLoop) handle(rec *ringbuf.Record) {
	ours := false // a datagram of the reconciled namespace, not yet counted
	defer func() {
		if r := recover(); r != nil {
			if ours {
				l.skipped++
			}
			l.fail(fmt.Errorf("internal error: panic while handling a record: %v\n%s", r, debug.Stack()))
		}
	}()
	ev := &l.ev
	if err := events.Decode(rec.RawSample, ev); err != nil {
		if l.decodeErrs == 0 {
			l.firstDecodeErr = err
		}
		l.decodeErrs++
		return
	}
	datagram := ev.Kind == events.KindNoPort
	ours = datagram && ev.Netns == l.statsNS
	if l.failure != nil || l.countReached {
		if ours {
			l.skipped++
		}
		if l.failure != nil || datagram || !l.chains[ev.Chain] {
			return
		}
	}
	if l.panicAfter > 0 && l.printed >= l.panicAfter {
		panic(fmt.Sprintf("fault injected by %s=panic-after-%d", faultEnv, l.panicAfter))
	}
	if err := l.printer.Event(ev); err != nil {
		if ours {
			l.skipped++
		}
		l.outputFailed(err)
		return
	}
	if l.recPrinter != nil && l.recErr == nil {
		if err := l.recPrinter.Event(ev); err != nil {
			l.recordFailed(err) // the record is on stdout: printed
		}
	}
	if l.m != nil {
		l.m.Observe(ev)
	}
	if !datagram {
		return
	}
	l.printed++
	if ours {
		l.printedNS++
		ours = false
	}
	if l.count > 0 {
		l.chains[ev.Chain] = true
		if l.printed == l.count {
			// The error comes back, and the client's call returns
			// it, within microseconds to milliseconds.
			l.countReached = true
			time.AfterFunc(chainGrace, l.stop)
		}
	}
}

// flush writes out what the printers hold, unless their output failed.
func (l *eventLoop) flush() {
	if l.outErr == nil {
		if err := l.out.Flush(); err != nil {
			l.outputFailed(err)
		}
	}
	if l.recOut != nil && l.recErr == nil {
		if err := l.recOut.Flush(); err != nil {
			l.recordFailed(err)
		}
	}
}

// fail stops the run for err, the first failure; later ones only follow
// from it.
func (l *eventLoop) fail(err error) {
	if l.failure == nil {
		l.failure = err
		l.stop()
	}
}

// outputFailed: writing to stdout failed. EPIPE means its reader went away,
// which ends the run quietly.
func (l *eventLoop) outputFailed(err error) {
	l.outErr = err
	if errors.Is(err, syscall.EPIPE) {
		l.fail(errStdoutClosed)
		return
	}
	l.fail(writeError("write to stdout", err))
}

func (l *eventLoop) recordFailed(err error) {
	l.recErr = err
	l.fail(writeError("--record "+l.record, err))
}

// writeError names the output that failed and, when the cause is one, the
// errno, e.g. "--record /mnt/x.jsonl: write /mnt/x.jsonl: no space left on
// device (ENOSPC)".
func writeError(what string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && unix.ErrnoName(errno) != "" {
		return fmt.Errorf("%s: %w (%s)", what, err, unix.ErrnoName(errno))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// faultEnv injects a fault, for the tests of what udptrace does when its
// event loop panics (faults_test.go): UDPTRACE_FAULT=panic-after-N makes the
// loop panic on the first record it would print after N datagrams. It is
// read here only, once per run; it is not a user-facing setting.
const faultEnv = "UDPTRACE_FAULT"

func faultPanicAfter() uint64 {
	n, ok := strings.CutPrefix(os.Getenv(faultEnv), "panic-after-")
	if !ok {
		return 0
	}
	v, _ := strconv.ParseUint(n, 10, 64)
	return v
}

// lostSource reads the tracer's count of events lost in the ring buffer
// for --metrics (the metric keeps its last value should a read fail).
func lostSource(t *loader.Tracer) func() uint64 {
	return func() uint64 {
		c, err := t.Counters()
		if err != nil {
			return 0
		}
		return c.Lost
	}
}

// chainGrace is how long udptrace -c N waits, after the Nth datagram, for
// the rest of the chains of the datagrams it printed.
const chainGrace = 250 * time.Millisecond

// reportLost says so on stderr, once a second at most, whenever the ring
// buffer overflowed: a lost event is never silent.
func reportLost(t *loader.Tracer, stderr io.Writer, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		c, err := t.Counters()
		if err != nil || c.Lost == last {
			continue
		}
		fmt.Fprintf(stderr, "udptrace: %d events lost in the last second (ring buffer full; %d in total): raise --ring-size\n", c.Lost-last, c.Lost)
		last = c.Lost
	}
}
