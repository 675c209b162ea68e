#!/bin/sh
# /init of the vmtest guest (busybox sh, PID 1), copied in by run.sh.
#
# Sets up what a privileged eBPF test expects from a normal root shell, runs
# the test command from /etc/vmtest/cmd, prints a VMTEST-RESULT marker line
# that run.sh parses, and powers the VM off. If /init ever exits, the kernel
# panics and panic=-1 + -no-reboot make QEMU quit, so a broken init cannot
# hang until the host timeout.

export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin # real tools the host added before busybox applets
export HOME=/root TMPDIR=/tmp
/bin/busybox --install -s /bin

# Mount failures are reported, not fatal: a kernel lacking one filesystem
# should still run the tests that do not need it.
mnt() { # TYPE DIR
	mkdir -p "$2"
	mount -t "$1" "$1" "$2" || echo "VMTEST-WARN mount $1 on $2 failed"
}
mnt proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
mnt devpts /dev/pts
mnt tmpfs /dev/shm
mnt tmpfs /tmp
mnt tmpfs /run
mnt debugfs /sys/kernel/debug
mnt tracefs /sys/kernel/tracing
mnt bpf /sys/fs/bpf
mnt cgroup2 /sys/fs/cgroup

hostname vmtest
ip link set lo up
# Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (busybox ash has -l).
# shellcheck disable=SC3045
ulimit -l unlimited

while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "$mod" || echo "VMTEST-WARN insmod $mod failed"
done </etc/vmtest/modules

KERNEL=$(cat /etc/vmtest/kernel)
export UDPTRACE_IN_VM=1 UDPTRACE_VM_KERNEL="$KERNEL"
# shellcheck source=/dev/null
. /etc/vmtest/env

uname -a
echo "VMTEST-BOOTED kernel=$KERNEL release=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"

# shellcheck source=/dev/null
. /etc/vmtest/cmd
cd /
"$@"
rc=$?

# A leading newline keeps the marker at the start of a line even when the
# test's last output line had none.
echo
echo "VMTEST-RESULT kernel=$KERNEL release=$(uname -r) rc=$rc"
sync
echo o >/proc/sysrq-trigger
sleep 10
# -no-reboot turns a reboot into QEMU exiting, should power-off not work.
reboot -f
