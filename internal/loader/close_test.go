package loader

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/udptrace/udptrace/internal/testutil"
)

// Close must release every program and map: a long-lived host must not
// accumulate kernel objects from runs of udptrace.
func TestCloseReleasesEverything(t *testing.T) {
	testutil.RequireRoot(t)
	tr, err := Open(Config{Backend: Backend(testutil.Backend())})
	if err != nil {
		t.Fatal(err)
	}
	var progs []ebpf.ProgramID
	var maps []ebpf.MapID
	for name, p := range tr.coll.Programs {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, ok := info.ID()
		if !ok {
			t.Fatalf("no ID for program %s", name)
		}
		progs = append(progs, id)
	}
	for _, m := range tr.coll.Maps {
		info, err := m.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		maps = append(maps, id)
	}
	want := len(tr.Hooks)
	if tr.Backend == Tracepoint {
		want++ // prime_ratelimits: run at start, never attached
	}
	if len(progs) != want || want < 3 || len(maps) < 7 {
		t.Fatalf("%d programs (hooks %v) and %d maps loaded, want one per hook (+ the tracepoint's prime program) and at least 7 maps", len(progs), tr.Hooks, len(maps))
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	// The kernel frees tracing programs after an RCU tasks grace period
	// (seen here: ~2.6 s; far longer under QEMU's emulation), and their
	// maps after them.
	deadline := time.Now().Add(3 * time.Minute)
	for _, id := range progs {
		for {
			p, err := ebpf.NewProgramFromID(id)
			if err != nil {
				break
			}
			p.Close()
			if time.Now().After(deadline) {
				t.Fatalf("program %d still loaded after Close", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, id := range maps {
		for {
			m, err := ebpf.NewMapFromID(id)
			if err != nil {
				break
			}
			info, _ := m.Info()
			m.Close()
			if time.Now().After(deadline) {
				t.Fatalf("map %d (%s) still exists after Close", id, info.Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A program the verifier rejects gives a one-line error, with the whole log
// kept for --verbose.
func TestVerifierErrorIsOneLine(t *testing.T) {
	testutil.RequireRoot(t)
	_, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "bad", Type: ebpf.SocketFilter, License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R0, asm.R2), // R2 is not initialised
			asm.Return(),
		},
	})
	if err == nil {
		t.Fatal("the verifier accepted a program reading an uninitialised register")
	}
	lerr := loadError(err)
	var ve *VerifierError
	if !errors.As(lerr, &ve) {
		t.Fatalf("got %T %v, want a VerifierError", lerr, lerr)
	}
	msg := lerr.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "--verbose") || !strings.Contains(msg, "verifier") {
		t.Errorf("message %q: want one line mentioning the verifier and --verbose", msg)
	}
	if !strings.Contains(ve.Log, "R2 !read_ok") {
		t.Errorf("log lacks the verifier's reason:\n%s", ve.Log)
	}
}
