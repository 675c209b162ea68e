package testutil

import (
	"bytes"
	"errors"
	"testing"
)

func TestBackend(t *testing.T) {
	t.Setenv(BackendEnv, "")
	if got := Backend(); got != "auto" {
		t.Errorf("unset: Backend() = %q, want auto", got)
	}
	t.Setenv(BackendEnv, "kprobe")
	if got := Backend(); got != "kprobe" {
		t.Errorf("Backend() = %q, want kprobe", got)
	}
}

func TestRunMain(t *testing.T) {
	refuse := func(string) error { return errors.New("needs BTF\nand more:  detail") }
	for _, tc := range []struct {
		name      string
		env       string
		euid      int
		check     func(string) error
		wantRan   bool
		wantOut   string
		wantCode  int
		wantNoted bool // a note on stderr
	}{
		{"supported", "fentry", 0, func(b string) error {
			if b != "fentry" {
				return errors.New("wrong backend " + b)
			}
			return nil
		}, true, "", 7, false},
		{"unsupported", "fentry", 0, refuse, false,
			"VMTEST-UNSUPPORTED backend=fentry reason=needs BTF and more: detail\n", 0, false},
		{"not root", "fentry", 1000, refuse, true, "", 7, false},
		{"auto by default runs anyway", "", 0, refuse, true, "", 7, true},
		{"nil check", "kprobe", 0, nil, true, "", 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(BackendEnv, tc.env)
			ran := false
			var stdout, stderr bytes.Buffer
			code := runMain(func() int { ran = true; return 7 }, tc.check, tc.euid, &stdout, &stderr)
			if ran != tc.wantRan || code != tc.wantCode || stdout.String() != tc.wantOut || (stderr.Len() > 0) != tc.wantNoted {
				t.Errorf("ran %v code %d stdout %q stderr %q; want ran %v code %d stdout %q note %v",
					ran, code, stdout.String(), stderr.String(), tc.wantRan, tc.wantCode, tc.wantOut, tc.wantNoted)
			}
		})
	}
}
