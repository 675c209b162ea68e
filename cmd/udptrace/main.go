// Command udptrace shows every UDP datagram that Linux dropped because no
// socket listened on its port (the "packets to unknown port received" line of
// netstat -su), and whether the kernel answered it with ICMP port-unreachable.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/udptrace/udptrace/internal/loader"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

// usageError is bad input from the user: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A write to a closed pipe (udptrace | head -1) then fails with EPIPE
	// instead of killing udptrace with SIGPIPE: it stops, detaches and
	// prints the summary, as on Ctrl-C. (Notify, not Ignore: the demo's
	// client processes must not inherit an ignored SIGPIPE.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errInterrupted) {
		fmt.Fprintf(stderr, "udptrace: %v\n", err)
		return 130 // as a shell reports a job killed by SIGINT
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "udptrace: %v (see udptrace --help)\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "udptrace: %v\n", err)
	var ve *loader.VerifierError
	if verbose && errors.As(err, &ve) {
		fmt.Fprintln(stderr, ve.Log)
	}
	return 1
}

// verbose is the --verbose flag, read by exitCode after run returns.
var verbose bool

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var o options
	root := &cobra.Command{
		Use:   "udptrace [flags]",
		Short: "Trace UDP datagrams dropped because no socket listens on their port",
		Long: `udptrace prints one line for every UDP datagram the kernel counted as
"packets to unknown port received" (Udp NoPorts / Udp6NoPorts in
/proc/net/snmp, the line of netstat -su), with its addresses, interface,
network namespace, the local process that sent it, and whether the kernel
answered with ICMP port-unreachable or a rate limit suppressed the reply.
It then follows the chain: when the reply reaches the sending socket, what
the kernel did with it (ECONNREFUSED set on a connected socket, queued on an
IP_RECVERR error queue, ignored, or no socket any more), and which call of
which process finally returned "Connection refused". The lines of one
datagram share a chain id. At exit it reconciles what it saw with the
kernel's own counters. It needs root (or CAP_BPF, CAP_PERFMON and
CAP_NET_ADMIN).

The ctx column/ctx_* keys name the task that happened to be running the
receive path (often the sender on loopback, or a softirq thread): context,
not the owner of anything.`,
		Example: `  sudo udptrace                        # everything, live table, Ctrl-C to stop
  sudo udptrace --json -4 --port 9     # IPv4 datagrams to port 9, as JSON lines
  sudo udptrace -p 53,5353,8000-8100   # several ports and a range
  sudo udptrace --src 10.0.0.0/8 -c 10 # first 10 from 10/8, with their chains
  sudo udptrace --netns blue -d 30s    # namespace "blue" (ip netns) for 30 seconds
  sudo udptrace --comm dig             # chains of dig: its datagrams and its ECONNREFUSED
  sudo udptrace --json | jq -c 'select(.kind=="noport" and .icmp!="sent")'`,
		Version: version,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q: filters are flags, e.g. --port 53", args[0])
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.config()
			if err != nil {
				return err
			}
			return trace(cmd.Context(), cfg, stdout, stderr)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	o.register(root)
	root.AddCommand(newDoctorCmd(stdout))
	root.AddCommand(newReplayCmd(stdout, stderr))
	root.AddCommand(newDemoCmd(stdout), newDemoClientCmd(stdout))
	root.AddCommand(newTopCmd(stdout, stderr))
	root.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the verifier's full log when a program is rejected")
	return root
}
