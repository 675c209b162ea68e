#!/usr/bin/env bash
# Run a static test binary inside real Debian kernels under QEMU.
#
# The host kernel lacks kprobes and refuses fentry, so the tracer's other
# attach paths can only be exercised in a VM. Each kernel boots straight into
# a busybox initramfs whose /init runs the test binary and reports its exit
# code on the serial console. See vmtest/README.md.
#
# Usage: vmtest/run.sh [options] -- TESTBINARY [ARGS...]
set -euo pipefail
shopt -s extglob  # for stripping terminal escapes from the console

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)

KERNELS=${VMTEST_KERNELS:-"5.10 6.1 6.12"}
CACHE=${VMTEST_CACHE:-"$REPO/.cache/vmtest"}
TIMEOUT=${VMTEST_TIMEOUT:-900}
MEM=${VMTEST_MEM:-1024}
SMP=${VMTEST_SMP:-2}
# KVM is present on the dev machines but guests hang in early boot; TCG works.
ACCEL=${VMTEST_ACCEL:-tcg}
EXTRA_APPEND=""
FETCH_ONLY=0
PREFIX=1
REFRESH=0
MODULES=(veth)
FILES=()
ENVS=()

usage() {
	cat <<'EOF'
Usage: vmtest/run.sh [options] -- TESTBINARY [ARGS...]

Boots each kernel in QEMU with an initramfs holding busybox, TESTBINARY (at
/bin/<name>), the requested modules, and runs TESTBINARY ARGS... as root.

Options:
  --kernels "LIST"   kernels to run, from: 5.10 6.1 6.12 (default: all three)
  --cache DIR        download/log cache (default: <repo>/.cache/vmtest)
  --timeout SECS     per-kernel limit for boot + run (default: 900)
  --file SRC[:DST]   copy a file or directory into the guest; DST defaults to
                     /bin/<basename of SRC> (repeatable)
  --module NAME      also load kernel module NAME and its dependencies
                     (repeatable; veth is always loaded)
  --env KEY=VALUE    extra environment for the test binary (repeatable)
  --append "ARGS"    extra kernel command line
  --mem MB, --smp N  guest size (default: 1024 MB, 2 CPUs)
  --accel tcg|kvm    QEMU accelerator (default: tcg; KVM hangs on this host)
  --no-prefix        do not prefix console lines with [kernel]
  --refresh          re-resolve kernel packages even when cached
  --fetch-only       only download and unpack the kernels, run nothing
  -h, --help         this text

The guest sees UDPTRACE_IN_VM=1 and UDPTRACE_VM_KERNEL=<short name>.
Console logs go to <cache>/logs/<binary>.<kernel>.log. Exit status is 0 only
if every kernel ran the binary to exit code 0.

Also usable as a go test runner (absolute path needed; go test runs it from
the package directory):
  CGO_ENABLED=0 go test -exec "$PWD/vmtest/run.sh --kernels 6.1 --" ./pkg
EOF
}

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 2
}

# Short name -> "suite package...". The first package the archive still has
# wins; metapackages are followed to the versioned image they depend on. 6.1
# pins the ABI the kernel notes were measured on but falls back to the
# current 6.1 once the archive drops it.
kernel_spec() {
	case $1 in
	5.10) echo "bullseye linux-image-cloud-amd64" ;;
	6.1) echo "bookworm linux-image-6.1.0-50-cloud-amd64 linux-image-cloud-amd64" ;;
	6.12) echo "bookworm linux-image-6.12-cloud-amd64" ;;
	*) return 1 ;;
	esac
}

while (($#)); do
	case $1 in
	--kernels | --cache | --timeout | --file | --module | --env | --append | --mem | --smp | --accel)
		(($# >= 2)) || die "$1 needs a value" ;;&
	--kernels) KERNELS=$2; shift 2 ;;
	--cache) CACHE=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--file) FILES+=("$2"); shift 2 ;;
	--module) MODULES+=("$2"); shift 2 ;;
	--env) ENVS+=("$2"); shift 2 ;;
	--append) EXTRA_APPEND=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--smp) SMP=$2; shift 2 ;;
	--accel) ACCEL=$2; shift 2 ;;
	--no-prefix) PREFIX=""; shift ;;
	--refresh) REFRESH=1; shift ;;
	--fetch-only) FETCH_ONLY=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; break ;;
	-*) usage >&2; die "unknown option $1" ;;
	*) break ;;
	esac
done

read -r -a KERNEL_LIST <<<"$KERNELS"
((${#KERNEL_LIST[@]})) || die "no kernels given"
for k in "${KERNEL_LIST[@]}"; do
	kernel_spec "$k" >/dev/null || die "unknown kernel '$k' (known: 5.10 6.1 6.12)"
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds"
for e in "${ENVS[@]}"; do
	[[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants KEY=VALUE, got '$e'"
done

TEST_BIN="" TEST_ARGS=()
if ((!FETCH_ONLY)); then
	(($#)) || {
		usage >&2
		die "no test binary given"
	}
	TEST_BIN=$1
	shift
	TEST_ARGS=("$@")
	[[ -f $TEST_BIN ]] || die "test binary $TEST_BIN not found"
	# A dynamically linked binary dies in the guest with a confusing ENOENT.
	# (Process substitution: grep -q quitting early must not SIGPIPE a pipeline.)
	if grep -qa '/ld-linux' < <(head -c 8192 "$TEST_BIN"); then
		log "warning: $TEST_BIN looks dynamically linked; build it with CGO_ENABLED=0"
	fi
fi

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
WORK=$(mktemp -d "$CACHE/tmp.XXXXXX")
QEMU_PID=""
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	[[ -z $QEMU_PID ]] || kill "$QEMU_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- host tools

ensure_host_tools() {
	local -A want=(
		[qemu-system-x86_64]=qemu-system-x86 [cpio]=cpio [xz]=xz-utils
		[dpkg-deb]=dpkg [apt-get]=apt [timeout]=coreutils [flock]=util-linux
		[gzip]=gzip
	)
	local cmd missing=()
	for cmd in "${!want[@]}"; do
		command -v "$cmd" >/dev/null || missing+=("${want[$cmd]}")
	done
	[[ -r /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
	((${#missing[@]})) || return 0
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
	((EUID == 0)) || die "missing ${missing[*]}; run as root so they can be installed"
	log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ------------------------------------------------------------ Debian archive

# The mirrors come from the host's own apt configuration so that the script
# follows whatever proxy or mirror the machine is set up with.
MIRROR="" SECURITY_MIRROR=""
discover_mirrors() {
	MIRROR=${VMTEST_DEBIAN_MIRROR:-}
	SECURITY_MIRROR=${VMTEST_DEBIAN_SECURITY_MIRROR:-}
	[[ -n $MIRROR && -n $SECURITY_MIRROR ]] && return 0
	local uri
	while read -r uri; do
		uri=${uri%/}
		case $uri in
		*/debian) [[ -n $MIRROR ]] || MIRROR=$uri ;;
		*/debian-security) [[ -n $SECURITY_MIRROR ]] || SECURITY_MIRROR=$uri ;;
		esac
	done < <(
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
			[[ -r $f ]] || continue
			# deb822 "URIs:" fields and one-line "deb [options] URI suite..." entries.
			awk '
				/^[[:space:]]*URIs:/ { for (i = 2; i <= NF; i++) print $i }
				$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i }
			' "$f"
		done
	)
	[[ -n $MIRROR ]] || die "no Debian mirror in /etc/apt; set VMTEST_DEBIAN_MIRROR"
}

# apt state per suite lives in the cache, apart from the host's, so another
# release's lists never leak into the host's package view.
APT_OPTS=()
apt_setup() {
	local suite=$1 dir="$CACHE/apt/$1"
	local key=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	{
		echo "deb [signed-by=$key] $MIRROR $suite main"
		if [[ $suite == bookworm ]]; then
			echo "deb [signed-by=$key] $MIRROR $suite-updates main"
			# Newer 6.1 ABIs and the 6.12 backport are published here only.
			[[ -z $SECURITY_MIRROR ]] || echo "deb [signed-by=$key] $SECURITY_MIRROR $suite-security main"
		fi
	} >"$dir/sources.list"
	APT_OPTS=(
		-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=/dev/null
		-o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
		-o APT::Architecture=amd64 -o APT::Architectures=amd64
		-o APT::Sandbox::User=root -o Acquire::Languages=none
		-o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
	)
}

declare -A SUITE_UPDATED=()
apt_update_suite() {
	log "apt-get update ($1)"
	apt-get "${APT_OPTS[@]}" update -qq >/dev/null
	SUITE_UPDATED[$1]=1
}

# Lists are fetched when absent, and once per run under --refresh.
apt_lists_ready() {
	local suite=$1
	[[ -z ${SUITE_UPDATED[$suite]:-} ]] || return 0
	if [[ $REFRESH == 1 || -z $(find "$CACHE/apt/$suite/lists" -maxdepth 1 -name '*Packages*' -print -quit) ]]; then
		apt_update_suite "$suite"
	fi
}

# Follow a metapackage's linux-image-* dependency down to the package that
# ships /boot/vmlinuz-*. Prints "package version" or fails.
resolve_pkg() {
	local pkg=$1 dep ver
	for _ in 1 2 3; do
		ver=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$pkg" 2>/dev/null |
			awk '/^Version:/ { print $2; exit }')
		[[ -n $ver ]] || return 1
		dep=$(apt-cache "${APT_OPTS[@]}" depends "$pkg" 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }')
		if [[ -z $dep ]]; then
			echo "$pkg $ver"
			return 0
		fi
		pkg=$dep
	done
	return 1
}

# Makes $CACHE/kernels/$1/ hold vmlinuz, the package's /boot and /lib/modules,
# and a "release" file; only the first run (or --refresh) talks to the archive.
fetch_kernel() {
	local k=$1 dir="$CACHE/kernels/$1" spec suite cands pkg ver got="" deb tmp attempt
	[[ -f $dir/ready && $REFRESH == 0 ]] && return 0
	spec=$(kernel_spec "$k")
	suite=${spec%% *}
	read -r -a cands <<<"${spec#* }"
	apt_setup "$suite"
	apt_lists_ready "$suite"
	for attempt in first retry; do
		for pkg in "${cands[@]}"; do
			got=$(resolve_pkg "$pkg") && break
			got=""
		done
		[[ -z $got && $attempt == first && -z ${SUITE_UPDATED[$suite]:-} ]] || break
		apt_update_suite "$suite" # the lists may predate the package
	done
	[[ -n $got ]] || die "kernel $k: none of ${cands[*]} found in $suite"
	read -r pkg ver <<<"$got"
	if [[ -f $dir/ready && $(cat "$dir/package") == "$pkg $ver" ]]; then
		return 0
	fi
	log "kernel $k: downloading $pkg $ver"
	tmp=$(mktemp -d "$WORK/fetch.XXXXXX")
	(cd "$tmp" && apt-get "${APT_OPTS[@]}" -qq download "$pkg=$ver")
	deb=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
	[[ -n $deb ]] || die "kernel $k: download of $pkg produced no .deb"
	mkdir "$tmp/root"
	dpkg-deb -x "$deb" "$tmp/root"
	rm -f "$deb"
	local vmlinuz
	vmlinuz=$(find "$tmp/root/boot" -name 'vmlinuz-*' -print -quit)
	[[ -n $vmlinuz ]] || die "kernel $k: $pkg has no /boot/vmlinuz-*"
	basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$tmp/release"
	ln -s "root/boot/$(basename "$vmlinuz")" "$tmp/vmlinuz"
	echo "$pkg $ver" >"$tmp/package"
	touch "$tmp/ready"
	rm -rf "$dir"
	mkdir -p "$(dirname "$dir")"
	mv "$tmp" "$dir"
}

# busybox-static is unpacked, not installed: installing it would replace a
# host's dynamic busybox package.
fetch_busybox() {
	local dir="$CACHE/busybox" tmp deb
	[[ -x $dir/bin/busybox && $REFRESH == 0 ]] && return 0
	apt_setup bookworm
	apt_lists_ready bookworm
	log "downloading busybox-static"
	tmp=$(mktemp -d "$WORK/fetch.XXXXXX")
	(cd "$tmp" && apt-get "${APT_OPTS[@]}" -qq download busybox-static)
	deb=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
	[[ -n $deb ]] || die "busybox-static download produced no .deb"
	dpkg-deb -x "$deb" "$tmp/root"
	rm -rf "$dir"
	mkdir -p "$dir/bin"
	cp "$tmp/root/bin/busybox" "$dir/bin/busybox"
	rm -rf "$tmp"
}

# ----------------------------------------------------------------- initramfs

# The initramfs is two concatenated cpio.gz archives (the kernel unpacks them
# in order): one shared by all kernels with busybox, /init and the test files,
# so the large binaries are compressed once, and a small per-kernel one with
# that kernel's modules and name.

make_cpio() { # DIR OUT
	(cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
		gzip -1 >"$2"
}

# Single-quote for /bin/sh.
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# /init runs on /bin/sh -> /bin/busybox; a file copied over either would
# leave a guest that cannot start.
check_guest_path() {
	case ${1%/} in
	/init | /bin/sh | /bin/busybox | /etc/vmtest*) die "guest path $1 is used by vmtest itself" ;;
	esac
}

build_common_initramfs() { # OUT
	local stage="$WORK/common" f src dst a
	mkdir -p "$stage"/{bin,dev,proc,sys,tmp,root,etc/vmtest,lib/modules}
	cp "$CACHE/busybox/bin/busybox" "$stage/bin/busybox"
	ln -s busybox "$stage/bin/sh"
	# The kernel opens /dev/console before /init; its built-in initramfs
	# usually provides the node, this makes sure of it.
	mknod "$stage/dev/console" c 5 1 2>/dev/null || true
	cp "$SCRIPT_DIR/init.sh" "$stage/init"
	chmod 0755 "$stage/init"
	# Go's resolver reads these; without them "localhost" does not resolve.
	printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$stage/etc/hosts"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$stage/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"

	for f in "${FILES[@]}"; do
		src=${f%%:*}
		dst=${f#*:}
		[[ $f == *:* ]] || dst=/bin/$(basename "$src")
		[[ -e $src ]] || die "--file $src: not found"
		check_guest_path "$dst"
		mkdir -p "$stage$(dirname "$dst")"
		cp -a "$src" "$stage$dst"
	done
	check_guest_path "/bin/$(basename "$TEST_BIN")"
	cp "$TEST_BIN" "$stage/bin/$(basename "$TEST_BIN")"
	chmod 0755 "$stage/bin/$(basename "$TEST_BIN")"

	{
		printf 'set --'
		for a in "/bin/$(basename "$TEST_BIN")" "${TEST_ARGS[@]}"; do
			printf ' %s' "$(shquote "$a")"
		done
		printf '\n'
	} >"$stage/etc/vmtest/cmd"
	{
		for a in "${ENVS[@]}"; do
			printf 'export %s=%s\n' "${a%%=*}" "$(shquote "${a#*=}")"
		done
	} >"$stage/etc/vmtest/env"
	make_cpio "$stage" "$1"
}

# Module lookup and dependency order, from the package's own files: Debian's
# packages ship no modules.dep (depmod runs at install), so dependencies are
# read from each module's .modinfo "depends=" entry.
declare -A MOD_SEEN=()
MOD_ORDER=()
add_module() { # MODROOT STAGE RELEASE NAME
	local modroot=$1 stage=$2 rel=$3 name=${4//-/_} path base out deps d
	[[ -z ${MOD_SEEN[$name]:-} ]] || return 0
	MOD_SEEN[$name]=1
	path=$(find "$modroot/kernel" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" \) -print -quit)
	if [[ -z $path ]]; then
		if grep -q "/$name\.ko$" < <(tr '-' '_' <"$modroot/modules.builtin" 2>/dev/null); then
			return 0 # built into this kernel
		fi
		die "kernel $rel has no module $name"
	fi
	base=$(basename "$path")
	base=${base%.xz}
	base=${base%.zst}
	base=${base%.gz}
	out="$stage/lib/modules/$rel/$base"
	mkdir -p "$(dirname "$out")"
	# busybox insmod cannot decompress, so modules go in uncompressed.
	case $path in
	*.xz) xz -dc "$path" >"$out" ;;
	*.zst) zstd -qdc "$path" >"$out" ;;
	*.gz) gzip -dc "$path" >"$out" ;;
	*) cp "$path" "$out" ;;
	esac
	# awk, not grep -m1: an early exit would SIGPIPE tr and trip pipefail.
	deps=$(tr '\0' '\n' <"$out" | awk -F= '$1 == "depends" && !seen { print $2; seen = 1 }')
	for d in ${deps//,/ }; do
		add_module "$modroot" "$stage" "$rel" "$d"
	done
	MOD_ORDER+=("/lib/modules/$rel/$base")
}

build_kernel_initramfs() { # KERNEL OUT
	local k=$1 kdir="$CACHE/kernels/$1" rel stage="$WORK/k-$1" m
	rel=$(cat "$kdir/release")
	mkdir -p "$stage/etc/vmtest" "$stage/boot"
	MOD_SEEN=()
	MOD_ORDER=()
	for m in "${MODULES[@]}"; do
		add_module "$kdir/root/lib/modules/$rel" "$stage" "$rel" "$m"
	done
	printf '%s\n' "${MOD_ORDER[@]}" >"$stage/etc/vmtest/modules"
	echo "$k" >"$stage/etc/vmtest/kernel"
	# Some loaders read the kernel config to probe features.
	cp "$kdir/root/boot/config-$rel" "$stage/boot/" 2>/dev/null || true
	make_cpio "$stage" "$2"
}

# ---------------------------------------------------------------------- run

# Microseconds since the epoch, for integer arithmetic on durations.
now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

declare -A RESULT=() BOOT_S=() RUN_S=() TOTAL_S=() RELEASE=()

run_kernel() { # KERNEL INITRD
	local k=$1 initrd=$2 kdir="$CACHE/kernels/$1" logf="$LOGDIR/$TEST_NAME.$1.log"
	local start booted=0 finished=0 end line result="" rc="" status cpu accel
	: >"$logf"
	RELEASE[$k]=$(cat "$kdir/release")
	accel=$ACCEL
	cpu=max
	[[ $accel != kvm ]] || cpu=host
	log "kernel $k (${RELEASE[$k]}): booting, console log $logf"
	start=$(now_us)
	# QEMU writes into a FIFO rather than a pipe so that its pid is known:
	# the EXIT trap stops it if this script is interrupted.
	rm -f "$WORK/console"
	mkfifo "$WORK/console"
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
		-accel "$accel" -cpu "$cpu" -m "$MEM" -smp "$SMP" \
		-kernel "$kdir/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet $EXTRA_APPEND" \
		-nographic -no-reboot -nic none </dev/null >"$WORK/console" 2>&1 &
	QEMU_PID=$!
	while IFS= read -r line || [[ -n $line ]]; do
		# SeaBIOS clears the "screen" with escape sequences; keep logs plain.
		line=${line%$'\r'}
		line=${line//$'\e'[\[]*([0-9;?])[a-zA-Z]/}
		line=${line//$'\e'c/}
		printf '%s\n' "$line" >>"$logf"
		printf '%s%s\n' "${PREFIX:+[$k] }" "$line"
		case $line in
		*VMTEST-BOOTED*) ((booted)) || booted=$(now_us) ;;
		*"VMTEST-RESULT kernel=$k "*)
			result=${line#*VMTEST-RESULT }
			finished=$(now_us)
			;;
		esac
	done <"$WORK/console"
	status=0
	wait "$QEMU_PID" || status=$?
	QEMU_PID=""
	end=$(now_us)
	if [[ $result =~ rc=([0-9]+) ]]; then
		rc=${BASH_REMATCH[1]}
		if ((rc == 0)); then RESULT[$k]=pass; else RESULT[$k]="fail(rc=$rc)"; fi
	elif ((status == 124 || status == 137)); then
		RESULT[$k]=timeout
	else
		RESULT[$k]=error # no marker: boot failure, guest panic or QEMU error
		log "kernel $k: no VMTEST-RESULT line (qemu exit status $status)"
	fi
	((finished)) || finished=$end
	BOOT_S[$k]=-
	RUN_S[$k]=-
	if ((booted)); then
		BOOT_S[$k]=$(secs $((booted - start)))
		RUN_S[$k]=$(secs $((finished - booted)))
	fi
	TOTAL_S[$k]=$(secs $((end - start)))
	log "kernel $k: ${RESULT[$k]} in ${TOTAL_S[$k]} s"
}

# -------------------------------------------------------------------- main

ensure_host_tools
discover_mirrors

# Downloads and unpacking are serialised between concurrent runs.
exec {lockfd}>"$CACHE/.lock"
flock "$lockfd"
fetch_busybox
for k in "${KERNEL_LIST[@]}"; do
	fetch_kernel "$k"
done
flock -u "$lockfd"

if ((FETCH_ONLY)); then
	for k in "${KERNEL_LIST[@]}"; do
		printf '%-6s %s (%s)\n' "$k" "$(cat "$CACHE/kernels/$k/release")" "$(cat "$CACHE/kernels/$k/package")"
	done
	exit 0
fi

# Logs are named after the test binary so that concurrent runs (go test -exec
# runs packages in parallel) do not write to the same file.
TEST_NAME=$(basename "$TEST_BIN")
LOGDIR="$CACHE/logs"
mkdir -p "$LOGDIR"
build_common_initramfs "$WORK/common.cpio.gz"
for k in "${KERNEL_LIST[@]}"; do
	build_kernel_initramfs "$k" "$WORK/$k.cpio.gz"
	cat "$WORK/common.cpio.gz" "$WORK/$k.cpio.gz" >"$WORK/initrd-$k"
	run_kernel "$k" "$WORK/initrd-$k"
	rm -f "$WORK/initrd-$k"
done

failed=0
summary=$(printf '%-6s %-28s %-12s %7s %7s %7s' kernel release result boot_s run_s total_s)
for k in "${KERNEL_LIST[@]}"; do
	summary+=$'\n'$(printf '%-6s %-28s %-12s %7s %7s %7s' "$k" "${RELEASE[$k]}" "${RESULT[$k]}" \
		"${BOOT_S[$k]}" "${RUN_S[$k]}" "${TOTAL_S[$k]}")
	[[ ${RESULT[$k]} == pass ]] || failed=1
done
printf '%s\n' "$summary" >"$LOGDIR/$TEST_NAME.summary.txt"
printf '\n%s\n' "$summary"
exit "$failed"
