package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// progStat is one BPF program's accumulated run statistics
// (kernel.bpf_stats_enabled must be on for them to grow).
type progStat struct {
	ID        uint32
	Name      string
	RunTimeNS uint64
	RunCount  uint64
}

// tracerPrograms returns the statistics of every BPF program the process
// pid holds a file descriptor of: exactly the tracer's programs, whatever
// else is loaded on this machine. /proc/PID/fdinfo of a program fd carries
// prog_id, run_time_ns and run_cnt; the name comes from the program's info.
func tracerPrograms(pid int) (map[uint32]progStat, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	progs := map[uint32]progStat{}
	for _, e := range ents {
		p, ok := readProgFdinfo(filepath.Join(dir, e.Name()))
		if !ok {
			continue
		}
		if _, seen := progs[p.ID]; seen {
			continue
		}
		p.Name = progName(p.ID)
		progs[p.ID] = p
	}
	if len(progs) == 0 {
		return nil, fmt.Errorf("process %d holds no BPF program", pid)
	}
	return progs, nil
}

// readProgFdinfo parses one fdinfo file; ok is false when it is not a BPF
// program's (or vanished meanwhile).
func readProgFdinfo(path string) (p progStat, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return p, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var haveID bool
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), ":")
		if !found {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "prog_id":
			p.ID, haveID = uint32(n), true
		case "run_time_ns":
			p.RunTimeNS = n
		case "run_cnt":
			p.RunCount = n
		}
	}
	return p, haveID
}

// progName is the program's name as the kernel keeps it (15 bytes at most).
func progName(id uint32) string {
	prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return fmt.Sprintf("prog#%d", id)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil || info.Name == "" {
		return fmt.Sprintf("prog#%d", id)
	}
	return info.Name
}

// progDelta is what each program did between two snapshots, the busiest
// (by run time) first; programs that did not run are left out.
func progDelta(before, after map[uint32]progStat) []progStat {
	var out []progStat
	for id, a := range after {
		b := before[id]
		d := progStat{ID: id, Name: a.Name, RunTimeNS: a.RunTimeNS - b.RunTimeNS, RunCount: a.RunCount - b.RunCount}
		if d.RunCount > 0 {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].RunTimeNS != out[j].RunTimeNS {
			return out[i].RunTimeNS > out[j].RunTimeNS
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// foreignProg is a tracing BPF program the bench's tracer does not hold.
type foreignProg struct {
	id   uint32
	desc string // name(type,id N)
}

// foreignTracers lists the tracing BPF programs loaded on this machine that
// the bench's current tracer (its program ids in own) does not hold: another
// tool's, or another test run's, whose programs would run on the flood too
// and make every mode, baseline included, slower.
func foreignTracers(own map[uint32]progStat) []foreignProg {
	var out []foreignProg
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return out
		}
		id = next
		if _, mine := own[uint32(id)]; mine {
			continue
		}
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		info, err := prog.Info()
		prog.Close()
		if err != nil {
			continue
		}
		switch info.Type {
		case ebpf.TracePoint, ebpf.RawTracepoint, ebpf.RawTracepointWritable, ebpf.Tracing, ebpf.Kprobe, ebpf.PerfEvent:
			out = append(out, foreignProg{uint32(id), fmt.Sprintf("%s(%s,id %d)", info.Name, info.Type, id)})
		}
	}
}
