package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/udptrace/udptrace/internal/demo"
	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/loader"
)

// errInterrupted ends the demo on Ctrl-C, after its cleanup: exit code 130.
var errInterrupted = errors.New("demo interrupted; its namespaces are gone")

func newDemoCmd(stdout io.Writer) *cobra.Command {
	var (
		noPause bool
		pause   time.Duration
		backend string
		explain bool
		color   string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the no-port experiment end to end in two throwaway namespaces, and explain it",
		Long: `demo builds a small world of its own — a client and a server network namespace
joined by a veth pair, with IPv4 and IPv6 — attaches udptrace, and runs the
experiment step by step with real sockets in client processes: a datagram to a
listening port (the contrast), a connected client to a closed port (NoPorts,
ICMP port unreachable, ECONNREFUSED on its read), an unconnected one (the error
is ignored), the same over IPv6, and a burst that meets ICMP rate limiting.
Each step shows udptrace's records with the kernel path they took, and the
netstat -s counters that moved next to what udptrace counted. Everything it
made is gone when it exits, also on Ctrl-C. Needs root; no network.`,
		Example: `  sudo udptrace demo               # pauses between steps
  sudo udptrace demo --no-pause    # for scripts and CI`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("demo takes no arguments, got %q", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pause < 0 {
				return usagef("--pause %v: want a duration of 0 or more, e.g. 2s", pause)
			}
			if noPause && cmd.Flags().Changed("pause") {
				return usagef("--no-pause and --pause together: give one")
			}
			b, err := loader.ParseBackend(backend)
			if err != nil {
				return usagef("--backend: %v", err)
			}
			useColor, err := colorWanted(color, stdout)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			o := demo.Options{Pause: pause, Backend: b, Color: useColor, ClientCommand: []string{self, demoClientCmd}}
			if noPause {
				o.Pause = 0
			}
			if explain {
				o.Explain = explainer()
			}
			err = demo.Run(cmd.Context(), o, stdout)
			if errors.Is(err, context.Canceled) {
				return errInterrupted
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noPause, "no-pause", false, "run the steps back to back")
	f.DurationVar(&pause, "pause", 2*time.Second, "how long to pause between steps")
	f.StringVar(&backend, "backend", "auto", "auto, fentry, tracepoint or kprobe")
	f.BoolVar(&explain, "explain", true, "annotate each record with its kernel path (--explain=false: off)")
	f.StringVar(&color, "color", "auto", "auto, always or never")
	return cmd
}

// demoClientCmd is the hidden subcommand the demo's client processes run.
const demoClientCmd = "demo-client"

func newDemoClientCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:    demoClientCmd + " MODE ADDR [N]",
		Hidden: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return usagef("%s wants MODE ADDR [N], got %d arguments", demoClientCmd, len(args))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			return demo.RunClient(args, stdout)
		},
	}
}

// explainer returns the kernel-path narration for this kernel.
func explainer() func(*events.Event) string {
	x, err := explainFromKernel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "udptrace: --explain: %v\n", err)
		return nil
	}
	return x
}
