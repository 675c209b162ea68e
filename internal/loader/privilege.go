package loader

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capability is one udptrace may need, and what for (see Privileges in the
// README, where each was found necessary by running without it).
type capability struct {
	bit  uint
	name string
	why  string
}

var (
	capBPF     = capability{unix.CAP_BPF, "CAP_BPF", "to create BPF maps and load BPF programs"}
	capPerfmon = capability{unix.CAP_PERFMON, "CAP_PERFMON", "to load tracing programs, which read kernel memory"}
	// Before 5.8 there is no CAP_BPF or CAP_PERFMON: CAP_SYS_ADMIN does both.
	capSysAdminBPF = capability{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "to load BPF programs: this kernel, older than 5.8, has no CAP_BPF and CAP_PERFMON"}
	capSysAdmin    = capability{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "to enter the network namespace given with --netns and read its counters"}
	capSyslog      = capability{unix.CAP_SYSLOG, "CAP_SYSLOG", "to read kernel addresses in /proc/kallsyms"}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	capSysResource = capability{unix.CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE",
		"to raise RLIMIT_MEMLOCK, to which this kernel (older than 5.11) charges BPF memory; or raise the limit before: ulimit -l unlimited"}
)

// PrivilegeError says which capabilities udptrace lacks for what it was
// asked to do, or why the ones it has do not count. It matches
// ErrPermission.
type PrivilegeError struct {
	Missing []string // e.g. "CAP_PERFMON"; empty when none is missing as such
	text    string
	err     error
}

func (e *PrivilegeError) Error() string        { return e.text }
func (e *PrivilegeError) Unwrap() error        { return e.err }
func (e *PrivilegeError) Is(target error) bool { return target == ErrPermission }

// missing builds the error for capabilities udptrace lacks.
func missing(caps ...capability) *PrivilegeError {
	e := &PrivilegeError{}
	var parts []string
	for _, c := range caps {
		e.Missing = append(e.Missing, c.name)
		parts = append(parts, fmt.Sprintf("%s (%s)", c.name, c.why))
	}
	it := "it"
	if len(caps) > 1 {
		it = "them"
	}
	e.text = fmt.Sprintf("permission denied: missing %s: run udptrace as root, or grant %s (setcap on the binary, --cap-add in a container; see Privileges in the README)",
		strings.Join(parts, " and "), it)
	return e
}

// requirePrivileges fails early, naming what is missing, when udptrace's
// effective capabilities cannot do what cfg asks. Inside a user namespace
// other than the host's, capabilities do not count for BPF and the kernel's
// answer decides (see privilege).
func requirePrivileges(cfg Config) error {
	has, err := effectiveCaps()
	if err != nil || !initialUserNS() || has(unix.CAP_SYS_ADMIN) {
		return nil
	}
	var need []capability
	if lastCap() < unix.CAP_PERFMON {
		need = append(need, capSysAdminBPF)
	} else {
		for _, c := range []capability{capBPF, capPerfmon} {
			if !has(c.bit) {
				need = append(need, c)
			}
		}
	}
	for _, path := range cfg.PrimeNetns {
		if otherNetns(path) {
			need = append(need, capSysAdmin)
			break
		}
	}
	if len(need) > 0 {
		return missing(need...)
	}
	return nil
}

// privilege names the fix for EPERM and EACCES when they come from missing
// privilege. With CAP_BPF and CAP_PERFMON (or as root), EPERM is the kernel
// refusing the program type itself (fentry on a kernel without BPF
// trampolines, lockdown): that is not a privilege issue.
func privilege(err error) error {
	if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
		return err
	}
	if !initialUserNS() {
		return &PrivilegeError{err: err, text: fmt.Sprintf("permission denied: running in a user namespace (a rootless container?), where capabilities do not count for BPF: "+
			"udptrace needs CAP_BPF and CAP_PERFMON in the host's initial user namespace (%v)", err)}
	}
	if privileged() {
		return err
	}
	has, cerr := effectiveCaps()
	if cerr != nil || lastCap() < unix.CAP_PERFMON {
		return missing(capSysAdminBPF)
	}
	var need []capability
	for _, c := range []capability{capBPF, capPerfmon} {
		if !has(c.bit) {
			need = append(need, c)
		}
	}
	return missing(need...)
}

// memlockError names CAP_SYS_RESOURCE when RLIMIT_MEMLOCK could not be
// raised for lack of it.
func memlockError(err error) error {
	if errors.Is(err, unix.EPERM) && initialUserNS() && privileged() {
		e := missing(capSysResource)
		e.err = err
		return e
	}
	return privilege(fmt.Errorf("raise RLIMIT_MEMLOCK: %w", err))
}

// privileged reports whether the process has CAP_SYS_ADMIN, or CAP_BPF and
// CAP_PERFMON, in its effective set.
func privileged() bool {
	has, err := effectiveCaps()
	if err != nil {
		return os.Geteuid() == 0
	}
	return has(unix.CAP_SYS_ADMIN) || (has(unix.CAP_BPF) && has(unix.CAP_PERFMON))
}

// effectiveCaps reads this thread's effective capability set.
func effectiveCaps() (func(c uint) bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, err
	}
	return func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }, nil
}

// lastCap is the highest capability this kernel knows
// (/proc/sys/kernel/cap_last_cap); CAP_BPF and CAP_PERFMON came in 5.8.
func lastCap() uint {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return unix.CAP_LAST_CAP
	}
	return uint(n)
}

// initUserNSInode is the inode of the initial user namespace
// (PROC_USER_INIT_INO in linux/proc_ns.h).
const initUserNSInode = 0xEFFFFFFD

// initialUserNS reports whether udptrace runs in the host's user namespace,
// where capabilities count for BPF (true when it cannot tell).
func initialUserNS() bool {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &st); err != nil {
		return true
	}
	return st.Ino == initUserNSInode
}

// otherNetns reports whether path is a network namespace other than this
// thread's (false when either cannot be read: the caller's own use of path
// will say why).
func otherNetns(path string) bool {
	var there, here unix.Stat_t
	if unix.Stat(path, &there) != nil || unix.Stat("/proc/thread-self/ns/net", &here) != nil {
		return false
	}
	return there.Ino != here.Ino || there.Dev != here.Dev
}

// kallsymsHidden says why /proc/kallsyms shows no kernel addresses to
// udptrace, naming the fix.
func kallsymsHidden() string {
	restrict := sysctl("kernel/kptr_restrict")
	if restrict == "2" {
		return "/proc/kallsyms hides kernel addresses from everyone (kernel.kptr_restrict=2): set kernel.kptr_restrict=1 and grant udptrace CAP_SYSLOG to see them"
	}
	if has, err := effectiveCaps(); err == nil && !has(unix.CAP_SYSLOG) {
		return fmt.Sprintf("/proc/kallsyms hides kernel addresses from udptrace, which lacks CAP_SYSLOG (kernel.kptr_restrict=%s, kernel.perf_event_paranoid=%s): grant it CAP_SYSLOG to see them",
			restrict, sysctl("kernel/perf_event_paranoid"))
	}
	return fmt.Sprintf("/proc/kallsyms hides kernel addresses from udptrace (kernel.kptr_restrict=%s)", restrict)
}

// sysctl reads /proc/sys/name, or "?".
// perfEventPrivilege names the fix when a kprobe cannot be attached for want
// of privilege: kprobes are perf events, and Debian's and Ubuntu's kernels
// add a kernel.perf_event_paranoid level 3 (their default) that keeps
// perf_event_open for CAP_SYS_ADMIN, whatever CAP_PERFMON says. Seen on
// Debian 5.10 with CAP_BPF and CAP_PERFMON: EACCES.
func perfEventPrivilege(section string, err error) error {
	if !strings.HasPrefix(section, "kprobe/") && !strings.HasPrefix(section, "kretprobe/") {
		return err
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if has, cerr := effectiveCaps(); cerr != nil || has(unix.CAP_SYS_ADMIN) {
		return err
	}
	level := sysctl("kernel/perf_event_paranoid")
	if n, perr := strconv.Atoi(level); perr != nil || n <= 2 {
		return err
	}
	return &PrivilegeError{Missing: []string{"CAP_SYS_ADMIN"}, err: err, text: fmt.Sprintf(
		"permission denied: missing CAP_SYS_ADMIN (the kprobe backend opens perf events, which kernel.perf_event_paranoid=%s, "+
			"a Debian and Ubuntu setting, keeps for CAP_SYS_ADMIN): grant it, or set kernel.perf_event_paranoid=2 (%v)", level, err)}
}

func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
