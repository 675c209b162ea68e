package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/explain"
	"github.com/udptrace/udptrace/internal/reconcile"
)

func newReplayCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		json, explain bool
		color         string
	)
	cmd := &cobra.Command{
		Use:   "replay FILE",
		Short: "Print a saved --json or --record stream again, as the table or as JSON, without root",
		Long: `replay reads what udptrace --json printed, or what --record FILE wrote (JSON
lines; FILE - is standard input), and prints it as udptrace printed it live:
the table by default, byte for byte as udptrace would have shown it (times in
this machine's time zone), or with --json the same JSON lines again. The
summary line becomes the same summary on stderr (and, with --json, is
printed again too). It needs no privileges and no BPF: record a session once
as root, then replay it anywhere, with --explain and colours as you like.

Keys it does not know are ignored (the JSON schema may grow); a line that is
not a record or summary of that schema stops it with exit code 2, naming the
line. With --explain, the kernel functions are those of the running kernel
when its BTF is readable, of recent kernels otherwise.`,
		Example: `  sudo udptrace --record class.jsonl -d 5m   # record a session, as root
  udptrace replay class.jsonl                 # the table again, without root
  udptrace replay --explain class.jsonl       # with each record's kernel path
  jq -c 'select(.dport==53)' class.jsonl | udptrace replay -   # a part of it`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("replay takes one FILE (- for standard input), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			mode, err := parseColor(color)
			if err != nil {
				return err
			}
			format := events.FormatText
			if json {
				format = events.FormatJSON
			}
			in, name, err := openReplay(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			defer in.Close()
			var explainFn func(*events.Event) string
			if explain {
				if explainFn, err = explainFromKernel(); err != nil {
					explainFn = explainAnyKernel()
				}
			}
			return replay(in, name, format, format == events.FormatText && mode.on(stdout), explainFn, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.BoolVarP(&json, "json", "j", false, "print the JSON lines again instead of the table")
	f.BoolVar(&explain, "explain", false, "follow each record with the kernel functions it went through")
	registerColor(f, &color)
	return cmd
}

// openReplay opens replay's FILE argument: a file, or stdin for "-". It
// returns the name to use in messages.
func openReplay(arg string, stdin io.Reader) (io.ReadCloser, string, error) {
	switch arg {
	case "-":
		return io.NopCloser(stdin), "standard input", nil
	case "":
		return nil, "", usagef("replay: empty FILE name (- for standard input)")
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, "", usagef("replay: %v", err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, "", usagef("replay: %s is a directory, not a file of JSON lines", arg)
	}
	return f, arg, nil
}

// maxReplayLine is the longest line replay reads: a record is ~700 bytes,
// but later versions may add keys.
const maxReplayLine = 1 << 20

// replay prints the JSON lines of r, from the file name, to stdout in
// format f: each record with events.Printer.EventAt at its own time, each
// summary with reconcile.Report.WriteText on stderr (and as JSON again on
// stdout in FormatJSON), as the live tracer prints them. Empty lines are
// skipped. A line that is neither is a usage error naming it, after the
// lines before it were printed.
func replay(r io.Reader, name string, f events.Format, color bool, explain func(*events.Event) string, stdout, stderr io.Writer) error {
	out := bufio.NewWriterSize(stdout, 64<<10)
	p := events.NewPrinter(out, f, events.Clock{})
	p.SetColor(color)
	p.SetExplain(explain)
	if err := p.Header(); err != nil {
		return err
	}
	bad := func(n int, err error) error {
		if ferr := out.Flush(); ferr != nil {
			return ferr
		}
		return usagef("%s, line %d: %v", name, n, err)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxReplayLine)
	var e events.Event
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		t, err := events.ParseJSON(line, &e)
		if err == nil {
			if err := p.EventAt(&e, t); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, events.ErrNotEvent) {
			return bad(n, err)
		}
		rep, err := reconcile.ParseJSON(line)
		if err != nil {
			return bad(n, err)
		}
		if f == events.FormatJSON {
			out.Write(append(rep.AppendJSON(nil), '\n'))
		}
		if err := out.Flush(); err != nil {
			return err
		}
		if err := rep.WriteText(stderr); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return bad(n+1, fmt.Errorf("longer than %d bytes", maxReplayLine))
		}
		out.Flush()
		return fmt.Errorf("replay: read %s: %w", name, err)
	}
	return out.Flush()
}

// explainFromKernel returns the narration of --explain, with the
// functions of the running kernel (from its BTF).
func explainFromKernel() (func(*events.Event) string, error) {
	x, err := explain.FromKernel()
	if err != nil {
		return nil, err
	}
	return x.Path, nil
}

// explainAnyKernel returns the narration of --explain for when the
// kernel's BTF cannot be read: it takes every function to exist, so it
// names those of recent kernels.
func explainAnyKernel() func(*events.Event) string {
	return explain.New(func(string) bool { return true }).Path
}
