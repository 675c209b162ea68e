package loader

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// RingBufferError is the kernel refusing to create the ring buffer at the
// size asked (--ring-size). No backend can run without it.
type RingBufferError struct {
	Size int
	Err  error
	// Limit, Cgroup: the memory cgroup limit the ring is charged to, when
	// there is one (0, "" otherwise).
	Limit  uint64
	Cgroup string
}

func (e *RingBufferError) Error() string {
	s := fmt.Sprintf("cannot create a ring buffer of %s (--ring-size %s): %v", mib(uint64(e.Size)), sizeString(e.Size), e.Err)
	switch {
	case errors.Is(e.Err, unix.ENOMEM) && e.Limit > 0:
		s += fmt.Sprintf(": the kernel charges it to udptrace's memory cgroup, limited to %s (%s): choose a smaller --ring-size (default %s) or raise that limit",
			mib(e.Limit), e.Cgroup, sizeString(DefaultRingSize))
	case errors.Is(e.Err, unix.ENOMEM):
		s += fmt.Sprintf(": the kernel has not that much memory to give: choose a smaller --ring-size (default %s)", sizeString(DefaultRingSize))
	default:
		s += fmt.Sprintf(": choose another --ring-size (default %s)", sizeString(DefaultRingSize))
	}
	return s
}

func (e *RingBufferError) Unwrap() error { return e.Err }

// mib writes a size in MiB, or KiB below one MiB.
func mib(n uint64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// sizeString writes a size as --ring-size takes it: 8M, 512K, 1000.
func sizeString(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return strconv.Itoa(n)
}

// newRing creates the ring buffer of the events map on its own, so that a
// refusal names --ring-size rather than surfacing among the other maps.
func newRing(spec *ebpf.MapSpec) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(spec)
	if err == nil {
		return m, nil
	}
	if errors.Is(err, unix.EPERM) {
		return nil, privilege(fmt.Errorf("create the ring buffer: %w", err))
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return nil, fmt.Errorf("create the ring buffer: %w", err)
	}
	e := &RingBufferError{Size: int(spec.MaxEntries), Err: errno}
	if errno == unix.ENOMEM {
		e.Limit, e.Cgroup = memoryLimit()
	}
	return nil, e
}

// memoryLimit returns the lowest memory limit among this process's memory
// cgroup and its ancestors (cgroup v2 memory.max, or v1
// memory.limit_in_bytes) and the directory that sets it; 0 when none is
// set or it cannot be read.
func memoryLimit() (uint64, string) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	var dirs []string // candidate cgroup directories, deepest first
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
				if _, err := os.Stat(path.Join(root, "cgroup.controllers")); err == nil {
					dirs = append(dirs, ancestors(root, parts[2], "memory.max")...)
					break
				}
			}
		case hasController(parts[1], "memory"):
			dirs = append(dirs, ancestors("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")...)
		}
	}
	var best uint64
	var where string
	for _, file := range dirs {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n >= 1<<62 { // "max", or v1's "unlimited" (PAGE_COUNTER_MAX pages)
			continue
		}
		if best == 0 || n < best {
			best, where = n, path.Dir(file)
		}
	}
	return best, where
}

// ancestors returns the limit file of cgroup dir under root and of each of
// its ancestors, the root excluded (it has no limit).
func ancestors(root, dir, file string) []string {
	var out []string
	for d := path.Clean("/" + dir); d != "/"; d = path.Dir(d) {
		out = append(out, path.Join(root, d, file))
	}
	return out
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
