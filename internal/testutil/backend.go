package testutil

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// BackendEnv is the environment variable that chooses the BPF backend the
// privileged tests use: "auto" (the default), "tracepoint", "fentry" or
// "kprobe". vmtest/matrix.sh sets it to run the same tests once per backend.
const BackendEnv = "UDPTRACE_BACKEND"

// UnsupportedMarker starts the line RunMain prints when the chosen backend
// cannot run on this kernel; vmtest/matrix.sh looks for it.
const UnsupportedMarker = "VMTEST-UNSUPPORTED"

// Backend returns the backend chosen with UDPTRACE_BACKEND, or "auto".
func Backend() string {
	if b := strings.TrimSpace(os.Getenv(BackendEnv)); b != "" {
		return b
	}
	return "auto"
}

// RunMain is the body of a TestMain for packages whose tests load BPF
// programs. As root, it asks check whether Backend() can run on this kernel;
// when it cannot, it prints one line
//
//	VMTEST-UNSUPPORTED backend=<b> reason=<why, on one line>
//
// to stdout and returns 0 without running any test: an unsupported
// kernel × backend pair is a result of the test matrix, not a failure.
// Otherwise (and always when not root: the privileged tests skip themselves)
// it returns m.Run(). Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m, check)) }
//
// Only an explicitly chosen backend (UDPTRACE_BACKEND set) is reported as
// unsupported. Without the variable the tests run anyway, so that a kernel
// where no backend works, or a Check that wrongly refuses "auto", fails
// `make test` loudly instead of passing it with no test run.
func RunMain(m *testing.M, check func(backend string) error) int {
	if spec := os.Getenv(clientEnv); spec != "" {
		return runClient(spec)
	}
	return runMain(m.Run, check, os.Geteuid(), os.Stdout, os.Stderr)
}

// runMain is RunMain with its dependencies passed in, for its own tests.
func runMain(run func() int, check func(string) error, euid int, stdout, stderr io.Writer) int {
	if euid == 0 && check != nil {
		b := Backend()
		if err := check(b); err != nil {
			if os.Getenv(BackendEnv) != "" {
				fmt.Fprintf(stdout, "%s backend=%s reason=%s\n", UnsupportedMarker, oneLine(b), oneLine(err.Error()))
				return 0
			}
			fmt.Fprintf(stderr, "testutil: backend %q cannot run here (%s); running the tests anyway because %s is not set\n",
				b, oneLine(err.Error()), BackendEnv)
		}
	}
	return run()
}

// oneLine folds a possibly multi-line message (a verifier log, wrapped
// errors) into one line, so that the marker stays one line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}
