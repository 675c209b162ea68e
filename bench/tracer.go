package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/lab"
	"github.com/udptrace/udptrace/internal/snmp"
)

// kind is what a mode attaches during the flood.
type kind int

const (
	kindBaseline kind = iota // nothing
	kindUdptrace             // the udptrace binary with some arguments
	kindBpftrace             // a bpftrace one-liner, for comparison
)

// mode is one configuration the flood runs under.
type mode struct {
	key     string // short name, for -modes
	label   string // the table's first column
	kind    kind
	args    []string // udptrace: its arguments; bpftrace: -e and the program
	display string   // the command as a user would type it
	// pipeStdout keeps the tracer's stdout (small: top, bpftrace) instead of
	// sending it to /dev/null.
	pipeStdout bool
	// readyFile: the tracer takes --ready-file; without it, readiness is a
	// line containing "ready" on stderr (or, for bpftrace, stdout).
	readyFile bool
	skip      string // why the mode is not measured, when it is not
	// noport: the workload is the no-port flood, whose datagrams udptrace
	// reports; expectNone: udptrace must report nothing (unrelated traffic,
	// or a namespace without traffic).
	noport, expectNone bool

	runs  []runResult // the timed runs, bpf_stats off
	stats *runResult  // the extra run with bpf_stats on, for BPF run times
}

// runResult is one flood under one mode.
type runResult struct {
	err       error
	sent      uint64
	rate      float64 // datagrams per second (wall clock of the send loop)
	cpuUS     float64 // sender CPU µs per datagram (rusage)
	noPorts   uint64  // Udp NoPorts delta of the namespace: datagrams the kernel dropped
	tracerUS  float64 // tracer CPU µs per datagram, during the flood and its drain
	rssMiB    float64 // tracer's VmHWM just before it was stopped
	lost      int64   // events lost in the ring buffer; -1 when unknown
	seen      int64   // datagrams the tracer counted; -1 when unknown
	progs     []progStat
	bpfNS     uint64   // sum of the tracer's BPF run time over the flood
	sendErrs  uint64   // sendto calls that failed and were retried
	events    int64    // udptrace: "events printed" of its summary; -1 when unknown
	units     uint64   // what the workload counted: datagrams, writes or exchanges
	received  uint64   // units the workload's receiving end got (not noport)
	loTx      uint64   // the namespace's lo tx_packets delta over the loop (not noport)
	rcvbufErr uint64   // Udp RcvbufErrors delta of the namespace: datagrams the receiver dropped
	tracerErr string   // the tracer's exit error, if any
	disturbed []string // what disturbed the flood (see disturbances)
	// steal is the time the hypervisor gave this machine's vCPUs to someone
	// else during the flood, as a share of one CPU (/proc/stat).
	steal     float64
	floodWall time.Duration // the sender process's life, start to exit
	attempts  int           // floods it took (a disturbed one is redone)
}

// bench holds what every run shares.
type bench struct {
	self     string // this binary, re-executed as the sender
	udptrace string
	bpftrace string
	ns       *lab.NS
	other    *lab.NS // a second namespace where nothing flows (mode other)
	n        uint64  // units per run of the current workload
	wl       workload
	cpu      int
	peerCPU  int // the receiving (server) thread's CPU
	tmp      string
	devnull  *os.File
	// preexisting are the ids of the tracing BPF programs of other
	// processes still loaded after the first wait for a quiet machine:
	// tools that run all along, in every mode alike.
	preexisting map[uint32]bool
	// retired are the ids of the programs of the tracers the bench ran.
	retired map[uint32]bool
}

// flood runs the workload process inside the namespace and waits for it.
func (b *bench) flood(ctx context.Context, r *runResult) error {
	before, err := snmp.ReadNetns(b.ns.Path)
	if err != nil {
		return fmt.Errorf("read the namespace's counters: %w", err)
	}
	n := strconv.FormatUint(b.n, 10)
	cmd := exec.CommandContext(ctx, b.self, senderMode, "-n", n, "-cpu", strconv.Itoa(b.cpu))
	// One P for the lone sender thread; two for a workload's two ends, so
	// that neither waits for the other's P between system calls.
	procs := "GOMAXPROCS=1"
	if b.wl.name != "noport" {
		cmd = exec.CommandContext(ctx, b.self, workloadMode, "-w", b.wl.name, "-n", n,
			"-cpu", strconv.Itoa(b.cpu), "-peer-cpu", strconv.Itoa(b.peerCPU))
		procs = "GOMAXPROCS=2"
	}
	out, errOut := newTailBuffer(1<<16), newTailBuffer(1<<16)
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.Env = append(os.Environ(), procs)
	st0, err := readCPUStat()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := b.ns.Do(cmd.Start); err != nil {
		return fmt.Errorf("start the workload: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("workload %s: %w: %s", b.wl.name, err, strings.TrimSpace(errOut.String()))
	}
	r.floodWall = time.Since(t0)
	st1, err := readCPUStat()
	if err != nil {
		return err
	}
	total, err := rusageCPU(cmd.ProcessState)
	if err != nil {
		return err
	}
	after, err := snmp.ReadNetns(b.ns.Path)
	if err != nil {
		return fmt.Errorf("read the namespace's counters: %w", err)
	}
	r.steal = float64(time.Duration((st1.steal-st0.steal)*uint64(time.Second/userHZ))) / float64(r.floodWall)
	delta := snmp.Sub(after, before)
	r.noPorts, r.rcvbufErr = delta.Get("Udp.NoPorts"), delta.Get("Udp.RcvbufErrors")
	var wallNS, startCPU int64
	if b.wl.name == "noport" {
		var res senderResult
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
			return fmt.Errorf("sender output %q: %w", out.String(), err)
		}
		r.sent, r.sendErrs, r.units = res.Sent, res.Errors, res.Sent
		wallNS, startCPU = res.WallNS, res.StartCPUNS
	} else {
		var res workloadResult
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
			return fmt.Errorf("workload output %q: %w", out.String(), err)
		}
		r.units, r.received, r.loTx = res.Sent, res.Received, res.LoTx
		r.sent = res.Sent
		if b.wl.loPackets {
			r.sent = res.LoTx
		}
		wallNS, startCPU = res.WallNS, res.StartCPUNS
	}
	if r.sent == 0 || wallNS <= 0 {
		return fmt.Errorf("workload %s: no packets (%s)", b.wl.name, strings.TrimSpace(out.String()))
	}
	r.rate = float64(r.sent) / (float64(wallNS) / 1e9)
	r.cpuUS = float64(total.Nanoseconds()-startCPU) / 1e3 / float64(r.sent)
	return nil
}

// tracer is a running udptrace or bpftrace.
type tracer struct {
	cmd     *exec.Cmd
	stdout  *tailBuffer // nil when stdout goes to /dev/null
	stderr  *tailBuffer
	done    chan struct{}
	waitErr error
}

// start starts the mode's tracer and waits until it is attached.
func (b *bench) start(m *mode) (*tracer, error) {
	var cmd *exec.Cmd
	readyPath := ""
	switch m.kind {
	case kindUdptrace:
		args := append([]string(nil), m.args...)
		if m.readyFile {
			readyPath = filepath.Join(b.tmp, "ready")
			os.Remove(readyPath)
			args = append(args, "--ready-file", readyPath)
		}
		cmd = exec.Command(b.udptrace, args...)
	case kindBpftrace:
		cmd = exec.Command(b.bpftrace, m.args...)
	default:
		return nil, nil
	}
	t := &tracer{cmd: cmd, stderr: newTailBuffer(1 << 20), done: make(chan struct{})}
	cmd.Stderr = t.stderr
	cmd.Stdout = b.devnull
	if m.pipeStdout {
		t.stdout = newTailBuffer(1 << 20)
		cmd.Stdout = t.stdout
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		t.waitErr = cmd.Wait()
		close(t.done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var ready bool
		switch {
		case readyPath != "":
			_, err := os.Stat(readyPath)
			ready = err == nil
		case m.kind == kindBpftrace:
			ready = t.stdout.Contains(bpftraceReady)
		default:
			ready = t.stderr.Contains("ready")
		}
		if ready {
			return t, nil
		}
		select {
		case <-t.done:
			return nil, fmt.Errorf("exited before it was ready (%v): %s", t.waitErr, lastLines(t.stderr.String(), 3))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.kill()
			return nil, fmt.Errorf("not ready after 90 s: %s", lastLines(t.stderr.String(), 3))
		}
	}
}

// stop interrupts the tracer (as Ctrl-C would) and waits for its summary.
func (t *tracer) stop() error {
	if err := t.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-t.done:
	case <-time.After(90 * time.Second):
		t.kill()
		return fmt.Errorf("did not stop within 90 s of SIGINT; killed")
	}
	return t.waitErr
}

// kill ends the tracer at once (after an error).
func (t *tracer) kill() {
	t.cmd.Process.Kill()
	<-t.done
}

// runOnce floods once under mode m; with stats, bpf_stats is on during the
// flood and the tracer's programs' run times are read before and after.
func (b *bench) runOnce(ctx context.Context, m *mode, stats bool) runResult {
	r := runResult{lost: -1, seen: -1, events: -1}
	t, err := b.start(m)
	if err != nil {
		r.err = err
		return r
	}
	if t == nil { // baseline
		r.disturbed = b.disturbances(nil)
		r.err = b.flood(ctx, &r)
		r.disturbed = merge(r.disturbed, b.disturbances(nil))
		return r
	}
	stopped := false
	defer func() {
		if !stopped {
			t.kill()
		}
	}()
	pid := t.cmd.Process.Pid

	var before map[uint32]progStat
	if stats {
		closer, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			r.err = fmt.Errorf("enable bpf_stats: %w", err)
			return r
		}
		defer closer.Close() // also after an error; the kernel's count drops back
		if before, err = tracerPrograms(pid); err != nil {
			r.err = err
			return r
		}
	}
	own, err := tracerPrograms(pid)
	if err != nil {
		r.err = err
		return r
	}
	for id := range own {
		b.retired[id] = true
	}
	r.disturbed = b.disturbances(own)
	cpu0, err := taskCPU(pid)
	if err != nil {
		r.err = err
		return r
	}
	if r.err = b.flood(ctx, &r); r.err != nil {
		return r
	}
	r.disturbed = merge(r.disturbed, b.disturbances(own))
	settle(pid)
	cpu1, err := taskCPU(pid)
	if err != nil {
		r.err = err
		return r
	}
	r.tracerUS = float64(cpu1-cpu0) / 1e3 / float64(r.sent)
	if stats {
		after, err := tracerPrograms(pid)
		if err != nil {
			r.err = err
			return r
		}
		r.progs = progDelta(before, after)
		for _, p := range r.progs {
			r.bpfNS += p.RunTimeNS
		}
	}
	if r.rssMiB, err = peakRSSMiB(pid); err != nil {
		r.err = err
		return r
	}
	stopped = true
	if err := t.stop(); err != nil {
		r.tracerErr = fmt.Sprintf("%v: %s", err, lastLines(t.stderr.String(), 3))
	}
	r.lost, r.seen = parseSummary(m.kind, t)
	if m.kind == kindUdptrace && t.stdout == nil {
		r.events = lastInt(eventsRE, t.stderr.String())
	}
	return r
}

var (
	lostRE     = regexp.MustCompile(`lost in the ring buffer: (\d+)`)
	eventsRE   = regexp.MustCompile(`events printed: (\d+)`)
	noPortsRE  = regexp.MustCompile(`Udp NoPorts\s+\d+\s+(\d+)`)
	bpftraceRE = regexp.MustCompile(`@n:\s*(\d+)`)
)

// topSnapshot is the part of a udptrace top --json line the bench reads.
type topSnapshot struct {
	Type     string  `json:"type"`
	Overflow *uint64 `json:"overflow"` // cumulative: datagrams not counted, table full
	Rows     []struct {
		Total uint64 `json:"total"` // datagrams of this key since top started
	} `json:"rows"`
}

// parseSummary reads what the tracer printed when it stopped: events lost
// and datagrams seen, -1 when it does not say. udptrace writes its summary
// on stderr whatever the output format ("lost in the ring buffer: N", and
// the Udp NoPorts row: kernel delta, udptrace saw). udptrace top has no ring
// buffer: its last JSON snapshot gives the datagrams its kernel table could
// not count (overflow, reported as lost) and the totals of its keys.
// bpftrace prints @n.
func parseSummary(k kind, t *tracer) (lost, seen int64) {
	last := lastInt
	switch {
	case k == kindBpftrace:
		return -1, last(bpftraceRE, t.stdout.String())
	case t.stdout != nil:
		return lastTopSnapshot(t.stdout.String())
	}
	errText := t.stderr.String()
	return last(lostRE, errText), last(noPortsRE, errText)
}

// lastInt is the number in re's last match in s, -1 when none.
func lastInt(re *regexp.Regexp, s string) int64 {
	m := re.FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// lastTopSnapshot reads the last top JSON line of out.
func lastTopSnapshot(out string) (overflow, seen int64) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var s topSnapshot
		if json.Unmarshal([]byte(lines[i]), &s) != nil || s.Type != "top" || s.Overflow == nil {
			continue
		}
		var total uint64
		for _, r := range s.Rows {
			total += r.Total
		}
		return int64(*s.Overflow), int64(total)
	}
	return -1, -1
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// bpftraceReady is what the bpftrace one-liner's BEGIN probe prints; BEGIN
// fires once every other probe is attached.
const bpftraceReady = "bench-ready"

// ensureBpftrace returns the path of bpftrace, installing Debian's package
// with apt-get when it is missing (apt-get update first only if the install
// fails, e.g. on a fresh machine with no package lists).
func ensureBpftrace(ctx context.Context, log func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("bpftrace"); err == nil {
		return p, nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", fmt.Errorf("bpftrace is not installed, and there is no apt-get to install it")
	}
	apt := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lastLines(string(out), 2))
		}
		return nil
	}
	log("installing bpftrace (apt-get install -y bpftrace)")
	if err := apt("install", "-y", "-qq", "bpftrace"); err != nil {
		log("%v; running apt-get update and trying again", err)
		if err := apt("update", "-qq"); err != nil {
			return "", err
		}
		if err := apt("install", "-y", "-qq", "bpftrace"); err != nil {
			return "", err
		}
	}
	return exec.LookPath("bpftrace")
}

// noSocketReason is the value of SKB_DROP_REASON_NO_SOCKET on this kernel,
// from its BTF (the enum is renumbered across kernel versions).
func noSocketReason() (uint64, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, fmt.Errorf("kernel BTF: %w", err)
	}
	var e *btf.Enum
	if err := spec.TypeByName("skb_drop_reason", &e); err != nil {
		return 0, fmt.Errorf("enum skb_drop_reason: %w", err)
	}
	for _, v := range e.Values {
		if v.Name == "SKB_DROP_REASON_NO_SOCKET" {
			return v.Value, nil
		}
	}
	return 0, fmt.Errorf("enum skb_drop_reason has no SKB_DROP_REASON_NO_SOCKET")
}

// merge appends to a the elements of b it does not hold yet.
func merge(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}
