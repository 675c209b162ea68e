package events

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ from what the code prints")

// replayFile prints every record of testdata/replay.jsonl (hand-written
// from the examples of the README and of Format's documentation: the three
// kinds, both families, every ICMP verdict and delivery outcome, local,
// local/? and remote senders, hostile names, extreme numbers) with a
// Printer in format f, with the header, and returns the output.
func replayFile(t *testing.T, f Format, color bool, explain func(*Event) string) string {
	t.Helper()
	in, err := os.ReadFile("testdata/replay.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := NewPrinter(&out, f, Clock{})
	p.SetLocation(time.UTC)
	p.SetColor(color)
	p.SetExplain(explain)
	if err := p.Header(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(in))
	for n := 1; sc.Scan(); n++ {
		var e Event
		ts, err := ParseJSON(sc.Bytes(), &e)
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if err := p.EventAt(&e, ts); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

// golden compares got with the file testdata/name, or writes it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(got, "\n")); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// TestReplayGolden renders the saved JSON lines of testdata/replay.jsonl
// as the table (testdata/replay.txt, checked by hand against the README's
// example), in colour (replay.color.txt), and as JSON again, which must give
// back the file byte for byte.
func TestReplayGolden(t *testing.T) {
	golden(t, "replay.txt", replayFile(t, FormatText, false, nil))
	golden(t, "replay.color.txt", replayFile(t, FormatText, true, nil))
	in, err := os.ReadFile("testdata/replay.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if got := replayFile(t, FormatJSON, false, nil); got != string(in) {
		t.Errorf("JSON again differs from testdata/replay.jsonl (-want +got):\n%s",
			cmp.Diff(strings.Split(string(in), "\n"), strings.Split(got, "\n")))
	}
	// Colour changes nothing in JSON.
	if got := replayFile(t, FormatJSON, true, nil); got != string(in) {
		t.Error("JSON in colour differs from testdata/replay.jsonl")
	}
}

// roundTrip prints e as JSON, parses the line, and returns the Event, its
// time and the line.
func roundTrip(t *testing.T, e *Event) (Event, time.Time, string) {
	t.Helper()
	line := printLine(t, FormatJSON, e)
	var got Event
	ts, err := ParseJSON([]byte(line), &got)
	if err != nil {
		t.Fatalf("ParseJSON(%s): %v", line, err)
	}
	return got, ts, line
}

// printAt prints e at ts in format f, in UTC, with a Printer whose Clock
// is not the one of the test events.
func printAt(t *testing.T, f Format, e *Event, ts time.Time) string {
	t.Helper()
	var out bytes.Buffer
	p := NewPrinter(&out, f, ClockWithOffset(-42))
	p.SetLocation(time.UTC)
	if err := p.EventAt(e, ts); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestParseJSONRoundTrip: every event of the format tests, printed as JSON,
// parsed, and printed again at the time ParseJSON returns, gives the same
// JSON line and the same text line.
func TestParseJSONRoundTrip(t *testing.T) {
	hostile := loEvent()
	hostile.IfName = name16("a\"b\\c\td")
	hostile.Comm = [16]byte{'"', '\\', 0x1b, '[', '2', 'J', 0x7f, 0xff, 0xc3, '(', 0xe2, 0x80, 0xa8, 'x', 'y', 'z'}
	hostile.SenderComm = [16]byte{0x1b, ']', '0', ';', '"', 0xe2, 0x80, 0xa9, 0xed, 0xa0, 0x80, '\\', 0xc2, 0x85, 'q', 'r'}
	v6 := loEvent()
	v6.Family, v6.ICMP = FamilyIPv6, ICMPRateLimitedHost
	v6.Src, v6.Dst = netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("2001:db8::2")
	v6g := v6
	v6g.ICMP = ICMPRateLimitedGlobal
	v4h := loEvent()
	v4h.ICMP = ICMPRateLimitedHost
	unknown := remoteEvent()
	unknown.ICMP, unknown.Chain = ICMPUnknown, 0
	noTask := deliveryEvent()
	noTask.SenderPID, noTask.SenderComm, noTask.Outcome = 0, [16]byte{}, OutcomeQueued
	ignored := deliveryEvent()
	ignored.Outcome, ignored.Err = OutcomeIgnored, 0
	gone := deliveryEvent()
	gone.Outcome, gone.Err, gone.Sender, gone.SockIno, gone.OriginNS = OutcomeNoSocket, 0, SenderRemote, 0, 0
	notSeen := gone
	notSeen.Outcome = OutcomeUnknown
	other := syscallEvent()
	other.Syscall, other.FD, other.Err = 999, math.MaxInt32, -111
	neg := syscallEvent()
	neg.Syscall, neg.FD, neg.Err = -5, -1, 11
	io := syscallEvent()
	io.Syscall, io.FD, io.OriginNS = -1, -1, 0
	hours := syscallEvent()
	hours.Syscall = 307
	hours.OriginNS = hours.BootNS - 3_723_500_001_000
	maxes := loEvent()
	maxes.SPort, maxes.DPort, maxes.Len = math.MaxUint16, 0, math.MaxUint16
	maxes.IfIndex, maxes.Netns, maxes.CPU, maxes.PID, maxes.TID = math.MaxUint32, math.MaxUint32, math.MaxUint32, math.MaxUint32, 0
	maxes.SenderPID, maxes.SenderTID, maxes.SenderUID, maxes.SenderNetns = math.MaxUint32, 1, math.MaxUint32, math.MaxUint32
	maxes.SenderCgroup, maxes.SockIno, maxes.Chain = math.MaxUint64, math.MaxUint64, math.MaxUint64
	maxes.IfName, maxes.Comm, maxes.SenderComm = name16("0123456789abcdef"), name16("ABCDEFGHIJKLMNOP"), [16]byte{}
	for name, e := range map[string]Event{
		"local": loEvent(), "remote": remoteEvent(), "delivery": deliveryEvent(), "syscall": syscallEvent(),
		"hostile names": hostile, "ipv6 per host": v6, "ipv6 global": v6g, "ipv4 per host": v4h,
		"unknown verdict, no chain": unknown, "local/?": noTask, "ignored": ignored, "no socket": gone,
		"not seen": notSeen, "other syscall": other, "negative syscall": neg, "io_uring": io,
		"hours": hours, "maximum numbers": maxes,
	} {
		t.Run(name, func(t *testing.T) {
			got, ts, line := roundTrip(t, &e)
			if want := testClock.Time(e.BootNS); !ts.Equal(want) {
				t.Errorf("time %v, want %v", ts, want)
			}
			if again := printAt(t, FormatJSON, &got, ts); again != line {
				t.Errorf("JSON again\n got %s\nwant %s", again, line)
			}
			if text, want := printAt(t, FormatText, &got, ts), printLine(t, FormatText, &e); text != want {
				t.Errorf("text\n got %q\nwant %q", text, want)
			}
		})
	}
}

// TestParseJSONFields checks the Event ParseJSON fills from one line of
// each kind: every field, BootNS and OriginNS included.
func TestParseJSONFields(t *testing.T) {
	e := syscallEvent()
	e.IfName = [16]byte{'e', 0xff, 0xc0}
	got, ts, _ := roundTrip(t, &e)
	boot := uint64(testTime.UnixNano() + 512_000 - 41_234)
	want := e
	want.IfName = [16]byte{'e', 0xff, 0xff} // each invalid byte is a \ufffd
	want.BootNS, want.OriginNS = boot, boot-512_000
	if diff := cmp.Diff(want, got, addrCmp); diff != "" {
		t.Errorf("syscall Event (-want +got):\n%s", diff)
	}
	if want := testTime.Add(512_000 - 41_234); !ts.Equal(want) || !(Clock{}).Time(got.BootNS).Equal(ts) {
		t.Errorf("time %v, want %v, and the zero Clock's", ts, want)
	}

	// A remote sender's fields are zero, whatever the line says; FD and
	// Syscall are -1 outside syscall records.
	e = remoteEvent()
	e.SenderPID, e.SenderComm, e.FD, e.Syscall = 7, name16("stale"), 3, 0
	got, _, _ = roundTrip(t, &e)
	want = e
	want.BootNS = uint64(testTime.UnixNano() + 111_111_000)
	want.SenderPID, want.SenderComm, want.FD, want.Syscall = 0, [16]byte{}, -1, -1
	if diff := cmp.Diff(want, got, addrCmp); diff != "" {
		t.Errorf("remote Event (-want +got):\n%s", diff)
	}
}

func TestParseJSONTimes(t *testing.T) {
	line := func(time string, since uint64) string {
		return strings.Replace(strings.Replace(printLine(t, FormatJSON, ptr(syscallEvent())),
			"2026-11-25T14:16:02.123927555Z", time, 1), `"since_send_ns":512000`, `"since_send_ns":`+uitoa(since), 1)
	}
	for _, tc := range []struct {
		time           string
		since          uint64
		boot, origin   uint64
		wantTime       time.Time
		wantSinceAgain uint64
	}{
		{"2026-11-25T14:16:02.123927555Z", 0, uint64(time.Date(2026, 11, 25, 14, 16, 2, 123927555, time.UTC).UnixNano()), 0,
			time.Date(2026, 11, 25, 14, 16, 2, 123927555, time.UTC), 0},
		{"2026-11-25T15:16:02.5+01:00", 1, uint64(time.Date(2026, 11, 25, 14, 16, 2, 5e8, time.UTC).UnixNano()),
			uint64(time.Date(2026, 11, 25, 14, 16, 2, 5e8, time.UTC).UnixNano()) - 1,
			time.Date(2026, 11, 25, 14, 16, 2, 5e8, time.UTC), 1},
		{"1970-01-01T00:00:01Z", 5e9, 5e9 + 1, 1, time.Unix(1, 0), 5e9},
		{"1969-12-31T23:59:59Z", math.MaxUint64 - 1, math.MaxUint64, 1, time.Unix(-1, 0), math.MaxUint64 - 1},
		{"1969-12-31T23:59:59Z", 0, 0, 0, time.Unix(-1, 0), 0},
	} {
		var e Event
		ts, err := ParseJSON([]byte(line(tc.time, tc.since)), &e)
		if err != nil {
			t.Fatalf("%s, %d: %v", tc.time, tc.since, err)
		}
		if !ts.Equal(tc.wantTime) || e.BootNS != tc.boot || e.OriginNS != tc.origin {
			t.Errorf("%s, %d: time %v, BootNS %d, OriginNS %d; want %v, %d, %d", tc.time, tc.since, ts, e.BootNS, e.OriginNS,
				tc.wantTime, tc.boot, tc.origin)
		}
		if since, _ := sinceSend(&e); since != tc.wantSinceAgain {
			t.Errorf("%s, %d: since the send %d, want %d", tc.time, tc.since, since, tc.wantSinceAgain)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func uitoa(v uint64) string { return string(appendUint(nil, v)) }

func appendUint(b []byte, v uint64) []byte {
	if v >= 10 {
		b = appendUint(b, v/10)
	}
	return append(b, byte('0'+v%10))
}

// TestParseJSONCompatible: keys in another order, white space, escapes
// udptrace does not write, and keys it does not know (of any type,
// "explain" among them) are all fine.
func TestParseJSONCompatible(t *testing.T) {
	e := loEvent()
	_, _, line := roundTrip(t, &e)
	want := printAt(t, FormatJSON, &e, testClock.Time(e.BootNS))
	for name, in := range map[string]string{
		"unknown keys": strings.Replace(line, `"kind"`, `"new":{"a":[1,-2.5e+3,true,false,null,"x\"}"],"b":{}},"n":-0.0,"s":"\u00e9","kind"`, 1),
		"explain last": strings.Replace(line, "}\n", `,"explain":"udp_rcv -> __udp4_lib_rcv"}`, 1),
		"white space":  " \t{ " + strings.ReplaceAll(strings.ReplaceAll(line[1:len(line)-2], `,"`, " ,\r\n \""), `":`, `" : `) + " }  \r\n",
		"no newline":   strings.TrimSuffix(line, "\n"),
		"escapes":      strings.Replace(strings.Replace(line, `"ctx_comm":"nc"`, `"ctx_comm":"\u006e\u0063"`, 1), `"ifname":"lo"`, `"ifname":"l\u006F"`, 1),
		"reordered": `{"since_send_ns":41234,"errno":"","fd":-1,"syscall":"","sock_ino":5678,"delivery":"","icmp_reason":"",` +
			`"chain":"aa33a51c58da1f8d","sender_netns":4026531840,"sender_cgroup":5183,"sender_comm":"nc","sender_uid":1000,` +
			`"sender_tid":123,"sender_pid":123,"sender":"local","ctx_comm":"nc","ctx_tid":123,"ctx_pid":123,"cpu":1,` +
			`"icmp":"sent","netns":4026531840,"ifname":"lo","ifindex":1,"len":13,"dport":9,"dst":"127.0.0.1","sport":40000,` +
			`"src":"127.0.0.1","family":"ipv4","kind":"noport","time":"2026-11-25T14:16:02.123456789Z","type":"event"}`,
	} {
		var got Event
		ts, err := ParseJSON([]byte(in), &got)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, in)
			continue
		}
		if again := printAt(t, FormatJSON, &got, ts); again != want {
			t.Errorf("%s: JSON again\n got %s\nwant %s", name, again, want)
		}
	}

	// Escapes in names: \ufffd is one byte of invalid UTF-8, surrogate
	// pairs are one character.
	in := strings.Replace(line, `"ctx_comm":"nc"`, `"ctx_comm":"\ud83d\ude00\ufffd\uFFFD\u2028\u001b\"\\\/\b\f\n"`, 1)
	var got Event
	if _, err := ParseJSON([]byte(in), &got); err != nil {
		t.Fatal(err)
	}
	if want := [16]byte{0xf0, 0x9f, 0x98, 0x80, 0xff, 0xff, 0xe2, 0x80, 0xa8, 0x1b, '"', '\\', '/', '\b', '\f', '\n'}; len(got.CommString()) != 16 || got.Comm != want {
		t.Errorf("ctx_comm %q, want %q", got.Comm, want)
	}
}

func TestParseJSONErrors(t *testing.T) {
	e := loEvent()
	_, _, line := roundTrip(t, &e)
	s := syscallEvent()
	_, _, sline := roundTrip(t, &s)
	sub := func(l, old, new string) string {
		if !strings.Contains(l, old) {
			t.Fatalf("%q is not in %s", old, l)
		}
		return strings.Replace(l, old, new, 1)
	}
	for _, tc := range []struct {
		in string
		// at, when not "", is where the error is: the position of its
		// first occurrence in the line must follow "at byte " in the
		// error, before want. "$" is the end of the line.
		at, want string
	}{
		{"", "$", "want '{'"},
		{"[]", "[", "want '{'"},
		{"{}", "", `missing key "type"`},
		{`{"type":"event"}`, "", `missing key "time"`},
		{sub(line, `,"since_send_ns":41234`, ""), "", `missing key "since_send_ns"`},
		{sub(line, `"type":"event"`, `"type":"summary"`), "", `not an event record: type "summary"`},
		{`{"type":"summary","duration_s":1.5}`, "", `not an event record: type "summary"`},
		{sub(line, `"type":"event"`, `"type":1`), "1", `want a string`},
		{sub(line, `"kind":"noport"`, `"kind":"drop"`), `"drop"`, `unknown value "drop"`},
		{sub(line, `"family":"ipv4"`, `"family":"inet"`), `"inet"`, `unknown value "inet"`},
		{sub(line, `"icmp":"sent"`, `"icmp":"rate-limited-host"`), `"rate-`, `unknown value "rate-limited-host"`},
		{sub(line, `"icmp":"sent"`, `"icmp":"rate-limited"`), "", `icmp_reason "" in a rate-limited ipv4 record`},
		{sub(sub(line, `"icmp":"sent"`, `"icmp":"rate-limited"`), `"icmp_reason":""`, `"icmp_reason":"Icmp6OutRateLimitHost"`), "", `icmp_reason "Icmp6OutRateLimitHost" in a rate-limited ipv4 record`},
		{sub(line, `"icmp_reason":""`, `"icmp_reason":"OutRateLimitHost"`), "", `icmp_reason "OutRateLimitHost" with icmp "sent"`},
		{sub(line, `"icmp_reason":""`, `"icmp_reason":"ratelimit"`), `"ratelimit"`, `unknown value "ratelimit"`},
		{sub(line, `"sender":"local"`, `"sender":"nearby"`), `"nearby"`, `unknown value "nearby"`},
		{sub(line, `"delivery":""`, `"delivery":"refused"`), `"refused"`, `unknown value "refused"`},
		{sub(line, `"chain":"aa33a51c58da1f8d"`, `"chain":"AA33A51C58DA1F8D"`), `"AA`, `"AA33A51C58DA1F8D": want 16 lowercase hexadecimal digits, or ""`},
		{sub(line, `"chain":"aa33a51c58da1f8d"`, `"chain":"aa33a51c"`), `"aa33a51c"`, `"aa33a51c": want 16 lowercase hexadecimal digits, or ""`},
		{sub(line, `"src":"127.0.0.1"`, `"src":"::1"`), "", `address ::1 in an ipv4 record`},
		{sub(line, `"dst":"127.0.0.1"`, `"dst":"localhost"`), `"localhost"`, `"localhost" is not an IP address`},
		{sub(line, `"sport":40000`, `"sport":65536`), "65536", `number out of range 0 to 65535`},
		{sub(line, `"sport":40000`, `"sport":-1`), `-1,"dst"`, `number out of range 0 to 65535`},
		{sub(line, `"sport":40000`, `"sport":4e4`), "e4", `want an integer`},
		{sub(line, `"sport":40000`, `"sport":4.0`), `.0,"dst"`, `want an integer`},
		{sub(line, `"sport":40000`, `"sport":040000`), "040000", `number with a leading zero`},
		{sub(line, `"sport":40000`, `"sport":"40000"`), `"40000"`, `want a number`},
		{sub(line, `"sport":40000`, `"sport":null`), `null`, `want a number`},
		{sub(line, `"sender_cgroup":5183`, `"sender_cgroup":18446744073709551616`), "18446744073709551616", `number out of range`},
		{sub(line, `"sender_cgroup":5183`, `"sender_cgroup":-18446744073709551615`), "-18446744073709551615", `number out of range 0 to 18446744073709551615`},
		{sub(line, `"netns":4026531840`, `"netns":4294967296`), "4294967296", `number out of range 0 to 4294967295`},
		{sub(line, `"ifname":"lo"`, `"ifname":"0123456789abcdefg"`), `"0123456789abcdefg"`, `name longer than 16 bytes`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"n\u0000c"`), `"n\u0000c"`, `NUL in a name`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"n`+"\x01"+`c"`), "\x01", `control character in a string`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"n\xc"`), `\xc`, `bad escape`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"n\u12"`), `\u12`, `bad \u escape`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"\ud83d"`), `\ud83d`, `lone UTF-16 surrogate`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"\ud83d\u0041"`), `\ud83d`, `lone UTF-16 surrogate`},
		{sub(line, `"ctx_comm":"nc"`, `"ctx_comm":"\ude00"`), `\ude00`, `lone UTF-16 surrogate`},
		{sub(line, `"time":"2026-11-25T14:16:02.123456789Z"`, `"time":"2026-11-25 14:16:02"`), `"2026`, `time "2026-11-25 14:16:02" is not RFC 3339`},
		{sub(line, `"syscall":""`, `"syscall":"read"`), "", `syscall "read", fd -1 in a noport record: want "" and -1`},
		{sub(line, `"fd":-1`, `"fd":3`), "", `syscall "?", fd 3 in a noport record: want "" and -1`},
		{sub(sline, `"syscall":"read"`, `"syscall":""`), "", `syscall "" in a syscall record`},
		{sub(sline, `"syscall":"read"`, `"syscall":"recv"`), `"recv"`, `unknown value "recv"`},
		{sub(sline, `"syscall":"read"`, `"syscall":"syscall_0"`), `"syscall_0"`, `unknown value "syscall_0"`},
		{sub(sline, `"syscall":"read"`, `"syscall":"syscall_-1"`), `"syscall_-1"`, `unknown value "syscall_-1"`},
		{sub(sline, `"syscall":"read"`, `"syscall":"syscall_07"`), `"syscall_07"`, `unknown value "syscall_07"`},
		{sub(sline, `"syscall":"read"`, `"syscall":"syscall_9x"`), `"syscall_9x"`, `unknown value "syscall_9x"`},
		{sub(sline, `"fd":3`, `"fd":2147483648`), "2147483648", `number out of range -2147483648 to 2147483647`},
		{sub(sline, `"fd":3`, `"fd":-2147483649`), "-2147483649", `number out of range -2147483648 to 2147483647`},
		{sub(sline, `"errno":"ECONNREFUSED"`, `"errno":"errno 111"`), `"errno 111"`, `unknown value "errno 111"`},
		{sub(sline, `"errno":"ECONNREFUSED"`, `"errno":"errno 0"`), `"errno 0"`, `unknown value "errno 0"`},
		{sub(sline, `"errno":"ECONNREFUSED"`, `"errno":"EAGAIN"`), `"EAGAIN"`, `unknown value "EAGAIN"`},
		{sub(line, `"since_send_ns":41234`, `"since_send_ns":18446744073709551615`), "18446744073709551615", `number out of range 0 to 18446744073709551614`},
		{sub(line, `"len":13`, `"len":13,"len":13`), "", `key "len" twice`},
		{sub(line, `"len":13`, `"len":13,`), `,"ifindex"`, `want a string`},
		{sub(line, `"len":13`, `"len" 13`), `13,"ifindex"`, `want ':'`},
		{sub(line, `"len":13`, `"len":13 "x":1`), `"x"`, `want ',' or '}'`},
		{sub(line, "}\n", "} {}\n"), `{}`, `data after the object`},
		{sub(line, "}\n", ""), "$", `want ',' or '}'`},
		{sub(line, "}\n", `,"x":"abc`), "$", `unterminated string`},
		{sub(line, "}\n", `,"x":"abc\`), `\`, `unterminated string`},
		{sub(line, `"len":13`, `"len":13,"x":[1,2}`), "}", `want ',' or ']'`},
		{sub(line, `"len":13`, `"len":13,"x":{"a"}`), "}", `want ':'`},
		{sub(line, `"len":13`, `"len":13,"x":tru`), "tru", `want a value`},
		{sub(line, `"len":13`, `"len":13,"x":]`), "]", `want a value`},
		{sub(line, `"len":13`, `"len":13,"x":01`), "01", `bad number`},
		{sub(line, `"len":13`, `"len":13,"x":1.`), `,"ifindex"`, `bad number`},
		{sub(line, `"len":13`, `"len":13,"x":1e`), `,"ifindex"`, `bad number`},
		{sub(line, `"len":13`, `"len":13,"x":`+strings.Repeat("[", 34)+strings.Repeat("]", 34)), "[]]", `nested too deeply`},
	} {
		var got Event
		_, err := ParseJSON([]byte(tc.in), &got)
		want := tc.want
		switch tc.at {
		case "":
		case "$":
			want = "at the end of the line: " + want
		default:
			i := strings.Index(tc.in, tc.at)
			if i < 0 {
				t.Fatalf("%q is not in %s", tc.at, tc.in)
			}
			want = fmt.Sprintf("at byte %d: %s", i+1, want)
		}
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("ParseJSON(%s):\n got error %v\nwant one ending in %q", tc.in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q is not one line", err)
		}
		if isType := strings.Contains(tc.want, "not an event record"); err != nil && errors.Is(err, ErrNotEvent) != isType {
			t.Errorf("ParseJSON(%s): errors.Is(%v, ErrNotEvent) != %v", tc.in, err, isType)
		}
	}
}

// FuzzParseJSON: whatever the line, ParseJSON does not panic; what it
// accepts prints as a line that it parses to the same Event, and that
// prints the same again.
func FuzzParseJSON(f *testing.F) {
	in, err := os.ReadFile("testdata/replay.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(in, []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"type":"event","x":[{"y":null}]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var e Event
		ts, err := ParseJSON(line, &e)
		if err != nil {
			return
		}
		first := printAt(t, FormatJSON, &e, ts)
		var e2 Event
		ts2, err := ParseJSON([]byte(first), &e2)
		if err != nil {
			t.Fatalf("ParseJSON of its own output %s: %v", first, err)
		}
		if !ts2.Equal(ts) {
			t.Fatalf("time %v, then %v", ts, ts2)
		}
		if second := printAt(t, FormatJSON, &e2, ts2); second != first {
			t.Fatalf("printed\n%s\nthen\n%s", first, second)
		}
		if text, text2 := printAt(t, FormatText, &e, ts), printAt(t, FormatText, &e2, ts2); text != text2 {
			t.Fatalf("text\n%q\nthen\n%q", text, text2)
		}
	})
}

func BenchmarkParseJSON(b *testing.B) {
	e := syscallEvent()
	line := []byte(printLine(b, FormatJSON, &e))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseJSON(line, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayText is replay's per-record path: parse a JSON line, print
// a table row.
func BenchmarkReplayText(b *testing.B) {
	e := syscallEvent()
	line := []byte(printLine(b, FormatJSON, &e))
	p := NewPrinter(bufio.NewWriter(io.Discard), FormatText, Clock{})
	b.ReportAllocs()
	for b.Loop() {
		ts, err := ParseJSON(line, &e)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.EventAt(&e, ts); err != nil {
			b.Fatal(err)
		}
	}
}
