# udptrace. `sudo make check` is the whole suite, as CI runs it.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build run demo generate check-generate deps test vet fuzz vmtest check clean vmlinux bench

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o udptrace ./cmd/udptrace

# The self-contained demo: the no-port path end to end, explained (root).
demo: build
	./udptrace demo $(ARGS)

# Trace until Ctrl-C; pass flags with ARGS="--json -4 --port 9".
run: build
	./udptrace $(ARGS)

# Regenerate vmlinux.h-based BPF objects (needs clang, llvm, libbpf-dev).
generate: deps
	$(GO) generate ./internal/loader

# CI: the committed bpf2go outputs must be what the sources produce.
check-generate: generate
	git diff --exit-code -- internal/loader/ || \
	  { echo "bpf2go outputs are stale: run 'make generate' and commit" >&2; exit 1; }

vmlinux:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h

deps:
	scripts/deps.sh

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# Unit and privileged tests (the privileged ones skip unless root).
test:
	$(GO) test -count=1 ./...

# Every fuzz target for FUZZTIME (go test -fuzz takes one target at a time):
# the event decoder, replay's JSON reader and string escaping, the filter
# parsers, and the command line's (sizes, pids, the whole configuration). A
# crasher is saved under the package's testdata/fuzz/FuzzX/: fix it and
# commit the file, which then runs with every go test.
# The budget is a count of inputs, not a duration: with a duration, go1.26's
# fuzzing coordinator can fail a target with a bare "context deadline
# exceeded" when the machine is busy (golang/go#75804, fixed in go1.27; seen
# here with QEMU running). 100000 inputs take 3-20 s per target here.
FUZZTIME ?= 100000x
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/events
	$(GO) test -run '^$$' -fuzz '^FuzzParseJSON$$' -fuzztime $(FUZZTIME) ./internal/events
	$(GO) test -run '^$$' -fuzz '^FuzzAppendJSONString$$' -fuzztime $(FUZZTIME) ./internal/events
	$(GO) test -run '^$$' -fuzz '^FuzzParsePorts$$' -fuzztime $(FUZZTIME) ./internal/filter
	$(GO) test -run '^$$' -fuzz '^FuzzParsePrefix$$' -fuzztime $(FUZZTIME) ./internal/filter
	$(GO) test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $(FUZZTIME) ./cmd/udptrace
	$(GO) test -run '^$$' -fuzz '^FuzzParsePIDFlags$$' -fuzztime $(FUZZTIME) ./cmd/udptrace
	$(GO) test -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME) ./cmd/udptrace

# The kernel x backend matrix: the loader and end-to-end tests once per BPF
# backend inside Debian 5.10, 6.1 and 6.12 under QEMU (root: fetches kernels
# and installs qemu on first use). Options: vmtest/matrix --help.
vmtest:
	GO="$(GO)" vmtest/matrix

# What udptrace costs (root): five workloads in a fresh namespace (TCP bulk,
# TCP request/response, UDP to a listener from one flow and from 65 536
# peers, the no-port flood), untraced and under each mode, interleaved;
# prints tables and checks the targets. Options: ARGS="-repeats 3 -scale 0.3"
# (go run ./bench -h).
bench: build
	$(GO) run ./bench -udptrace ./udptrace -go "$(GO)" $(ARGS)

check: deps check-generate vet build test fuzz vmtest

clean:
	rm -f udptrace
