package main

// Tests of udptrace replay and of the --color flag. They run the built
// binary but need no root: replay needs no BPF.

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/reconcile"
)

// replayClock puts the records of replayEvents on 2026-11-25 at 17:32:55.
var replayClock = events.ClockWithOffset(time.Date(2026, 11, 25, 17, 32, 55, 0, time.UTC).UnixNano() - 5_000_000_000)

// replayEvents is a chain as the README shows it (the datagram of a
// connected socket, the delivery of its port-unreachable, the read that
// returned the error), an IPv6 datagram from another host that a rate limit
// kept from its reply, and one with a hostile task name.
func replayEvents() []events.Event {
	name := func(s string) (b [16]byte) { copy(b[:], s); return b }
	lo := netip.MustParseAddr("127.0.0.1")
	noport := events.Event{BootNS: 5_838_155_123, Kind: events.KindNoPort, Family: events.FamilyIPv4,
		Src: lo, Dst: lo, SPort: 39610, DPort: 9, Len: 13, Netns: 4026531833, IfIndex: 1, IfName: name("lo"),
		PID: 31775, TID: 31775, Comm: name("python3"), ICMP: events.ICMPSent,
		Sender: events.SenderLocal, SenderPID: 31775, SenderTID: 31775, SenderComm: name("python3"),
		SenderCgroup: 8123, SenderNetns: 4026531833, Chain: 0x40f31b39c2a0d6e1, OriginNS: 5_838_134_083,
		SockIno: 167129, FD: -1, Syscall: -1}
	delivery := noport
	delivery.Kind, delivery.BootNS, delivery.Outcome, delivery.Err = events.KindDelivery, 5_838_163_410, events.OutcomeRefused, 111
	call := delivery
	call.Kind, call.BootNS, call.Syscall, call.FD = events.KindSyscall, 5_838_186_393, 45, 3
	remote := events.Event{BootNS: 6_000_000_001, Kind: events.KindNoPort, Family: events.FamilyIPv6,
		Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("2001:db8::2"), SPort: 40000, DPort: 5353,
		Len: 20, Netns: 4026531840, IfIndex: 3, IfName: name("eth1"), CPU: 1, Comm: name("swapper/1"),
		ICMP: events.ICMPRateLimitedHost, Chain: 0x5b1d2c3e4f506172, FD: -1, Syscall: -1}
	hostile := noport
	hostile.BootNS += 1_000_000_000
	hostile.Comm = [16]byte{0x1b, ']', '0', ';', 'x', 0x07, 0xff, '"', '\\'}
	hostile.ICMP = events.ICMPNotSent
	return []events.Event{noport, delivery, call, remote, hostile}
}

// replaySummary is the summary of those records.
func replaySummary() reconcile.Report {
	return reconcile.Reconcile(reconcile.Input{Duration: 3002 * time.Millisecond, Netns: 4026531833,
		Printed: 3, PrintedNS: 2, PassedNS: 2, Seen4: 2, NoPorts: 2, ICMP4Sent: 1, ICMP4Known: true, ICMP6Known: true,
		OutType3: 1, RateLimitsKnown: true})
}

// printEvents prints replayEvents in format f, in UTC, as the live tracer
// would have, with the summary line in JSON.
func printEvents(t *testing.T, f events.Format, color bool, explain func(*events.Event) string) string {
	t.Helper()
	var b bytes.Buffer
	p := events.NewPrinter(&b, f, replayClock)
	p.SetLocation(time.UTC)
	p.SetColor(color)
	p.SetExplain(explain)
	if err := p.Header(); err != nil {
		t.Fatal(err)
	}
	for _, e := range replayEvents() {
		if err := p.Event(&e); err != nil {
			t.Fatal(err)
		}
	}
	if f == events.FormatJSON {
		b.Write(append(replaySummary().AppendJSON(nil), '\n'))
	}
	return b.String()
}

// summaryText is the summary as udptrace prints it on stderr.
func summaryText(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := replaySummary().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// writeRecord writes s to a file in a new directory and returns its path.
func writeRecord(t *testing.T, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "record.jsonl")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runUdptrace runs the binary with args, stdin and the extra environment
// (TZ=UTC always), and returns its output and exit code.
func runUdptrace(t *testing.T, stdin io.Reader, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "TZ=UTC"), env...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func TestReplayText(t *testing.T) {
	path := writeRecord(t, printEvents(t, events.FormatJSON, false, nil))
	stdout, stderr, code := runUdptrace(t, nil, nil, "replay", path)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}
	if want := printEvents(t, events.FormatText, false, nil); stdout != want {
		t.Errorf("stdout\n%s\nwant\n%s", stdout, want)
	}
	if want := summaryText(t); stderr != want {
		t.Errorf("stderr\n%s\nwant\n%s", stderr, want)
	}
	if !strings.Contains(stdout, " 17:32:56.000000 5b1d2c3e [2001:db8::7]:40000"[1:]) ||
		!strings.Contains(stdout, "↳ recvfrom(fd 3) returned ECONNREFUSED to 31775/python3 (tid 31775), 52µs after the send\n") ||
		!strings.Contains(stdout, "not-sent 31775/python3             0 31775/?]0;x??\"\\\n") {
		t.Errorf("stdout lacks the expected lines:\n%s", stdout)
	}
}

// TestReplayJSON: --json gives back the same bytes, summary included, and
// the same summary on stderr; "-" reads stdin; empty lines are skipped.
func TestReplayJSON(t *testing.T) {
	in := printEvents(t, events.FormatJSON, false, nil)
	stdout, stderr, code := runUdptrace(t, strings.NewReader(strings.Replace(in, "\n", "\n\n  \n", 2)), nil, "replay", "--json", "-")
	if code != 0 || stdout != in || stderr != summaryText(t) {
		t.Errorf("exit code %d\nstdout\n%s\nwant\n%s\nstderr\n%s\nwant\n%s", code, stdout, in, stderr, summaryText(t))
	}
	// Without the summary: no summary.
	events := in[:strings.LastIndex(in[:len(in)-1], "\n")+1]
	stdout, stderr, code = runUdptrace(t, strings.NewReader(events), nil, "replay", "-j", "-")
	if code != 0 || stdout != events || stderr != "" {
		t.Errorf("without the summary: exit code %d, stdout\n%s\nstderr\n%s", code, stdout, stderr)
	}
}

// TestReplayExplain: --explain adds each record's kernel path, as the live
// tracer does: a line in the table, a key in JSON, which replay then
// ignores.
func TestReplayExplain(t *testing.T) {
	explain, err := explainFromKernel()
	if err != nil {
		explain = explainAnyKernel() // as udptrace does
	}
	path := writeRecord(t, printEvents(t, events.FormatJSON, false, nil))
	stdout, stderr, code := runUdptrace(t, nil, nil, "replay", "--explain", path)
	if want := printEvents(t, events.FormatText, false, explain); code != 0 || stdout != want || stderr != summaryText(t) {
		t.Errorf("exit code %d, stderr %s\nstdout\n%s\nwant\n%s", code, stderr, stdout, want)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 1+2*len(replayEvents()) {
		t.Fatalf("%d lines, want the header and 2 per record", len(lines))
	}
	for i := 2; i < len(lines); i += 2 {
		if !strings.HasPrefix(lines[i], "    ⤷ kernel: ") || len(lines[i]) < 40 {
			t.Errorf("line %d %q is not a kernel path", i+1, lines[i])
		}
	}
	if !strings.Contains(stdout, "__udp4_lib_rcv") || !strings.Contains(stdout, "__udp6_lib_rcv") {
		t.Errorf("no receive function named:\n%s", stdout)
	}

	withExplain := printEvents(t, events.FormatJSON, false, explain)
	stdout, _, code = runUdptrace(t, nil, nil, "replay", "--json", "--explain", path)
	if code != 0 || stdout != withExplain || strings.Count(stdout, `,"explain":"`) != len(replayEvents()) {
		t.Errorf("--json --explain: exit code %d\n%s\nwant\n%s", code, stdout, withExplain)
	}
	// The explain key is one replay does not know: ignored.
	stdout, _, code = runUdptrace(t, strings.NewReader(withExplain), nil, "replay", "-")
	if want := printEvents(t, events.FormatText, false, nil); code != 0 || stdout != want {
		t.Errorf("replay of --explain JSON: exit code %d\n%s\nwant\n%s", code, stdout, want)
	}
}

func TestReplayColor(t *testing.T) {
	path := writeRecord(t, printEvents(t, events.FormatJSON, false, nil))
	plain, colored := printEvents(t, events.FormatText, false, nil), printEvents(t, events.FormatText, true, nil)
	if plain == colored || !strings.HasPrefix(colored, "\x1b[1mTIME ") || !strings.Contains(colored, "\x1b[32msent\x1b[0m     31775/python3") ||
		!strings.Contains(colored, "\x1b[33mIcmp6OutRateLimitHost\x1b[0m remote") || !strings.Contains(colored, "\x1b[31mnot-sent\x1b[0m 31775/python3") ||
		!strings.Contains(colored, "\x1b[2m17:32:55.838163 40f31b39 ↳ port-unreachable for 127.0.0.1:39610 -> 127.0.0.1:9 reached 31775/python3 socket:[167129] in netns 4026531833 (lo): \x1b[22mECONNREFUSED set on the connected socket\x1b[0m\n") {
		t.Fatalf("the colours are not as documented:\n%q", colored)
	}
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--color", "always"}, nil, colored},
		{[]string{"--color=always"}, []string{"NO_COLOR=1"}, colored}, // the flag wins
		{[]string{"--color", "never"}, nil, plain},
		{[]string{"--color", "auto"}, nil, plain}, // stdout is not a terminal
		{nil, nil, plain},
		{[]string{"--color", "always", "--json"}, nil, printEvents(t, events.FormatJSON, false, nil)}, // no colour in JSON
	} {
		stdout, stderr, code := runUdptrace(t, nil, tc.env, append(append([]string{"replay"}, tc.args...), path)...)
		if code != 0 || stdout != tc.want || stderr != summaryText(t) {
			t.Errorf("%v %v: exit code %d, stderr %q\nstdout %q\nwant %q", tc.env, tc.args, code, stderr, stdout, tc.want)
		}
	}

	for _, w := range []io.Writer{os.NewFile(^uintptr(0), "bad"), &bytes.Buffer{}} {
		if colorAuto.on(w) {
			t.Errorf("auto on %T: colour", w)
		}
	}
	t.Run("terminal", func(t *testing.T) {
		// On a terminal, auto means colour unless NO_COLOR is set.
		tty, screen := openPTY(t)
		for _, tc := range []struct {
			noColor string
			want    bool
		}{{"", true}, {"1", false}} {
			t.Setenv("NO_COLOR", tc.noColor)
			if got := colorAuto.on(tty); got != tc.want {
				t.Errorf("auto on a terminal with NO_COLOR=%q: %v, want %v", tc.noColor, got, tc.want)
			}
			if colorNever.on(tty) || !colorAlways.on(tty) {
				t.Error("never or always on a terminal is not never or always")
			}
			cmd := exec.Command(binary, "replay", path)
			cmd.Env = append(os.Environ(), "TZ=UTC")
			cmd.Stdout = tty
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			// The terminal ends lines with \r\n.
			want := plain
			if tc.want {
				want = colored
			}
			if got := strings.ReplaceAll(screen(len(want)+strings.Count(want, "\n")), "\r\n", "\n"); got != want {
				t.Errorf("on a terminal with NO_COLOR=%q:\n%q\nwant\n%q", tc.noColor, got, want)
			}
		}
	})
}

// openPTY opens a pseudo-terminal and returns its terminal side, and a
// function that returns the next n bytes written to it; the test skips
// where there is none.
func openPTY(t *testing.T) (*os.File, func(n int) string) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pseudo-terminal number: %v", err)
	}
	tty, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	output := make(chan []byte, 1024)
	go func() {
		for {
			b := make([]byte, 4096)
			n, err := ptm.Read(b)
			if err != nil {
				return
			}
			output <- b[:n]
		}
	}()
	var pending []byte
	return tty, func(n int) string {
		timeout := time.After(10 * time.Second)
		for len(pending) < n {
			select {
			case b := <-output:
				pending = append(pending, b...)
			case <-timeout:
				t.Fatalf("%d bytes from the terminal after 10s, want %d: %q", len(pending), n, pending)
			}
		}
		s := string(pending[:n])
		pending = pending[n:]
		return s
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestColorOption(t *testing.T) {
	for in, want := range map[string]colorMode{"auto": colorAuto, "": colorAuto, "always": colorAlways, "never": colorNever} {
		if got, err := parseColor(in); err != nil || got != want {
			t.Errorf("parseColor(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yes", "true", "Always", "1"} {
		if _, err := parseColor(bad); err == nil || !strings.Contains(err.Error(), "--color") {
			t.Errorf("parseColor(%q): %v, want an error naming --color", bad, err)
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("parseColor(%q): %T, want a usage error", bad, err)
		}
	}
	o := options{ringSize: "8M", backend: "auto", color: "never", record: "x.jsonl", explain: true}
	c, err := o.config()
	if err != nil || c.color != colorNever || c.record != "x.jsonl" || !c.explain {
		t.Errorf("config: %+v, %v", c, err)
	}
	o.color = "sometimes"
	if _, err := o.config(); err == nil {
		t.Error("--color sometimes: no error")
	}
}

// TestReplayBadInput: bad input is exit code 2 with one line naming the
// problem (and the line of the file), after what came before it.
func TestReplayBadInput(t *testing.T) {
	good := printEvents(t, events.FormatJSON, false, nil)
	lines := strings.SplitAfter(good, "\n")
	bad := func(i int, line string) string {
		l := append([]string{}, lines...)
		l[i] = line
		return strings.Join(l, "")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		in      string // the file, when not ""
		args    []string
		want    string
		printed int // lines on stdout before the error
	}{
		{"kind", bad(2, strings.Replace(lines[2], `"kind":"syscall"`, `"kind":"call"`, 1)), nil, `, line 3: key "kind": at byte 64: unknown value "call"`, 3},
		{"not JSON", bad(0, "hello\n"), nil, `, line 1: at byte 1: want '{'`, 1},
		{"truncated", bad(1, lines[1][:100]+"\n"), nil, `, line 2: key "src": at the end of the line: unterminated string`, 2},
		{"summary", bad(5, strings.Replace(lines[5], `"lost":0`, `"lost":-1`, 1)), nil, `, line 6: summary: key "lost": cannot unmarshal number -1`, 6},
		{"other type", bad(4, `{"type":"hello"}`+"\n"), nil, `, line 5: not a summary: type "hello"`, 5},
		{"no type", bad(4, `{"kind":"noport"}`+"\n"), nil, `, line 5: missing key "type"`, 5},
		{"too long", bad(3, `{"type":"event","x":"`+strings.Repeat("x", maxReplayLine)+`"}`+"\n"), nil, `, line 4: longer than 1048576 bytes`, 4},
		{"missing file", "", []string{filepath.Join(dir, "nothing.jsonl")}, `replay: open ` + filepath.Join(dir, "nothing.jsonl") + `: no such file or directory`, 0},
		{"directory", "", []string{dir}, `replay: ` + dir + ` is a directory`, 0},
		{"no file", "", []string{}, `replay takes one FILE (- for standard input), got 0 arguments`, 0},
		{"two files", "", []string{"a", "b"}, `replay takes one FILE (- for standard input), got 2 arguments`, 0},
		{"color", "", []string{"--color", "blue", "-"}, `--color "blue": want auto, always or never`, 0},
		{"flag", "", []string{"--count", "1", "-"}, `unknown flag: --count`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.in != "" {
				args = []string{writeRecord(t, tc.in)}
			}
			stdout, stderr, code := runUdptrace(t, nil, nil, append([]string{"replay"}, args...)...)
			if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "udptrace: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit code %d, stderr %q; want 2 and one line with %q", code, stderr, tc.want)
			}
			if tc.in == "" {
				return
			}
			if !strings.HasPrefix(stderr, "udptrace: "+args[0]+", line ") {
				t.Errorf("stderr %q does not name the file", stderr)
			}
			// The lines before the bad one were printed (header
			// included), and the summary only if it came before.
			if n := strings.Count(stdout, "\n"); n != tc.printed {
				t.Errorf("%d lines printed before the error, want %d:\n%s", n, tc.printed, stdout)
			}
		})
	}
}

// The record as the nobody user can read it, and the binary as it can run
// it: for TestE2ERecordReplay, which runs replay without privileges.
func nobodyCopy(t *testing.T) (dir, bin string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "udptrace-replay")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "udptrace")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// asNobody makes cmd run as user and group 65534, without capabilities.
func asNobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}
