#!/usr/bin/env bash
# Installs what building the BPF objects and running the whole test suite
# need, when it is missing. Building and running udptrace itself needs only
# Go: the objects are committed.
set -euo pipefail
need=()
command -v clang >/dev/null || need+=(clang)
command -v llvm-strip >/dev/null || need+=(llvm)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v bpftool >/dev/null || need+=(bpftool)
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The --metrics test scrapes udptrace with a real Prometheus, which it starts
# itself (its own config, storage and port). Without the recommended node
# exporter; the packaged service is not needed, so it is stopped and disabled
# where systemd runs it.
if ! command -v prometheus >/dev/null; then
  echo "deps: installing prometheus" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
