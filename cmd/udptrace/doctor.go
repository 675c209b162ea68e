package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/udptrace/udptrace/internal/loader"
)

func newDoctorCmd(stdout io.Writer) *cobra.Command {
	var btfFile string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what this kernel offers udptrace, and which backend it would use",
		Long: `doctor reports the kernel version, privileges, BTF, ring buffer support, every
hook point of every backend (present or not, and why), then tries each backend
for real (load, attach, detach) and names the one --backend auto would choose.
It exits 0 when some backend can run here, 1 when none can.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("doctor takes no arguments, got %q", args[0])
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error {
			file, err := loadBTFFlag(btfFile)
			if err != nil {
				return err
			}
			d := loader.Diagnose(file)
			writeDiagnosis(stdout, d)
			if d.Chosen == "" {
				return loader.ErrNoBackend
			}
			return nil
		},
	}
	registerBTF(cmd.Flags(), &btfFile)
	return cmd
}

func writeDiagnosis(w io.Writer, d loader.Diagnosis) {
	mark := func(ok bool) string {
		if ok {
			return "ok  "
		}
		return "MISSING"
	}
	area := ""
	for _, f := range d.Findings {
		if f.Area != area {
			area = f.Area
			fmt.Fprintf(w, "%s\n", area)
		}
		fmt.Fprintf(w, "  %-7s %-22s %s\n", mark(f.OK), f.Name, f.Detail)
	}
	fmt.Fprintf(w, "backends (tried: load, attach, detach)\n")
	for _, b := range loader.Backends {
		if err := d.Backends[b]; err != nil {
			fmt.Fprintf(w, "  %-7s %-22s %v\n", "no", b, err)
		} else {
			fmt.Fprintf(w, "  %-7s %s\n", "yes", b)
		}
	}
	if d.Chosen != "" {
		fmt.Fprintf(w, "chosen by --backend auto: %s\n", d.Chosen)
	} else {
		fmt.Fprintf(w, "no backend can run here\n")
	}
}
