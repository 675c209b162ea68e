#!/bin/sh
# Guest side of the kernel x backend test matrix (busybox sh, run by
# vmtest/run.sh inside each kernel; the host side is vmtest/matrix).
#
# Usage: matrix.sh TESTBINARY...
#
# For each backend in $MATRIX_BACKENDS it runs every TESTBINARY (Go test
# binaries built with `go test -c`) with UDPTRACE_BACKEND=<backend> and
# UDPTRACE_BIN=/bin/udptrace, streams their output to the console, and then
# prints one result line per backend:
#
#   MATRIX kernel=<k> backend=<b> result=pass|fail|unsupported secs=<s> reason=<text>
#
#   unsupported  a binary printed "VMTEST-UNSUPPORTED ... reason=..." (its
#                TestMain found the backend cannot run here) and none failed
#   fail         a binary exited non-zero (reason names it and the failed
#                tests), or one binary ran tests where another said the
#                backend is unsupported
#   pass         every binary ran its tests and exited 0
#
# The exit status is 1 if any backend failed, 2 on bad usage, else 0.
#
# Environment:
#   MATRIX_BACKENDS      backends to run (default "tracepoint fentry kprobe")
#   MATRIX_TEST_TIMEOUT  -test.timeout of each binary run (default 5m)
#   UDPTRACE_BIN         the udptrace binary the e2e tests run (default /bin/udptrace)
#   UDPTRACE_VM_KERNEL   the kernel's short name, set by vmtest's /init

set -u

backends=${MATRIX_BACKENDS:-tracepoint fentry kprobe}
timeout=${MATRIX_TEST_TIMEOUT:-10m}
kernel=${UDPTRACE_VM_KERNEL:-$(uname -r)}
UDPTRACE_BIN=${UDPTRACE_BIN:-/bin/udptrace}
export UDPTRACE_BIN

if [ $# -eq 0 ]; then
	echo "usage: matrix.sh TESTBINARY..." >&2
	exit 2
fi
for bin in "$@" "$UDPTRACE_BIN"; do
	if [ ! -x "$bin" ]; then
		echo "matrix.sh: $bin is missing or not executable" >&2
		exit 2
	fi
done

# Seconds since boot, with hundredths (busybox has no date +%N).
now() { cut -d' ' -f1 /proc/uptime; }

# elapsed START: seconds since START (a now() value), to one decimal.
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# failed_tests OUT: the top-level tests that failed or were running when
# -test.timeout fired, space-separated.
failed_tests() {
	awk '
		/^--- FAIL: / { printf "%s%s", sep, $3; sep = " " }
		/^panic: test timed out/ { timedout = 1 }
		timedout && /^\t\t[A-Za-z]/ { printf "%s%s(timeout)", sep, $1; sep = " " }
	' "$1"
}

status=0
for b in $backends; do
	start=$(now)
	ran="" unsupported="" failures="" reason=""
	for bin in "$@"; do
		name=${bin##*/}
		out=/tmp/matrix-output
		bstart=$(now)
		echo "=== MATRIX-RUN kernel=$kernel backend=$b binary=$name"
		# Output goes to the console as it comes (a slow VM shows progress)
		# and to $out to be parsed. In a pipeline sh reports tee's status,
		# so the binary's own is passed through a file.
		{
			UDPTRACE_BACKEND=$b "$bin" -test.v -test.count=1 -test.timeout="$timeout" 2>&1
			echo $? >/tmp/matrix-rc
		} | tee "$out"
		rc=$(cat /tmp/matrix-rc)
		# Keep the markers at the start of a line after output with no final newline.
		[ -z "$(tail -c 1 "$out")" ] || echo
		marker=$(grep -m 1 '^VMTEST-UNSUPPORTED ' "$out")
		if [ "$rc" != 0 ]; then
			tests=$(failed_tests "$out")
			failures="$failures${failures:+; }$name rc=$rc${tests:+ failed: $tests}"
		elif [ -n "$marker" ]; then
			unsupported="$unsupported${unsupported:+ }$name"
			reason=${marker#*reason=}
		else
			ran="$ran${ran:+ }$name"
		fi
		echo "=== MATRIX-RUN-END kernel=$kernel backend=$b binary=$name rc=$rc secs=$(elapsed "$bstart")"
	done
	if [ -n "$failures" ]; then
		result=fail reason=$failures
	elif [ -n "$unsupported" ] && [ -n "$ran" ]; then
		result=fail reason="inconsistent: $unsupported said unsupported ($reason) but $ran ran its tests"
	elif [ -n "$unsupported" ]; then
		result=unsupported
	else
		result=pass reason=-
	fi
	[ "$result" != fail ] || status=1
	echo "MATRIX kernel=$kernel backend=$b result=$result secs=$(elapsed "$start") reason=$reason"
done
exit "$status"
