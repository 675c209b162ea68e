// Command bench measures what udptrace costs the traffic it traces: a
// loopback flood of a fixed number of datagrams to a closed port
// (127.0.0.1:9) in a fresh network namespace, from a single-threaded sender
// pinned to one CPU, repeated under several modes — nothing attached,
// udptrace top, udptrace streaming JSON, udptrace with a filter that matches
// nothing, and a bpftrace one-liner counting the same drops — interleaved
// (ABCDE ABCDE ...) so that drift on a shared machine spreads over every
// mode, and the medians compared. It also reads the run time of udptrace's
// BPF programs (bpf_stats, in one extra run per mode so that the statistics'
// own cost does not weigh on the timed runs), udptrace's peak RSS, and runs
// the Go benchmarks of internal/events for the user-space cost per event.
// Then it checks the targets of the performance issue and prints the result
// honestly, met or not.
//
// Run it as root from the module root: make bench (ARGS="-n 100000
// -repeats 3" for a quicker run). It needs only Go; it installs bpftrace
// with apt-get when missing, and skips a mode (saying why) that cannot run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/lab"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == workloadMode {
		if err := runWorkload(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench workload: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == senderMode {
		if err := runSender(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench sender: %v\n", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	n            uint64
	repeats      int
	cpu          int
	udptrace     string
	modes        string
	workloads    string
	scale        float64
	markdown     bool
	bpfStats     bool
	goBench      bool
	benchtime    string
	goTool       string
	quietTimeout time.Duration
}

func parseFlags() (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.Uint64Var(&o.n, "n", 200000, "datagrams per no-port flood (workload noport)")
	fs.StringVar(&o.workloads, "workloads", strings.Join(workloadNames(), ","), "workloads to run, comma-separated")
	fs.Float64Var(&o.scale, "scale", 1, "multiply the per-run counts of tcp-bulk, tcp-rr, udp-flow and udp-peers by this (0.1 for a quick try)")
	fs.BoolVar(&o.markdown, "markdown", false, "also print the per-workload tables as Markdown (for the README)")
	fs.IntVar(&o.repeats, "repeats", 5, "timed floods per mode (interleaved; the median is reported)")
	fs.IntVar(&o.cpu, "cpu", 1, "CPU the sender is pinned to")
	fs.StringVar(&o.udptrace, "udptrace", "", "udptrace binary to measure (default: go build ./cmd/udptrace into a temporary directory)")
	fs.StringVar(&o.modes, "modes", strings.Join(modeKeys, ","), "modes to run, comma-separated (baseline is always run; bpftrace only on noport)")
	fs.BoolVar(&o.bpfStats, "bpf-stats", true, "one extra flood per traced mode with kernel.bpf_stats_enabled on, for BPF run times")
	fs.BoolVar(&o.goBench, "gobench", true, "run the Go benchmarks of internal/events (decode and format per event)")
	fs.StringVar(&o.benchtime, "benchtime", "1s", "go test -benchtime for the Go benchmarks")
	fs.StringVar(&o.goTool, "go", "go", "the go command")
	fs.DurationVar(&o.quietTimeout, "quiet-timeout", 2*time.Minute,
		"before each flood, wait up to this long for qemu-system processes and newly loaded tracing BPF programs of other processes to go away (a flood they disturbed is redone, 3 tries in all)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bench [flags]   (as root, from the module root; make bench ARGS=...)\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.n == 0 || o.repeats < 1 || o.scale <= 0 {
		return o, fmt.Errorf("-n, -repeats and -scale must be positive")
	}
	if o.cpu < 0 || o.cpu >= 1024 {
		return o, fmt.Errorf("-cpu %d: out of range", o.cpu)
	}
	return o, nil
}

// logf writes a progress line on stderr; the results go to stdout.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
}

func run(ctx context.Context) error {
	o, err := parseFlags()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	wanted := map[string]bool{"baseline": true}
	for k := range strings.SplitSeq(o.modes, ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(modeKeys, k) {
			return fmt.Errorf("-modes: unknown mode %q (modes: %s)", k, strings.Join(modeKeys, ","))
		}
		wanted[k] = true
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (namespaces, BPF): run sudo make bench")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "udptrace-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()

	b := &bench{self: self, n: o.n, cpu: o.cpu, tmp: tmp, devnull: devnull, udptrace: o.udptrace}
	if b.udptrace == "" {
		b.udptrace = filepath.Join(tmp, "udptrace")
		logf("building udptrace: go build -o %s ./cmd/udptrace", b.udptrace)
		cmd := exec.CommandContext(ctx, o.goTool, "build", "-o", b.udptrace, "./cmd/udptrace")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/udptrace: %w: %s", err, lastLines(string(out), 5))
		}
	} else if b.udptrace, err = filepath.Abs(b.udptrace); err != nil {
		return err
	}

	version := "?"
	if out, err := exec.CommandContext(ctx, b.udptrace, "--version").Output(); err == nil {
		version = strings.TrimSpace(string(out))
	}

	ns, err := lab.NewNS()
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer ns.Close()
	other, err := lab.NewNS()
	if err != nil {
		return fmt.Errorf("second network namespace: %w", err)
	}
	defer other.Close()
	b.ns, b.other = ns, other
	b.peerCPU = peerCPU(o.cpu)

	var wls []workload
	for k := range strings.SplitSeq(o.workloads, ",") {
		k = strings.TrimSpace(k)
		i := slices.IndexFunc(workloads, func(w workload) bool { return w.name == k })
		if i < 0 {
			return fmt.Errorf("-workloads: unknown workload %q (workloads: %s)", k, strings.Join(workloadNames(), ","))
		}
		w := workloads[i]
		if w.name == "noport" {
			w.n = o.n
		} else {
			w.n = max(uint64(float64(w.n)*o.scale), 1)
		}
		wls = append(wls, w)
	}

	proto := b.modes(ctx, wanted)

	var notes []string
	// Tracing programs of other processes that are still there after the
	// wait are taken for tools that run all along.
	b.preexisting, b.retired = map[uint32]bool{}, map[uint32]bool{}
	b.waitQuiet(ctx, o.quietTimeout)
	if pre := foreignTracers(nil); len(pre) > 0 {
		var descs []string
		for _, p := range pre {
			b.preexisting[p.id] = true
			descs = append(descs, p.desc)
		}
		notes = append(notes, fmt.Sprintf("tracing BPF programs of other processes stayed loaded through the first wait (-quiet-timeout); they run in every mode, baseline included: %s", describe(descs)))
	}
	started := time.Now()
	notes = append(notes, fmt.Sprintf("load average at start: %s", loadavg()))
	if v, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled"); err == nil && strings.TrimSpace(string(v)) != "0" {
		notes = append(notes, "WARNING: kernel.bpf_stats_enabled was already on: every BPF program pays for the statistics in the timed runs too")
	}

	var results []wlResult
	for _, wl := range wls {
		modes := modesFor(proto, wl)
		b.wl, b.n = wl, wl.n
		if err := b.runWorkloadModes(ctx, o, modes, &notes); err != nil {
			return err
		}
		results = append(results, wlResult{wl: wl, modes: modes})
	}
	floodTime := time.Since(started)
	notes = append(notes, fmt.Sprintf("load average at end: %s; floods took %s", loadavg(), floodTime.Round(time.Second)))
	redone, disturbed := 0, 0
	maxSteal := 0.0
	for _, res := range results {
		for _, m := range res.modes {
			for _, r := range append(slices.Clone(m.runs), derefRuns(m.stats)...) {
				redone += max(r.attempts-1, 0)
				if len(r.disturbed) > 0 {
					disturbed++
				}
			}
			for _, r := range m.runs {
				maxSteal = max(maxSteal, r.steal)
			}
		}
	}
	if maxSteal > 0.05 {
		notes = append(notes, fmt.Sprintf("WARNING: the hypervisor took up to %.0f %% of a vCPU (steal) during a flood: the host is busy", 100*maxSteal))
	}
	if redone > 0 || disturbed > 0 {
		notes = append(notes, fmt.Sprintf("%d floods were redone because a neighbour disturbed them; %d kept disturbed after %d tries (flagged above)", redone, disturbed, maxAttempts))
	}

	var gb map[string]goBench
	var gbOrder []string
	var gbErr error
	if o.goBench {
		logf("go test -run '^$' -bench '%s' -benchtime %s ./internal/events", goBenchPattern, o.benchtime)
		gb, gbOrder, gbErr = runGoBenchmarks(ctx, o.goTool, root, o.benchtime)
	}

	report(os.Stdout, reportInput{
		opts: o, results: results, notes: notes, date: started, version: version,
		goBench: gb, goBenchOrder: gbOrder, goBenchErr: gbErr,
	})
	return nil
}

// modeKeys are the modes' names for -modes, in the order they run.
var modeKeys = []string{"baseline", "plain", "top", "json", "filter", "other", "lean", "bpftrace"}

// modes lists the modes in the order they run, each with its command line,
// or the reason it is skipped.
func (b *bench) modes(ctx context.Context, wanted map[string]bool) []*mode {
	nsPath := b.ns.Path
	all := []*mode{
		{key: "baseline", label: "baseline", kind: kindBaseline, display: "nothing attached"},
		{key: "plain", label: "udptrace", kind: kindUdptrace, readyFile: true,
			args:    []string{"--netns", nsPath},
			display: "udptrace --netns NS > /dev/null (the table)"},
		{key: "top", label: "udptrace top", kind: kindUdptrace, pipeStdout: true,
			args:    []string{"top", "--netns", nsPath, "--interval", "1s", "--json"},
			display: "udptrace top --netns NS --interval 1s --json > /dev/null"},
		{key: "json", label: "udptrace --json", kind: kindUdptrace, readyFile: true,
			args:    []string{"--json", "--netns", nsPath},
			display: "udptrace --json --netns NS > /dev/null"},
		{key: "filter", label: "udptrace --port 1", kind: kindUdptrace, readyFile: true,
			args:    []string{"--port", "1", "--netns", nsPath},
			display: "udptrace --port 1 --netns NS > /dev/null"},
		{key: "other", label: "udptrace other ns", kind: kindUdptrace, readyFile: true,
			args:    []string{"--netns", b.other.Path},
			display: "udptrace --netns OTHER > /dev/null (a second namespace, where nothing flows)"},
		{key: "lean", label: "udptrace --lean", kind: kindUdptrace, readyFile: true,
			args:    []string{"--lean", "--netns", nsPath},
			display: "udptrace --lean --netns NS > /dev/null (no sender, no delivery or syscall links)"},
		{key: "bpftrace", label: "bpftrace count", kind: kindBpftrace, pipeStdout: true},
	}
	var out []*mode
	for _, m := range all {
		if !wanted[m.key] {
			continue
		}
		out = append(out, m)
		switch m.key {
		case "top":
			b.prepareTop(ctx, m)
		case "bpftrace":
			b.prepareBpftrace(ctx, m)
		}
		if m.skip != "" {
			logf("skipping %s: %s", m.label, m.skip)
		}
	}
	return out
}

// topUsage matches the usage line of the top subcommand's own help.
var topUsage = regexp.MustCompile(`(?m)^Usage:\s*\n\s+udptrace top\b`)

// prepareTop checks that this udptrace has a top subcommand with the flags
// the mode needs. udptrace answers --help after an unknown word with its
// own help and exit status 0, so the exit status alone does not tell: the
// usage line must name "udptrace top".
func (b *bench) prepareTop(ctx context.Context, m *mode) {
	out, err := exec.CommandContext(ctx, b.udptrace, "top", "--help").CombinedOutput()
	help := string(out)
	switch {
	case err != nil:
		m.skip = fmt.Sprintf("udptrace top --help failed (%v): the top subcommand does not exist yet", err)
	case !topUsage.MatchString(help):
		m.skip = "udptrace has no top subcommand yet (udptrace top --help prints the main help)"
	default:
		for _, f := range []string{"--netns", "--interval", "--json"} {
			if !strings.Contains(help, f) {
				m.skip = fmt.Sprintf("udptrace top has no %s flag yet", f)
				return
			}
		}
		m.readyFile = strings.Contains(help, "--ready-file")
	}
}

// prepareBpftrace installs bpftrace if needed and writes the one-liner of
// the issue: count the kfree_skb drops with reason NO_SOCKET. bpftrace 0.17
// resolves the enum name from the kernel's BTF; when a dry run (-d) rejects
// it, the value is read from the BTF here instead (kernels number it
// differently). The program also prints a marker from BEGIN, which runs once
// the probe is attached: the bench's readiness signal.
func (b *bench) prepareBpftrace(ctx context.Context, m *mode) {
	path, err := ensureBpftrace(ctx, logf)
	if err != nil {
		m.skip = err.Error()
		return
	}
	b.bpftrace = path
	// bpftrace's tracepoint: probes need tracefs, which this machine
	// may not have mounted (udptrace's tp_btf and raw_tp do not).
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		if err := unix.Mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
			logf("mount tracefs on /sys/kernel/tracing: %v", err)
		}
	}
	if err := exec.CommandContext(ctx, path, "--version").Run(); err != nil {
		m.skip = fmt.Sprintf("bpftrace does not run: %v", err)
		return
	}
	probe := func(reason string) string {
		return fmt.Sprintf(`tracepoint:skb:kfree_skb /args->reason == %s/ { @n = count(); }`, reason)
	}
	one := probe("SKB_DROP_REASON_NO_SOCKET")
	if out, err := exec.CommandContext(ctx, path, "-d", "-e", one).CombinedOutput(); err != nil {
		reason, berr := noSocketReason()
		if berr != nil {
			m.skip = fmt.Sprintf("bpftrace rejects SKB_DROP_REASON_NO_SOCKET (%s), and %v", lastLines(string(out), 1), berr)
			return
		}
		one = probe(fmt.Sprint(reason))
	}
	m.args = []string{"-e", fmt.Sprintf(`BEGIN { printf("%s\n"); } %s`, bpftraceReady, one)}
	m.display = fmt.Sprintf("bpftrace -e '%s'", one)
}

// logRun prints one run's result as progress.
func logRun(m *mode, rep, of int, r runResult) {
	which := fmt.Sprintf("%d/%d", rep, of)
	if of == 0 {
		which = "bpf_stats"
	}
	if r.err != nil {
		logf("%-18s %-9s error: %v", m.label, which, r.err)
		return
	}
	extra := ""
	if m.kind != kindBaseline {
		extra = fmt.Sprintf(", tracer %.2f µs/dgram, RSS %.1f MiB, lost %s, seen %s", r.tracerUS, r.rssMiB, intOrQ(r.lost), intOrQ(r.seen))
	}
	if r.progs != nil {
		extra += fmt.Sprintf(", BPF %.0f ns/dgram", float64(r.bpfNS)/float64(r.sent))
	}
	if r.tracerErr != "" {
		extra += ", tracer exit: " + r.tracerErr
	}
	logf("%-18s %-9s %6.1f k dgram/s, %.2f µs CPU/dgram, NoPorts %d%s; steal %.0f%% of a CPU",
		m.label, which, r.rate/1e3, r.cpuUS, r.noPorts, extra, 100*r.steal)
}

func intOrQ(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

// moduleRoot finds the udptrace module's root from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/udptrace/udptrace\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run from inside the udptrace module (no go.mod of github.com/udptrace/udptrace above the working directory)")
		}
		dir = parent
	}
}
