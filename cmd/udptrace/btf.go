package main

import (
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/loader"
)

// registerBTF adds --btf, for the tracer, top and doctor.
func registerBTF(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "btf", "", "the kernel's BTF from `FILE` instead of /sys/kernel/btf/vmlinux (for a kernel without BTF: with the kprobe backend)")
}

// loadBTFFlag reads --btf FILE ("": the running kernel's own BTF). A file
// that is not a kernel's BTF is bad input.
func loadBTFFlag(path string) (*loader.BTF, error) {
	if path == "" {
		return nil, nil
	}
	b, err := loader.LoadBTF(path)
	if err != nil {
		var uts unix.Utsname
		_ = unix.Uname(&uts)
		return nil, usagef("--btf: %v (want the BTF of this very kernel, %s: raw like /sys/kernel/btf/vmlinux, or an ELF file with a .BTF section, such as BTFHub's)",
			err, unix.ByteSliceToString(uts.Release[:]))
	}
	return b, nil
}
