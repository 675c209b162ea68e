package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"

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

func takeSnapshot(t *loader.Tracer, ns netnsRef) snapshot {
	var s snapshot
	s.snmp, s.err = snmp.ReadNetns(ns.path)
	if s.err == nil {
		s.bpf, s.err = t.Counters()
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
	if err := printer.Header(); err != nil {
		return err
	}
	if err := out.Flush(); err != nil {
		return err
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

	var (
		rec                         ringbuf.Record
		ev                          events.Event
		printed, printedNS, skipped uint64
		decodeErrs                  uint64
		firstDecodeErr              error
		statsNS                     = cfg.ns.inode
		countReached                bool
		chains                      = map[uint64]bool{} // of the datagrams printed, under -c
	)
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
			stopNow()
			close(done)
			wg.Wait()
			return fmt.Errorf("read ring buffer: %w", err)
		}
		if err := events.Decode(rec.RawSample, &ev); err != nil {
			if decodeErrs == 0 {
				firstDecodeErr = err
			}
			decodeErrs++
			continue
		}
		datagram := ev.Kind == events.KindNoPort
		if countReached {
			// After -c datagrams, only the rest of their chains.
			if datagram && ev.Netns == statsNS {
				skipped++
			}
			if datagram || !chains[ev.Chain] {
				continue
			}
		}
		if err := printer.Event(&ev); err != nil {
			stopNow()
			close(done)
			wg.Wait()
			return fmt.Errorf("write event: %w", err)
		}
		if recPrinter != nil {
			if err := recPrinter.Event(&ev); err != nil {
				stopNow()
				close(done)
				wg.Wait()
				return fmt.Errorf("--record: %w", err)
			}
		}
		if m != nil {
			m.Observe(&ev)
		}
		if !datagram {
			continue
		}
		printed++
		if ev.Netns == statsNS {
			printedNS++
		}
		if cfg.count > 0 {
			chains[ev.Chain] = true
			if printed == cfg.count {
				// The error comes back, and the client's call returns
				// it, within microseconds to milliseconds.
				countReached = true
				time.AfterFunc(chainGrace, stopNow)
			}
		}
		// Flush when the ring is idle: cheap while flooding, prompt when not.
		if rec.Remaining == 0 {
			t.Reader.SetDeadline(time.Now().Add(loader.PollInterval))
			if err := out.Flush(); err != nil {
				stopNow()
				close(done)
				wg.Wait()
				return fmt.Errorf("write event: %w", err)
			}
			if recOut != nil {
				if err := recOut.Flush(); err != nil {
					stopNow()
					close(done)
					wg.Wait()
					return fmt.Errorf("--record: %w", err)
				}
			}
		}
	}
	close(done)
	wg.Wait()
	if err := out.Flush(); err != nil {
		return err
	}
	if decodeErrs > 0 {
		fmt.Fprintf(stderr, "udptrace: %d malformed records skipped (first: %v)\n", decodeErrs, firstDecodeErr)
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
		Netns:               statsNS,
		Printed:             printed,
		PrintedNS:           printedNS,
		Unprinted:           skipped,
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
	if cfg.format == events.FormatJSON {
		if _, err := stdout.Write(line); err != nil {
			return err
		}
	}
	if recOut != nil {
		recOut.Write(line)
		if err := recOut.Flush(); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
		if err := recFile.Close(); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
	}
	return rep.WriteText(stderr)
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
