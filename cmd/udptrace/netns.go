package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsRef names a network namespace by inode, with a path that opens it
// (needed to read its /proc/net/snmp).
type netnsRef struct {
	inode uint32
	path  string // "" for udptrace's own namespace
}

// resolveNetns accepts "", a name under /var/run/netns, a path, or an inode.
func resolveNetns(arg string) (netnsRef, error) {
	switch {
	case arg == "":
		ino, err := nsInode("/proc/self/ns/net")
		return netnsRef{inode: ino}, err
	case isDigits(arg):
		n, err := strconv.ParseUint(arg, 10, 32)
		if err != nil {
			return netnsRef{}, fmt.Errorf("inode out of range")
		}
		return findByInode(uint32(n))
	case strings.Contains(arg, "/"):
		ino, err := nsInode(arg)
		return netnsRef{inode: ino, path: arg}, err
	default:
		for _, dir := range []string{"/var/run/netns", "/run/netns"} {
			p := filepath.Join(dir, arg)
			if ino, err := nsInode(p); err == nil {
				return netnsRef{inode: ino, path: p}, nil
			}
		}
		return netnsRef{}, fmt.Errorf("no network namespace named %q in /var/run/netns (see ip netns list)", arg)
	}
}

// netnsError is what an error resolving --netns arg means: bad input
// (exit 2), except a namespace the kernel does not let udptrace open, which
// is a missing privilege (exit 1).
func netnsError(arg string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("--netns %q: %w: the namespace of a process udptrace may not inspect takes CAP_SYS_PTRACE (or name it: ip netns attach NAME PID)", arg, err)
	}
	return usagef("--netns %q: %v", arg, err)
}

// nsInode returns the inode of a network namespace file, refusing files that
// are not namespaces, and namespaces of another type (/proc/PID/ns/mnt).
// Only a namespace file is opened: whatever path it is given, it opens no
// device or FIFO.
func nsInode(path string) (uint32, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return 0, err
	}
	if fs.Type != unix.NSFS_MAGIC {
		return 0, fmt.Errorf("%q is not a namespace file", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// NS_GET_NSTYPE (Linux 4.11): earlier kernels answer ENOTTY, and the
	// namespace is taken to be a network one.
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err == nil && t != unix.CLONE_NEWNET {
		return 0, fmt.Errorf("%q is a namespace, but not a network namespace", path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return uint32(st.Ino), nil
}

// findByInode looks for a path to the namespace with that inode among named
// namespaces and running processes.
func findByInode(ino uint32) (netnsRef, error) {
	self, err := nsInode("/proc/self/ns/net")
	if err == nil && self == ino {
		return netnsRef{inode: ino}, nil
	}
	named, _ := filepath.Glob("/var/run/netns/*")
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range append(named, procs...) {
		if got, err := nsInode(p); err == nil && got == ino {
			return netnsRef{inode: ino, path: p}, nil
		}
	}
	return netnsRef{}, fmt.Errorf("no network namespace with inode %d (looked in /var/run/netns and /proc/*/ns/net)", ino)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
