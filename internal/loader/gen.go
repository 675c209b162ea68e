package loader

// The BPF objects are committed: building udptrace needs no clang.
// Regenerate with `make generate` (needs clang and libbpf-dev).
//go:generate go tool bpf2go -tags linux -cc clang -cflags "-O2 -g -Wall -Werror -I../../bpf -I../.." -target amd64 -type event -type lpm_key -type counter -type icmp_verdict -type event_kind -type sender_kind -type delivery_outcome -type agg_key -type agg_val udptrace ../../bpf/noport.c
