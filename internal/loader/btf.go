package loader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cilium/ebpf/btf"
)

// kernelBTFPath is where the running kernel describes its own types.
const kernelBTFPath = "/sys/kernel/btf/vmlinux"

// BTF is a kernel's type information read from a file (--btf), used
// instead of /sys/kernel/btf/vmlinux to adapt the programs to the kernel
// (CO-RE) and to check what it has.
type BTF struct {
	Path string
	spec *btf.Spec
}

// LoadBTF reads the BTF of a kernel from path: raw BTF, as in
// /sys/kernel/btf/vmlinux, or an ELF file with a .BTF section (a vmlinux
// built with debug information, or a file from BTFHub). Errors say what the
// file is not.
func LoadBTF(path string) (*BTF, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	elf := bytes.Equal(magic, []byte("\x7fELF"))
	raw := bytes.HasPrefix(magic, []byte{0x9f, 0xeb}) || bytes.HasPrefix(magic, []byte{0xeb, 0x9f})
	if !elf && !raw {
		return nil, fmt.Errorf("%s is not BTF: neither raw BTF (magic 0xeb9f) nor an ELF file", path)
	}
	spec, err := btf.LoadSpecFromReader(f)
	switch {
	case elf && errors.Is(err, btf.ErrNotFound):
		return nil, fmt.Errorf("%s is an ELF file without a .BTF section", path)
	case err != nil:
		return nil, fmt.Errorf("%s is not valid BTF: %v", path, err)
	}
	// Every kernel has udp_rcv; a BPF object's BTF, or one cut down to
	// some object's needs, has not.
	var fn *btf.Func
	if err := spec.TypeByName("udp_rcv", &fn); err != nil {
		return nil, fmt.Errorf("%s describes no function udp_rcv: it is not the whole BTF of a Linux kernel (vmlinux)", path)
	}
	return &BTF{Path: path, spec: spec}, nil
}

// kernelTypes returns the types udptrace adapts its programs to: those of
// file when given, else the running kernel's.
func kernelTypes(file *BTF) (*btf.Spec, error) {
	if file != nil {
		return file.spec, nil
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	return kernel, nil
}

// ownBTF checks, for the backends that attach through BTF (tp_btf, fentry),
// that the running kernel's own BTF is readable: the kernel names their
// attach points by its type ids, which no other file has.
func ownBTF(b Backend, file *BTF) error {
	if file == nil || b == Kprobe {
		return nil
	}
	if _, err := os.Stat(kernelBTFPath); err != nil {
		return fmt.Errorf("the %s backend attaches through the running kernel's own BTF, which --btf %s cannot replace (%v): mount /sys/kernel/btf, or use --backend kprobe", b, file.Path, err)
	}
	return nil
}

// byFile adds to a finding about the kernel's types that they came from
// file (--btf), if they did; a verifier error learns that its program was
// adapted to them.
func byFile(err error, file *BTF) error {
	var ve *VerifierError
	switch {
	case file == nil || err == nil || errors.Is(err, errNoKprobes) || errors.Is(err, ErrPermission):
		return err
	case errors.As(err, &ve):
		ve.btf = file.Path
		return err
	}
	return fmt.Errorf("%w (as --btf %s describes it)", err, file.Path)
}
