package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/udptrace/udptrace/internal/testutil"
)

// workingBackend returns the backend udptrace runs with here (the one under
// test, or the one auto picks).
func workingBackend(t *testing.T) Backend {
	t.Helper()
	tr, err := Open(Config{Backend: Backend(testutil.Backend()), RingSize: os.Getpagesize()})
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	return tr.Backend
}

// A real program of the real collection, made invalid, goes through the
// same path as any rejection (open, loadError): a one-line error naming the
// program and the verifier's last word, the whole log kept for --verbose.
func TestVerifierRejectsARealProgram(t *testing.T) {
	testutil.RequireRoot(t)
	b := workingBackend(t)
	var victim string
	editSpec = func(spec *ebpf.CollectionSpec) {
		if victim != "" {
			return // Open checking the other backends, to name those that work
		}
		var names []string
		for name := range spec.Programs {
			if name != primeProgram {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		victim = names[0]
		p := spec.Programs[victim]
		// First read through R2, which no program is given: the
		// verifier refuses "R2 !read_ok". The new first instruction
		// takes over the function's symbol and BTF line information;
		// a CO-RE relocation stays with the instruction it fixes (a
		// kprobe program starts with a read of pt_regs).
		orig := p.Instructions[0]
		relo := btf.CORERelocationMetadata(&orig)
		first := btf.WithCORERelocationMetadata(asm.LoadMem(asm.R0, asm.R2, 0, asm.DWord).WithMetadata(orig.Metadata), nil)
		second := orig.WithMetadata(asm.Metadata{})
		if relo != nil {
			second = btf.WithCORERelocationMetadata(second, relo)
		}
		p.Instructions = append(asm.Instructions{first, second}, p.Instructions[1:]...)
	}
	t.Cleanup(func() { editSpec = nil })
	_, err := Open(Config{Backend: b})
	var ve *VerifierError
	if !errors.As(err, &ve) {
		t.Fatalf("backend %s: got %v, want a VerifierError", b, err)
	}
	wantLine := fmt.Sprintf("the kernel's verifier rejected program %s: load program: permission denied: 0: (79) r0 = *(u64 *)(r2 +0): R2 !read_ok (", victim)
	msg := ve.Error()
	if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, wantLine) || !strings.HasSuffix(msg, " line(s) omitted) (run with --verbose for the full log)") {
		t.Errorf("error %q, want one line: %q... line(s) omitted) (run with --verbose for the full log)", msg, wantLine)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("Open's error %q does not carry the verifier's line %q", err, msg)
	}
	logLines := strings.Split(strings.TrimSpace(ve.Log), "\n")
	if len(logLines) < 3 || !strings.Contains(ve.Log, "\t0: (79) r0 = *(u64 *)(r2 +0)\n\tR2 !read_ok\n") {
		t.Errorf("the full log (%d lines) lacks the rejected instruction and its reason:\n%s", len(logLines), ve.Log)
	}
}

// The ring buffer is created on its own: a size the kernel refuses is a
// RingBufferError naming --ring-size, which stops the search for a backend.
func TestRingBufferError(t *testing.T) {
	testutil.RequireRoot(t)
	spec := &ebpf.MapSpec{Name: "events", Type: ebpf.RingBuf, MaxEntries: 3 << 12} // not a power of two
	_, err := newRing(spec)
	var re *RingBufferError
	if !errors.As(err, &re) || !fatal(err) {
		t.Fatalf("got %v, want a RingBufferError", err)
	}
	want := "cannot create a ring buffer of 12 KiB (--ring-size 12K): invalid argument: choose another --ring-size (default 8M)"
	if err.Error() != want {
		t.Errorf("error\n %q\nwant\n %q", err, want)
	}
}

func TestSizeStrings(t *testing.T) {
	for n, want := range map[int]string{4096: "4K", 8 << 20: "8M", 1 << 30: "1024M", 1000: "1000", 3 << 19: "1536K"} {
		if got := sizeString(n); got != want {
			t.Errorf("sizeString(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[uint64]string{4096: "4 KiB", 200 << 20: "200 MiB", 1 << 30: "1024 MiB"} {
		if got := mib(n); got != want {
			t.Errorf("mib(%d) = %q, want %q", n, got, want)
		}
	}
}

// LoadBTF says what a --btf file is not, naming it.
func TestLoadBTFErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A valid BTF blob that is not a kernel's: one int type.
	b, err := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	small, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.btf")
	garbage := write("garbage.btf", []byte("this is not BTF at all\n"))
	empty := write("empty.btf", nil)
	truncated := write("truncated.btf", small[:10])
	notKernel := write("int.btf", small)
	for _, tc := range []struct{ path, want string }{
		{missing, "open " + missing + ": no such file or directory"},
		{dir, dir + " is not a regular file"},
		{garbage, garbage + " is not BTF: neither raw BTF (magic 0xeb9f) nor an ELF file"},
		{empty, empty + " is not BTF: neither raw BTF (magic 0xeb9f) nor an ELF file"},
		{self, self + " is an ELF file without a .BTF section"},
		{truncated, truncated + " is not valid BTF: "},
		{notKernel, notKernel + " describes no function udp_rcv: it is not the whole BTF of a Linux kernel (vmlinux)"},
	} {
		_, err := LoadBTF(tc.path)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("LoadBTF(%s): %v, want one line starting %q", filepath.Base(tc.path), err, tc.want)
		}
	}
	if _, err := os.Stat(kernelBTFPath); err != nil {
		t.Skipf("no %s here: %v", kernelBTFPath, err)
	}
	k, err := LoadBTF(kernelBTFPath)
	if err != nil || k.Path != kernelBTFPath {
		t.Fatalf("LoadBTF(%s): %v", kernelBTFPath, err)
	}
}

// The BPF object must not be able to change the kernel: no helper that
// writes user memory, overrides a return value or sends signals, no program
// type that can modify packets or decisions, and no pinned map.
func TestProgramsOnlyObserve(t *testing.T) {
	spec, err := loadUdptrace()
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[asm.BuiltinFunc]bool{
		asm.FnProbeWriteUser: true, asm.FnOverrideReturn: true, asm.FnSendSignal: true, asm.FnSendSignalThread: true, asm.FnSysBpf: true,
	}
	observers := map[ebpf.ProgramType]bool{ebpf.Tracing: true, ebpf.Kprobe: true, ebpf.RawTracepoint: true}
	for name, p := range spec.Programs {
		if !observers[p.Type] || p.AttachType == ebpf.AttachModifyReturn {
			t.Errorf("program %s is of type %s/%s, not a tracing one", name, p.Type, p.AttachType)
		}
		for _, ins := range p.Instructions {
			if ins.IsBuiltinCall() && forbidden[asm.BuiltinFunc(ins.Constant)] {
				t.Errorf("program %s calls %s", name, asm.BuiltinFunc(ins.Constant))
			}
		}
	}
	for name, m := range spec.Maps {
		if m.Pinning != ebpf.PinNone {
			t.Errorf("map %s is pinned (%v)", name, m.Pinning)
		}
	}
}
