package loader

// ProgramNames returns the names under which the kernel lists udptrace's BPF
// programs (bpf_prog_info.name, as bpftool prog show and
// ebpf.Program.Info report them: at most 15 bytes, BPF_OBJ_NAME_LEN - 1), of
// every backend: for tests and tools that look for udptrace's programs in
// the kernel, e.g. to check that none is left once udptrace has exited.
func ProgramNames() (map[string]bool, error) {
	spec, err := loadUdptrace()
	if err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(spec.Programs))
	for name := range spec.Programs {
		if len(name) > 15 {
			name = name[:15]
		}
		names[name] = true
	}
	return names, nil
}
