package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// taskCPU is the CPU time, in ns, that all threads of process pid have run
// so far (the first field of each /proc/PID/task/TID/schedstat): exact, and
// readable while the process runs, unlike its rusage.
func taskCPU(pid int) (int64, error) {
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0, err
	}
	if len(paths) == 0 {
		return 0, fmt.Errorf("process %d: no tasks", pid)
	}
	var sum int64
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that just exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		sum += n
	}
	return sum, nil
}

// settle waits until process pid has stopped using CPU (less than 2 ms in
// 100 ms), e.g. a tracer draining its ring buffer after the flood, for 5 s
// at most.
func settle(pid int) {
	last, err := taskCPU(pid)
	if err != nil {
		return
	}
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		now, err := taskCPU(pid)
		if err != nil || now-last < int64(2*time.Millisecond) {
			return
		}
		last = now
	}
}

// peakRSSMiB is the process's peak resident set size (VmHWM), in MiB.
func peakRSSMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("process %d: no VmHWM", pid)
}

// rusageCPU is the user + system time of an exited child, from its rusage.
func rusageCPU(ps *os.ProcessState) (time.Duration, error) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, fmt.Errorf("no rusage for the process")
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// qemuProcesses lists the running qemu-system-* processes ("PID comm"):
// the heavy neighbours (VM tests) that make measurements here unreliable.
func qemuProcesses() []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	var out []string
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		comm := strings.TrimSpace(string(b))
		if strings.HasPrefix(comm, "qemu-system") {
			out = append(out, filepath.Base(filepath.Dir(p))+" "+comm)
		}
	}
	return out
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machine describes this machine in one line: CPU model and count, memory,
// kernel.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64); err == nil {
					mem = fmt.Sprintf(", %.1f GiB RAM", kb/1024/1024)
				}
			}
		}
	}
	var u syscall.Utsname
	release := "?"
	if syscall.Uname(&u) == nil {
		var b []byte
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		release = string(b)
	}
	return fmt.Sprintf("%d vCPU %s%s, Linux %s, %s", runtime.NumCPU(), model, mem, release, runtime.Version())
}

// tailBuffer is an io.Writer that keeps the last max bytes written to it,
// safe to read while a child process writes to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Contains reports whether what is kept contains s.
func (t *tailBuffer) Contains(s string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Contains(t.buf, []byte(s))
}

// cpuStat is the machine's CPU time from the first line of /proc/stat, in
// clock ticks (USER_HZ, 100 per second on Linux).
type cpuStat struct {
	steal uint64
}

// readCPUStat reads /proc/stat's total line.
func readCPUStat() (cpuStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuStat{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return cpuStat{}, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	return cpuStat{steal: v[7]}, nil
}

// userHZ is the unit of /proc/stat.
const userHZ = 100
