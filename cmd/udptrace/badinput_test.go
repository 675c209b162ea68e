package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// badInput is one command line udptrace must refuse: its exit code is 2 and
// its stderr the one line "udptrace: MSG (see CMD --help)", which names
// name (the flag, the argument or the command at fault).
type badInput struct {
	args []string
	name string
	msg  string
}

// badInputs are the refused command lines: every flag of every command with
// a malformed, empty, out-of-range or conflicting value, arguments where
// none are taken, unknown commands and flags. dir is a directory readable
// by everyone.
func badInputs(dir string) []badInput {
	missing := filepath.Join(dir, "nothing.jsonl")
	return []badInput{
		// udptrace: the filters.
		{[]string{"--port", "70000"}, "--port", `--port: "70000" is not a port number 0-65535`},
		{[]string{"--port", "10-5"}, "--port", `--port: "10-5": range runs backwards`},
		{[]string{"--port", ""}, "--port", `--port: "": empty item (want PORT or LO-HI, e.g. 53,8000-8100)`},
		{[]string{"--port", "53,,54"}, "--port", `--port: "53,,54": empty item (want PORT or LO-HI, e.g. 53,8000-8100)`},
		{[]string{"--port", "abc"}, "--port", `--port: "abc" is not a port number 0-65535`},
		{[]string{"--port", "-1"}, "--port", `--port: "-1": "" is not a port number 0-65535 (want PORT or LO-HI)`},
		{[]string{"--port", "1\n2"}, "--port", `--port: "1\n2" is not a port number 0-65535`},
		{[]string{"-p", "1-2-3"}, "--port", `--port: "1-2-3": "2-3" is not a port number 0-65535 (want PORT or LO-HI)`},
		{[]string{"-p"}, "-p", `flag needs an argument: 'p' in -p`},
		{[]string{"--sport", "65536"}, "--sport", `--sport: "65536" is not a port number 0-65535`},
		{[]string{"--sport", "x"}, "--sport", `--sport: "x" is not a port number 0-65535`},
		{[]string{"--src", "10.0.0.0/33"}, "--src", `--src: "10.0.0.0/33" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`},
		{[]string{"--src", "bogus"}, "--src", `--src: "bogus" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`},
		{[]string{"--src", ""}, "--src", `--src: "": empty item (want ADDR or CIDR, e.g. 10.0.0.0/8,fd00::/64)`},
		{[]string{"--src", "10.0.0.0/8,"}, "--src", `--src: "10.0.0.0/8,": empty item (want ADDR or CIDR, e.g. 10.0.0.0/8,fd00::/64)`},
		{[]string{"--src", "fe80::1%eth0"}, "--src", `--src: "fe80::1%eth0" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`},
		{[]string{"--dst", "::/129"}, "--dst", `--dst: "::/129" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`},
		{[]string{"--dst", "300.1.1.1"}, "--dst", `--dst: "300.1.1.1" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`},
		{[]string{"-4", "--dst", "::1"}, "--dst", `--dst ::1/128 can never match with -4 (IPv4 only)`},
		{[]string{"-6", "--src", "10.0.0.1"}, "--src", `--src 10.0.0.1/32 can never match with -6 (IPv6 only)`},
		{[]string{"-4", "-6"}, "-4", `-4/--ipv4 and -6/--ipv6 together: give one family, or neither for both`},
		{[]string{"--ipv6", "--ipv4"}, "--ipv6", `-4/--ipv4 and -6/--ipv6 together: give one family, or neither for both`},
		{[]string{"--lean", "--pid", "1"}, "--lean", `--lean records no sender, so --pid/--comm cannot select chains: give one or the other`},
		{[]string{"--comm", "dig", "--lean"}, "--lean", `--lean records no sender, so --pid/--comm cannot select chains: give one or the other`},
		{[]string{"--ipv4=maybe"}, "--ipv4", `invalid argument "maybe" for "-4, --ipv4" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"--pid", "0"}, "--pid", `--pid: "0" is not a process id (a positive number)`},
		{[]string{"--pid", "-3"}, "--pid", `--pid: "-3" is not a process id (a positive number)`},
		{[]string{"--pid", "abc"}, "--pid", `--pid: "abc" is not a process id (a positive number)`},
		{[]string{"--pid", ""}, "--pid", `--pid: "" is not a process id (a positive number)`},
		{[]string{"--pid", "12,x"}, "--pid", `--pid: "x" is not a process id (a positive number)`},
		{[]string{"--pid", "4294967296"}, "--pid", `--pid: "4294967296" is not a process id (a positive number)`},
		{[]string{"--comm", ""}, "--comm", `--comm: empty name`},
		{[]string{"--netns", ""}, "--netns", `--netns: empty value`},
		{[]string{"--netns", "/nonexistent"}, "--netns", `--netns "/nonexistent": no such file or directory`},
		{[]string{"--netns", "nosuchname"}, "--netns", `--netns "nosuchname": no network namespace named "nosuchname" in /var/run/netns (see ip netns list)`},
		{[]string{"--netns", "/etc/passwd"}, "--netns", `--netns "/etc/passwd": "/etc/passwd" is not a namespace file`},
		{[]string{"--netns", "/proc/self/ns/mnt"}, "--netns", `--netns "/proc/self/ns/mnt": "/proc/self/ns/mnt" is a namespace, but not a network namespace`},
		{[]string{"--netns", "1"}, "--netns", `--netns "1": no network namespace with inode 1 (looked in /var/run/netns and /proc/*/ns/net)`},
		{[]string{"--netns", "99999999999"}, "--netns", `--netns "99999999999": inode out of range`},
		// udptrace: output, limits, the kernel side.
		{[]string{"--json=maybe"}, "--json", `invalid argument "maybe" for "-j, --json" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"--explain=maybe"}, "--explain", `invalid argument "maybe" for "--explain" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"--record", ""}, "--record", `--record: empty value`},
		{[]string{"--record"}, "--record", `flag needs an argument: --record`},
		{[]string{"--ready-file", ""}, "--ready-file", `--ready-file: empty value`},
		{[]string{"--color", "maybe"}, "--color", `--color "maybe": want auto, always or never`},
		{[]string{"--color", ""}, "--color", `--color: empty value`},
		{[]string{"--count", "-1"}, "--count", `invalid argument "-1" for "-c, --count" flag: strconv.ParseUint: parsing "-1": invalid syntax`},
		{[]string{"--count", "abc"}, "--count", `invalid argument "abc" for "-c, --count" flag: strconv.ParseUint: parsing "abc": invalid syntax`},
		{[]string{"--count", ""}, "--count", `invalid argument "" for "-c, --count" flag: strconv.ParseUint: parsing "": invalid syntax`},
		{[]string{"-c", "0"}, "--count", `--count 0: want at least 1 (without -c, until Ctrl-C)`},
		{[]string{"-c"}, "-c", `flag needs an argument: 'c' in -c`},
		{[]string{"--duration", "-1s"}, "--duration", `--duration -1s: want a positive duration such as 30s (without -d, until Ctrl-C)`},
		{[]string{"--duration", "0"}, "--duration", `--duration 0s: want a positive duration such as 30s (without -d, until Ctrl-C)`},
		{[]string{"--duration", "soon"}, "--duration", `invalid argument "soon" for "-d, --duration" flag: time: invalid duration "soon"`},
		{[]string{"-d", ""}, "--duration", `invalid argument "" for "-d, --duration" flag: time: invalid duration ""`},
		{[]string{"--ring-size", "3000"}, "--ring-size", `--ring-size "3000": want a power of two between 4K and 1024M`},
		{[]string{"--ring-size", "2048M"}, "--ring-size", `--ring-size "2048M": want a power of two between 4K and 1024M`},
		{[]string{"--ring-size", "2G"}, "--ring-size", `--ring-size "2G": want a size such as 8M, 512K or 4194304`},
		{[]string{"--ring-size", "0"}, "--ring-size", `--ring-size "0": want a size such as 8M, 512K or 4194304`},
		{[]string{"--ring-size", "17592186044420M"}, "--ring-size", `--ring-size "17592186044420M": want a power of two between 4K and 1024M`},
		{[]string{"--ring-size", ""}, "--ring-size", `--ring-size: empty value`},
		{[]string{"--backend", "foo"}, "--backend", `--backend: "foo" is not a backend (want auto, fentry, tracepoint or kprobe)`},
		{[]string{"--backend", ""}, "--backend", `--backend: empty value`},
		{[]string{"--metrics", "bogus"}, "--metrics", `--metrics "bogus": want HOST:PORT or :PORT, e.g. :9477 or 127.0.0.1:9477`},
		{[]string{"--metrics", ":99999"}, "--metrics", `--metrics ":99999": port "99999" is not a number from 0 to 65535`},
		{[]string{"--metrics", "bad host:1"}, "--metrics", `--metrics "bad host:1": "bad host" is neither an IP address nor a host name`},
		{[]string{"--metrics", ""}, "--metrics", `--metrics: empty value`},
		{[]string{"--verbose=maybe"}, "--verbose", `invalid argument "maybe" for "-v, --verbose" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		// udptrace: what is not a flag of it.
		{[]string{"extra-arg"}, "extra-arg", `unknown command or argument "extra-arg": filters are flags, e.g. --port 53; the commands are completion, demo, doctor, replay, top`},
		{[]string{"frobnicate"}, "frobnicate", `unknown command or argument "frobnicate": filters are flags, e.g. --port 53; the commands are completion, demo, doctor, replay, top`},
		{[]string{"tpo"}, "tpo", `unknown command "tpo": did you mean top?`},
		{[]string{"--version", "x"}, "x", `unknown command or argument "x": filters are flags, e.g. --port 53; the commands are completion, demo, doctor, replay, top`},
		{[]string{"--bogus"}, "--bogus", `unknown flag: --bogus`},
		{[]string{"--fo\no"}, "--fo", `unknown flag: --fo\no`},
		{[]string{"-x"}, "-x", `unknown shorthand flag: 'x' in -x`},
		{[]string{"help", "frobnicate"}, "frobnicate", `help: no command "frobnicate"`},
		{[]string{"completion", "frobnicate"}, "frobnicate", `completion: no shell "frobnicate" (want bash, zsh, fish or powershell)`},
		// top.
		{[]string{"top", "--interval", "0"}, "--interval", `--interval 0s: at least 100ms`},
		{[]string{"top", "--interval", "-1s"}, "--interval", `--interval -1s: at least 100ms`},
		{[]string{"top", "--interval", "50ms"}, "--interval", `--interval 50ms: at least 100ms`},
		{[]string{"top", "--interval", "abc"}, "--interval", `invalid argument "abc" for "--interval" flag: time: invalid duration "abc"`},
		{[]string{"top", "--rows", "0"}, "--rows", `--rows 0: at least 1`},
		{[]string{"top", "-n", "abc"}, "--rows", `invalid argument "abc" for "-n, --rows" flag: strconv.ParseInt: parsing "abc": invalid syntax`},
		{[]string{"top", "--table-size", "0"}, "--table-size", `--table-size 0: from 1 to 1048576`},
		{[]string{"top", "--table-size", "1048577"}, "--table-size", `--table-size 1048577: from 1 to 1048576`},
		{[]string{"top", "--table-size", "abc"}, "--table-size", `invalid argument "abc" for "--table-size" flag: strconv.ParseInt: parsing "abc": invalid syntax`},
		{[]string{"top", "-4", "-6"}, "-4", `-4/--ipv4 and -6/--ipv6 together: give one family, or neither for both`},
		{[]string{"top", "--port", "70000"}, "--port", `--port: "70000" is not a port number 0-65535`},
		{[]string{"top", "--sport", "9-1"}, "--sport", `--sport: "9-1": range runs backwards`},
		{[]string{"top", "--src", "bogus"}, "--src", `--src: "bogus" is not an address or CIDR (e.g. 10.0.0.0/8, fd00::/64)`},
		{[]string{"top", "--netns", "nosuchname"}, "--netns", `--netns "nosuchname": no network namespace named "nosuchname" in /var/run/netns (see ip netns list)`},
		{[]string{"top", "--pid", "0"}, "--pid", `--pid: "0" is not a process id (a positive number)`},
		{[]string{"top", "--comm", ""}, "--comm", `--comm: empty name`},
		{[]string{"top", "--json=x"}, "--json", `invalid argument "x" for "-j, --json" flag: strconv.ParseBool: parsing "x": invalid syntax`},
		{[]string{"top", "--duration", "0"}, "--duration", `--duration 0s: want a positive duration such as 30s (without -d, until Ctrl-C)`},
		{[]string{"top", "--ready-file", ""}, "--ready-file", `--ready-file: empty value`},
		{[]string{"top", "--backend", "foo"}, "--backend", `--backend: "foo" is not a backend (want auto, fentry, tracepoint or kprobe)`},
		{[]string{"top", "--metrics", "bogus"}, "--metrics", `--metrics "bogus": want HOST:PORT or :PORT, e.g. :9477 or 127.0.0.1:9477`},
		{[]string{"top", "--ring-size", "8M"}, "--ring-size", `unknown flag: --ring-size`},
		{[]string{"top", "--count", "1"}, "--count", `unknown flag: --count`},
		{[]string{"top", "extra"}, "extra", `top takes no arguments, got "extra"`},
		// replay.
		{[]string{"replay"}, "FILE", `replay takes one FILE (- for standard input), got 0 arguments`},
		{[]string{"replay", "a", "b"}, "FILE", `replay takes one FILE (- for standard input), got 2 arguments`},
		{[]string{"replay", missing}, missing, `replay: open ` + missing + `: no such file or directory`},
		{[]string{"replay", dir}, dir, `replay: ` + dir + ` is a directory, not a file of JSON lines`},
		{[]string{"replay", ""}, "FILE", `replay: empty FILE name (- for standard input)`},
		{[]string{"replay", "--color", "maybe", "-"}, "--color", `--color "maybe": want auto, always or never`},
		{[]string{"replay", "--color", "", "-"}, "--color", `--color: empty value`},
		{[]string{"replay", "--json=x", "-"}, "--json", `invalid argument "x" for "-j, --json" flag: strconv.ParseBool: parsing "x": invalid syntax`},
		{[]string{"replay", "--explain=x", "-"}, "--explain", `invalid argument "x" for "--explain" flag: strconv.ParseBool: parsing "x": invalid syntax`},
		{[]string{"replay", "--count", "1", "-"}, "--count", `unknown flag: --count`},
		// demo.
		{[]string{"demo", "x"}, "x", `demo takes no arguments, got "x"`},
		{[]string{"demo", "--pause", "-1s"}, "--pause", `--pause -1s: want a duration of 0 or more, e.g. 2s`},
		{[]string{"demo", "--pause", "abc"}, "--pause", `invalid argument "abc" for "--pause" flag: time: invalid duration "abc"`},
		{[]string{"demo", "--no-pause", "--pause", "1s"}, "--no-pause", `--no-pause and --pause together: give one`},
		{[]string{"demo", "--no-pause=x"}, "--no-pause", `invalid argument "x" for "--no-pause" flag: strconv.ParseBool: parsing "x": invalid syntax`},
		{[]string{"demo", "--backend", "foo"}, "--backend", `--backend: "foo" is not a backend (want auto, fentry, tracepoint or kprobe)`},
		{[]string{"demo", "--backend", ""}, "--backend", `--backend: empty value`},
		{[]string{"demo", "--color", "maybe"}, "--color", `--color "maybe": want auto, always or never`},
		{[]string{"demo", "--color", ""}, "--color", `--color: empty value`},
		{[]string{"demo", "--explain=maybe"}, "--explain", `invalid argument "maybe" for "--explain" flag: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{[]string{"demo", "--port", "53"}, "--port", `unknown flag: --port`},
		// doctor, and the demo's hidden client.
		{[]string{"doctor", "x"}, "x", `doctor takes no arguments, got "x"`},
		{[]string{"doctor", "--bogus"}, "--bogus", `unknown flag: --bogus`},
		{[]string{"demo-client"}, "MODE", `demo-client wants MODE ADDR [N], got 0 arguments`},
	}
}

// TestBadInput runs the real binary on every bad input: exit code 2, and
// stderr exactly its one line. The binary runs without privileges (as
// nobody when the test is root), so a command line that got as far as
// loading BPF would end with exit code 1, permission denied, as the
// control runs show: exit code 2 says it was refused before.
func TestBadInput(t *testing.T) {
	dir, bin := nobodyCopy(t)
	run := func(args ...string) (stderr string, code int) {
		cmd := exec.Command(bin, args...)
		if os.Geteuid() == 0 {
			asNobody(cmd)
		}
		cmd.Dir = dir
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return errOut.String(), code
	}
	for _, args := range [][]string{{"-d", "1s"}, {"top", "-d", "1s"}} {
		if stderr, code := run(args...); code != 1 || !strings.Contains(stderr, "udptrace: permission denied: ") {
			t.Fatalf("control %q: exit code %d, stderr %q; want 1, permission denied (loading BPF unprivileged)", args, code, stderr)
		}
	}
	subcommands := map[string]bool{"top": true, "replay": true, "demo": true, "doctor": true, "completion": true, demoClientCmd: true}
	for _, tc := range badInputs(dir) {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			help := "udptrace"
			if len(tc.args) > 0 && subcommands[tc.args[0]] {
				help += " " + tc.args[0]
			}
			want := "udptrace: " + tc.msg + " (see " + help + " --help)\n"
			stderr, code := run(tc.args...)
			if code != 2 || stderr != want {
				t.Errorf("exit code %d, stderr\n%q\nwant 2 and\n%q", code, stderr, want)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.Contains(stderr, tc.name) {
				t.Errorf("stderr %q: want one line naming %s", stderr, tc.name)
			}
		})
	}
}
