package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goBenchPattern selects the user-space per-event benchmarks of
// internal/events: decoding a ring-buffer record, printing it as JSON or as a
// table row, and both together.
const goBenchPattern = `Decode|Format|JSON|PrinterText$`

// goBenchLine matches a result line of go test -bench, e.g.
// "BenchmarkDecodePrintJSON-2   3575941   335.2 ns/op   0 B/op   0 allocs/op".
var goBenchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(.*)$`)

// goBench is one benchmark's result.
type goBench struct {
	name    string  // without "Benchmark" and the -GOMAXPROCS suffix
	nsPerOp float64 //
	rest    string  // B/op, allocs/op
}

// runGoBenchmarks runs the events benchmarks with goTool in the module at
// dir and returns their results by name.
func runGoBenchmarks(ctx context.Context, goTool, dir, benchtime string) (map[string]goBench, []string, error) {
	cmd := exec.CommandContext(ctx, goTool, "test", "-run", "^$", "-bench", goBenchPattern,
		"-benchtime", benchtime, "-benchmem", "-count", "1", "./internal/events")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("go test -bench: %w: %s", err, lastLines(string(out), 5))
	}
	res := map[string]goBench{}
	var order []string
	for line := range strings.SplitSeq(string(out), "\n") {
		m := goBenchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		ns, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		res[m[1]] = goBench{name: m[1], nsPerOp: ns, rest: strings.Join(strings.Fields(m[3]), " ")}
		order = append(order, m[1])
	}
	if len(res) == 0 {
		return nil, nil, fmt.Errorf("go test -bench printed no result: %s", lastLines(string(out), 5))
	}
	return res, order, nil
}

// decodeFormat is the user-space cost of one event on a path: the sum of
// the named benchmarks' ns/op, and the events per second that allows on one
// CPU. ok is false when a benchmark is missing.
func decodeFormat(res map[string]goBench, names ...string) (ns, perSec float64, ok bool) {
	for _, n := range names {
		b, found := res[n]
		if !found {
			return 0, 0, false
		}
		ns += b.nsPerOp
	}
	if ns <= 0 {
		return 0, 0, false
	}
	return ns, 1e9 / ns, true
}
