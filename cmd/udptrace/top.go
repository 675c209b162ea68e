package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/metrics"
)

// topIdle is how many intervals a key may stay unchanged before top deletes
// it from the kernel's map, to make room for new ones.
const topIdle = 10

func newTopCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o         options
		interval  time.Duration
		rows      int
		tableSize int
	)
	cmd := &cobra.Command{
		Use:   "top [flags]",
		Short: "Live view of the top sources of no-port datagrams, counted in the kernel",
		Long: `top counts no-port datagrams in the kernel, per destination port, source
address, namespace and (for datagrams sent from this host) sender name, and
shows the busiest every interval, sorted by rate, with what became of their
ICMP replies: sent, or suppressed (rate-limited, not sent, unknown). No event
leaves the kernel, so it costs little on a busy host. The kernel's table holds
16384 keys (--table-size); keys idle for 10 intervals are removed, and datagrams that found
it full are counted as overflow and shown. Filters are those of udptrace.`,
		Example: `  sudo udptrace top                      # live, refreshed every second
  sudo udptrace top -p 53,514 -n 10      # DNS and syslog, the 10 busiest
  sudo udptrace top --json --interval 5s # one JSON snapshot per 5 s`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("top takes no arguments, got %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 100*time.Millisecond {
				return usagef("--interval %v: at least 100ms", interval)
			}
			if rows < 1 {
				return usagef("--rows %d: at least 1", rows)
			}
			o.changed = cmd.Flags().Changed
			cfg, err := o.config()
			if err != nil {
				return err
			}
			if tableSize < 1 || tableSize > 1<<20 {
				return usagef("--table-size %d: from 1 to %d", tableSize, 1<<20)
			}
			cfg.loader.Aggregate = true
			cfg.loader.AggEntries = tableSize
			return top(cmd.Context(), cfg, interval, rows, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	o.registerFilters(f)
	f.DurationVar(&interval, "interval", time.Second, "refresh every `D`")
	f.IntVarP(&rows, "rows", "n", 20, "show the `N` busiest keys")
	f.IntVar(&tableSize, "table-size", 16384, "keys the kernel's table holds; datagrams beyond are counted as overflow")
	f.BoolVarP(&o.json, "json", "j", false, "one JSON object per interval instead of the table")
	f.DurationVarP(&o.duration, "duration", "d", 0, "stop after `D`")
	f.StringVar(&o.readyFile, "ready-file", "", "create `PATH` once every program is attached")
	f.StringVar(&o.backend, "backend", "auto", "how to hook the kernel: `auto`, fentry, tracepoint or kprobe")
	registerMetrics(f, &o.metrics)
	registerBTF(f, &o.btf)
	o.ringSize = "4K" // top streams nothing
	return cmd
}

// topRow is one key's counts over the last interval and in total.
type topRow struct {
	key          loader.AggKey
	delta, total loader.AggCounts
}

func top(ctx context.Context, cfg config, interval time.Duration, rows int, stdout, stderr io.Writer) error {
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
	var overflow atomic.Uint64 // as last read: no scrape reads a closed map
	if m != nil {
		m.SetBuildInfo(version, string(t.Backend))
		m.SetSources(nil, overflow.Load)
		fmt.Fprintf(stderr, "udptrace: serving Prometheus metrics at %s on %s\n", metrics.Path, cfg.metrics)
	}
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	fmt.Fprintf(stderr, "udptrace: top: counting no-port datagrams in the kernel (backend %s); every %v. Ctrl-C to stop.\n", t.Backend, interval)
	if cfg.readyFile != "" {
		if err := os.WriteFile(cfg.readyFile, []byte("ready\n"), 0o644); err != nil {
			return fmt.Errorf("--ready-file: %w", err)
		}
	}
	out := bufio.NewWriter(stdout)
	term := cfg.format == events.FormatText && isTerminal(stdout)
	prev := map[loader.AggKey]loader.AggCounts{}
	idle := map[loader.AggKey]int{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := time.Now()
	for {
		final := false
		select {
		case <-ctx.Done():
			final = true
		case <-tick.C:
		}
		now := time.Now()
		cur := make(map[loader.AggKey]loader.AggCounts, len(prev))
		if err := t.Aggregates(cur); err != nil {
			return err
		}
		c, err := t.Counters()
		if err != nil {
			return err
		}
		overflow.Store(c.AggOverflow)
		var list []topRow
		var stale []loader.AggKey
		for k, v := range cur {
			d := sub(v, prev[k])
			if m != nil {
				observeTop(m, k, d)
			}
			if d.Datagrams == 0 {
				idle[k]++
				if idle[k] >= topIdle {
					stale = append(stale, k)
				}
			} else {
				idle[k] = 0
			}
			list = append(list, topRow{k, d, v})
		}
		if err := t.DeleteAggregates(stale); err != nil {
			return err
		}
		for _, k := range stale {
			delete(cur, k)
			delete(idle, k)
		}
		prev = cur
		sort.Slice(list, func(i, j int) bool {
			a, b := list[i], list[j]
			if a.delta.Datagrams != b.delta.Datagrams {
				return a.delta.Datagrams > b.delta.Datagrams
			}
			if a.total.Datagrams != b.total.Datagrams {
				return a.total.Datagrams > b.total.Datagrams
			}
			return keyLess(a.key, b.key)
		})
		secs := now.Sub(last).Seconds()
		last = now
		if cfg.format == events.FormatJSON {
			writeTopJSON(out, now, secs, c.AggOverflow, list, rows)
		} else {
			writeTopText(out, now, secs, c.AggOverflow, list, rows, term)
		}
		if err := out.Flush(); err != nil {
			if errors.Is(err, syscall.EPIPE) {
				return nil // the reader has what it wanted (udptrace top | head)
			}
			return writeError("write to stdout", err)
		}
		if final {
			return nil
		}
	}
}

// observeTop adds one key's new datagrams to the metrics, by verdict.
func observeTop(m *metrics.Metrics, k loader.AggKey, d loader.AggCounts) {
	f := events.Family(k.Family)
	for _, c := range []struct {
		v events.ICMPVerdict
		n uint64
	}{
		{events.ICMPSent, d.Sent}, {events.ICMPRateLimitedHost, d.RateLimited},
		{events.ICMPNotSent, d.NotSent}, {events.ICMPUnknown, d.Unknown},
	} {
		if c.n > 0 {
			m.Add(f, k.DPort, k.Netns, c.v, c.n)
		}
	}
}

func sub(a, b loader.AggCounts) loader.AggCounts {
	return loader.AggCounts{
		Datagrams:   a.Datagrams - b.Datagrams,
		Sent:        a.Sent - b.Sent,
		RateLimited: a.RateLimited - b.RateLimited,
		NotSent:     a.NotSent - b.NotSent,
		Unknown:     a.Unknown - b.Unknown,
	}
}

func keyLess(a, b loader.AggKey) bool {
	if a.DPort != b.DPort {
		return a.DPort < b.DPort
	}
	if c := a.Src.Compare(b.Src); c != 0 {
		return c < 0
	}
	if a.Netns != b.Netns {
		return a.Netns < b.Netns
	}
	return a.Comm < b.Comm
}

func family(f uint8) string {
	if f == 6 {
		return "ipv6"
	}
	return "ipv4"
}

func sender(k loader.AggKey) string {
	switch {
	case !k.Local:
		return "remote"
	case k.Comm == "":
		return "local/?"
	}
	return k.Comm
}

// writeTopText prints one screen: on a terminal it replaces the last one,
// elsewhere it follows it (like top -b).
func writeTopText(w *bufio.Writer, now time.Time, secs float64, overflow uint64, list []topRow, rows int, term bool) {
	if term {
		w.WriteString("\x1b[H\x1b[2J")
	}
	var total uint64
	for _, r := range list {
		total += r.delta.Datagrams
	}
	fmt.Fprintf(w, "udptrace top  %s  %.0f no-port datagrams/s  %d keys", now.Format("15:04:05"), float64(total)/secs, len(list))
	if overflow > 0 {
		fmt.Fprintf(w, "  OVERFLOW: %d datagrams not counted (table full)", overflow)
	}
	w.WriteString("\n")
	fmt.Fprintf(w, "%-6s %5s %-39s %-15s %10s %9s %10s %10s %10s\n", "FAMILY", "PORT", "SOURCE", "SENDER", "NETNS", "RATE/s", "COUNT", "ICMP SENT", "SUPPRESSED")
	for i, r := range list {
		if i == rows {
			fmt.Fprintf(w, "... %d more\n", len(list)-rows)
			break
		}
		fmt.Fprintf(w, "%-6s %5d %-39s %-15s %10d %9.0f %10d %10d %10d\n", family(r.key.Family), r.key.DPort, r.key.Src, sender(r.key),
			r.key.Netns, float64(r.delta.Datagrams)/secs, r.total.Datagrams, r.total.Sent,
			r.total.RateLimited+r.total.NotSent)
	}
	if !term {
		w.WriteString("\n")
	}
}

// writeTopJSON prints one snapshot as a JSON object on one line.
func writeTopJSON(w *bufio.Writer, now time.Time, secs float64, overflow uint64, list []topRow, rows int) {
	b := []byte(`{"type":"top","time":"`)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
	b = append(b, `","interval_s":`...)
	b = strconv.AppendFloat(b, secs, 'f', 3, 64)
	b = append(b, `,"overflow":`...)
	b = strconv.AppendUint(b, overflow, 10)
	b = append(b, `,"keys":`...)
	b = strconv.AppendInt(b, int64(len(list)), 10)
	b = append(b, `,"rows":[`...)
	for i, r := range list {
		if i == rows {
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"family":"`...)
		b = append(b, family(r.key.Family)...)
		b = append(b, `","dport":`...)
		b = strconv.AppendUint(b, uint64(r.key.DPort), 10)
		b = append(b, `,"src":"`...)
		b = r.key.Src.AppendTo(b)
		b = append(b, `","netns":`...)
		b = strconv.AppendUint(b, uint64(r.key.Netns), 10)
		b = append(b, `,"sender":"`...)
		if r.key.Local {
			b = append(b, "local"...)
		} else {
			b = append(b, "remote"...)
		}
		b = append(b, `","sender_comm":`...)
		b = strconv.AppendQuoteToASCII(b, r.key.Comm)
		for _, f := range []struct {
			name string
			v    uint64
		}{
			{"count", r.delta.Datagrams}, {"sent", r.delta.Sent}, {"rate_limited", r.delta.RateLimited},
			{"not_sent", r.delta.NotSent}, {"unknown", r.delta.Unknown}, {"total", r.total.Datagrams},
		} {
			b = append(b, ',', '"')
			b = append(b, f.name...)
			b = append(b, '"', ':')
			b = strconv.AppendUint(b, f.v, 10)
		}
		b = append(b, `,"rate":`...)
		b = strconv.AppendFloat(b, float64(r.delta.Datagrams)/secs, 'f', 1, 64)
		b = append(b, '}')
	}
	b = append(b, "]}\n"...)
	w.Write(b)
}
