package snmp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// ReadSelf reads the counters of this process's network namespace, from
// /proc/self/net/snmp and /proc/self/net/snmp6. A missing snmp6 (IPv6
// disabled) reads as no IPv6 counters.
func ReadSelf() (Counters, error) {
	return readDir("/proc/self/net")
}

// ReadNetns reads the counters of the network namespace that nsPath names:
// /proc/PID/ns/net, /run/netns/NAME, /proc/self/fd/N of an open namespace
// file... "" means this process's namespace (ReadSelf). It needs
// CAP_SYS_ADMIN, for setns(2).
//
// It enters the namespace on a new OS thread locked to a new goroutine, so
// the caller's thread and the rest of the process stay where they are. If
// that thread cannot return to its original namespace, it is left locked so
// that the Go runtime ends it rather than reusing it.
func ReadNetns(nsPath string) (Counters, error) {
	if nsPath == "" {
		return ReadSelf()
	}
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer unix.Close(target)

	type result struct {
		c   Counters
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, restored, err := readInNetns(target)
		if restored {
			runtime.UnlockOSThread()
		} // else: the goroutine exits locked, and the runtime ends the thread.
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, r.err)
	}
	return r.c, nil
}

// readInNetns moves the calling thread, which must be locked, into the
// network namespace target, reads its counters and moves back. It reports
// whether the thread is back in its original namespace.
func readInNetns(target int) (c Counters, restored bool, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("open current network namespace: %w", err)
	}
	defer unix.Close(orig)

	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		// The thread has not moved.
		return nil, true, fmt.Errorf("setns: %w", err)
	}
	c, err = readDir("/proc/thread-self/net")
	if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
		return nil, false, errors.Join(err, fmt.Errorf("return to the original network namespace: %w", rerr))
	}
	return c, true, err
}

// readDir reads and parses dir/snmp and dir/snmp6; dir/snmp6 may be absent.
// /proc/.../net files show the namespace of the task they are opened
// through, at the time they are opened.
func readDir(dir string) (Counters, error) {
	snmp, err := os.Open(dir + "/snmp")
	if err != nil {
		return nil, err
	}
	defer snmp.Close()

	snmp6, err := os.Open(dir + "/snmp6")
	switch {
	case err == nil:
		defer snmp6.Close()
		return Parse(snmp, snmp6)
	case errors.Is(err, fs.ErrNotExist):
		return Parse(snmp, nil)
	default:
		return nil, err
	}
}
