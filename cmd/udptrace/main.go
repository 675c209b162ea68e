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
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/udptrace/udptrace/internal/loader"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

// usageError is bad input from the user: exit code 2, and one line on
// stderr.
type usageError struct {
	err error
	cmd string // the command whose --help to point to, e.g. "udptrace top"
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{err: fmt.Errorf(format, a...)} }

// oneLine escapes the line breaks a message may hold (from a flag's value,
// a file name), so that it stays one line.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

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
		if ue.cmd == "" {
			ue.cmd = "udptrace"
		}
		fmt.Fprintf(stderr, "udptrace: %s (see %s --help)\n", oneLine.Replace(err.Error()), ue.cmd)
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
	cmd, err := root.ExecuteContextC(ctx)
	if ue, ok := err.(usageError); ok && ue.cmd == "" && cmd != nil {
		ue.cmd = cmd.CommandPath()
		return ue
	}
	return err
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		o           options
		showVersion bool
	)
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
kernel's own counters. It needs root, or CAP_BPF, CAP_PERFMON and
CAP_SYSLOG (CAP_SYS_ADMIN too for --netns of another namespace; see
Privileges in the README).

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
		Args:              rootArgs,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return checkEmptyFlags(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				_, err := fmt.Fprintf(stdout, "udptrace version %s\n", version)
				return err
			}
			o.changed = cmd.Flags().Changed
			cfg, err := o.config()
			if err != nil {
				return err
			}
			return trace(cmd.Context(), cfg, stdout, stderr)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err: err} })
	root.SetHelpCommand(newHelpCmd(root))
	root.SuggestionsMinimumDistance = 2
	o.register(root)
	root.AddCommand(newDoctorCmd(stdout))
	root.AddCommand(newReplayCmd(stdout, stderr))
	root.AddCommand(newDemoCmd(stdout), newDemoClientCmd(stdout))
	root.AddCommand(newTopCmd(stdout, stderr))
	strictCompletion(root)
	root.Flags().BoolVarP(&verbose, "verbose", "v", false, "print the verifier's full log when a program is rejected")
	// Not cobra's Version: that one prints the version before the
	// arguments are checked (udptrace --version extra: exit 0).
	root.Flags().BoolVar(&showVersion, "version", false, "print udptrace's version")
	return root
}

// rootArgs refuses udptrace's positional arguments: a command it does not
// have, or a filter written without its flag.
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		return usagef("unknown command %q: did you mean %s?", args[0], strings.Join(s, " or "))
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usagef("unknown command or argument %q: filters are flags, e.g. --port 53; the commands are %s", args[0], strings.Join(names, ", "))
}

// newHelpCmd is udptrace help [COMMAND]: cobra's, except that a command that
// does not exist is a usage error rather than the root's help and exit 0.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(_ *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return usageError{err: fmt.Errorf("help: no command %q", strings.Join(args, " ")), cmd: root.Name()}
			}
			return c.Help()
		},
	}
}

// checkEmptyFlags refuses a string flag given an empty value (--netns "",
// --backend "", --record ""): each wants a value, and an empty one is
// most likely an unset shell variable. (The list flags, --port and the
// others, refuse empty items themselves.)
func checkEmptyFlags(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if err == nil && f.Value.Type() == "string" && f.Value.String() == "" {
			err = usagef("--%s: empty value", f.Name)
		}
	})
	return err
}

// strictCompletion makes cobra's completion command refuse a shell it does
// not know (it would print its help and exit 0).
func strictCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = func(_ *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usagef("completion: no shell %q (want bash, zsh, fish or powershell)", args[0])
				}
				return nil
			}
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
	}
}
