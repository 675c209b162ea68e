package events

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Format is an output format of Printer.
type Format int

const (
	// FormatText prints an aligned table for people, one line per event
	// under a header line (Printer.Header):
	//
	//	TIME            CHAIN    SRC                   DST                     LEN IFACE           NETNS ICMP     SENDER                  CPU CTX
	//	14:16:02.123456 aa33a51c 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc
	//	14:16:02.234567 04283584 192.0.2.7:53124       10.0.0.2:161             40 eth0       4026531840 not-sent remote                    0 0/swapper/0
	//	14:16:02.123501 aa33a51c ↳ port-unreachable for 127.0.0.1:40000 -> 127.0.0.1:9 reached 123/nc socket:[5678] in netns 4026531840 (lo): ECONNREFUSED set on the connected socket
	//	14:16:02.123927 aa33a51c ↳ read(fd 3) returned ECONNREFUSED to 123/nc (tid 124), 512µs after the send
	//
	// TIME is local wall-clock time with microseconds. CHAIN is the top 32
	// bits of the chain id in hexadecimal, the same on every line of one
	// datagram (its drop, the port-unreachable's delivery, the failed
	// call), or - when there is none.
	//
	// A KindNoPort line fills the other columns. SRC and DST are
	// address:port, IPv6 as [addr]:port; an address longer than its column
	// pushes the rest of the line right rather than being cut, as does any
	// longer cell. LEN is the UDP length field. IFACE is the receiving
	// device, or if<index> when the name is empty. NETNS is the namespace's
	// inode number. ICMP is sent, not-sent or unknown, or, when the kernel
	// rate-limited the port-unreachable, the counter it incremented:
	// OutRateLimitGlobal, OutRateLimitHost or Icmp6OutRateLimitHost. SENDER
	// is PID/COMM of the local task that sent the datagram, local/? when a
	// local socket sent it but the datagram left after the send call
	// returned (it waited for neighbour resolution), or remote when no local
	// socket was seen sending it; the column fits any Linux PID and task
	// name. CTX is PID/COMM of the task that ran the receive path, on CPU.
	//
	// KindDelivery and KindSyscall lines follow CHAIN with an arrow and a
	// sentence instead of columns. A delivery line names the original
	// datagram (SRC -> DST), the sending socket it reached (PID/COMM or
	// local/? as SENDER, or "an unknown socket" when the sender was not
	// seen, then socket:[inode] when known), the namespace and device where
	// the port-unreachable arrived, and what the kernel did with it
	// (Outcome.Describe). A syscall line names the call and its fd (? when
	// unknown), the error it returned, the process and thread that made it,
	// and how long after the send it returned (left out when the send was
	// not seen), rounded to the microsecond.
	//
	// Non-printable characters of device and task names are shown as '?'.
	FormatText Format = iota

	// FormatJSON prints one JSON object per line (JSON Lines), with no
	// header. Each line is one record of a datagram's chain: its drop
	// ("kind":"noport"), the delivery of the port-unreachable it caused to
	// a local socket ("delivery"), and the call on that socket that
	// returned the error ("syscall"); the lines of one datagram share
	// "chain". All kinds have the same keys, which always appear, in this
	// order:
	//
	//	type           string  always "event"
	//	time           string  wall-clock time, RFC 3339 in UTC with exactly
	//	                       nine fractional digits:
	//	                       "2026-11-25T14:16:02.123456789Z"; when the
	//	                       datagram was dropped (noport), when the
	//	                       port-unreachable reached the socket (delivery),
	//	                       when the call returned (syscall)
	//	kind           string  "noport": no socket listened on the destination
	//	                       port; "delivery": the ICMP/ICMPv6
	//	                       port-unreachable that such a datagram caused
	//	                       reached the local socket that sent it;
	//	                       "syscall": a call on that socket returned the
	//	                       error
	//	family         string  "ipv4" or "ipv6"
	//	src            string  source address of the datagram (the original
	//	                       one, in all kinds), no brackets; IPv6 in
	//	                       canonical form (RFC 5952, as net/netip prints
	//	                       it)
	//	sport          number  source port
	//	dst            string  destination address, as src
	//	dport          number  destination port
	//	len            number  the UDP header's length field (header + payload)
	//	ifindex        number  receiving device's ifindex (of the datagram;
	//	                       of the port-unreachable for delivery)
	//	ifname         string  receiving device's name ("" when unknown)
	//	netns          number  inode number of the receiving device's namespace
	//	icmp           string  "sent", "not-sent", "rate-limited" or
	//	                       "unknown": whether the kernel sent an
	//	                       ICMP/ICMPv6 port-unreachable
	//	cpu            number  CPU that ran the receive path (the call for
	//	                       syscall)
	//	ctx_pid        number  tgid of the task that ran the receive path (that
	//	                       made the call for syscall)
	//	ctx_tid        number  its thread id
	//	ctx_comm       string  its name
	//	sender         string  "local": a socket of this host was seen sending
	//	                       the datagram; "remote": none was; "untraced":
	//	                       senders were not recorded (--lean). Unless
	//	                       "local", the sender_* keys below are 0 and ""
	//	sender_pid     number  tgid of the task that sent the datagram (0 when
	//	                       the task is unknown, e.g. the datagram left
	//	                       after neighbour resolution)
	//	sender_tid     number  its thread id
	//	sender_uid     number  its user id
	//	sender_comm    string  its name
	//	sender_cgroup  number  its cgroup v2 id
	//	sender_netns   number  inode number of the sending socket's namespace
	//	chain          string  the chain id: 16 lowercase hexadecimal digits,
	//	                       a hash of the datagram that is the same on
	//	                       every record of it, and on any host that
	//	                       traces it (ChainID); "" when none
	//	icmp_reason    string  for "rate-limited", the kernel counter that
	//	                       moved: "OutRateLimitGlobal" (the global limit,
	//	                       icmp_msgs_per_sec), "OutRateLimitHost" or
	//	                       "Icmp6OutRateLimitHost" (the per-host limit);
	//	                       "" otherwise
	//	delivery       string  what the socket made of the port-unreachable
	//	                       (delivery and syscall): "econnrefused" (a
	//	                       connected socket: its next call fails with
	//	                       ECONNREFUSED), "errqueue" (IP_RECVERR: on its
	//	                       error queue), "ignored" (not connected, no
	//	                       IP_RECVERR: dropped), "no-socket" (the socket
	//	                       was closed), "unknown" (the socket was not seen
	//	                       sending: ignored or closed); "" for noport
	//	sock_ino       number  inode number of the sending socket, as in
	//	                       /proc/PID/fd/N -> socket:[sock_ino]; 0 when
	//	                       unknown
	//	syscall        string  the call that returned the error, as named on
	//	                       x86-64: "read", "recvmsg", "sendto", ..., "?"
	//	                       when unknown (io_uring, ...); "" unless syscall
	//	fd             number  its file descriptor; -1 when unknown and unless
	//	                       syscall
	//	errno          string  the error of delivery and syscall:
	//	                       "ECONNREFUSED" ("errno <n>" for any other);
	//	                       "" for noport
	//	since_send_ns  number  nanoseconds from the local send of the datagram
	//	                       to time; 0 when the send was not seen (or
	//	                       seemed to follow time)
	//
	// For example (on one line):
	//
	//	{"type":"event","time":"2026-11-25T14:16:02.123456789Z","kind":"noport",
	//	"family":"ipv4","src":"127.0.0.1","sport":40000,"dst":"127.0.0.1","dport":9,
	//	"len":13,"ifindex":1,"ifname":"lo","netns":4026531840,"icmp":"sent","cpu":1,
	//	"ctx_pid":123,"ctx_tid":123,"ctx_comm":"nc","sender":"local","sender_pid":123,
	//	"sender_tid":123,"sender_uid":1000,"sender_comm":"nc","sender_cgroup":5183,
	//	"sender_netns":4026531840,"chain":"aa33a51c58da1f8d","icmp_reason":"",
	//	"delivery":"","sock_ino":5678,"syscall":"","fd":-1,"errno":"","since_send_ns":41234}
	//
	// For a datagram from another host the sender keys are
	//
	//	"sender":"remote","sender_pid":0,"sender_tid":0,"sender_uid":0,
	//	"sender_comm":"","sender_cgroup":0,"sender_netns":0,
	//
	// and the chain of the first example goes on with a delivery and a
	// syscall line, which end in
	//
	//	"chain":"aa33a51c58da1f8d","icmp_reason":"","delivery":"econnrefused",
	//	"sock_ino":5678,"syscall":"","fd":-1,"errno":"ECONNREFUSED","since_send_ns":86234}
	//
	//	"chain":"aa33a51c58da1f8d","icmp_reason":"","delivery":"econnrefused",
	//	"sock_ino":5678,"syscall":"read","fd":3,"errno":"ECONNREFUSED","since_send_ns":512000}
	//
	// Strings are escaped so that the line is valid UTF-8 JSON whatever
	// bytes a task or device name holds: control characters as \u00XX,
	// invalid UTF-8 as \ufffd. New keys may be added in later versions;
	// readers should ignore keys they do not know.
	FormatJSON
)

// String returns "text" or "json".
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatJSON:
		return "json"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// ParseFormat returns the Format named s: "text" or "json".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "text":
		return FormatText, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("unknown output format %q (want text or json)", s)
}

// Layouts of the time column and key.
const (
	textTimeLayout = "15:04:05.000000"
	jsonTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"
)

// Text table columns, in order.
var textColumns = [...]struct {
	name  string
	width int // minimum, in characters
	right bool
}{
	{"TIME", len(textTimeLayout), false},
	{"CHAIN", 8, false}, // the top 32 bits of the chain id, in hex
	{"SRC", len("255.255.255.255:65535"), false},
	{"DST", len("255.255.255.255:65535"), false},
	{"LEN", len("65535"), true},
	{"IFACE", 10, false},
	{"NETNS", len("4294967295"), true},
	{"ICMP", len("not-sent"), false},
	// PID/COMM: PIDs are at most PID_MAX_LIMIT (4194304), names 15
	// characters (TASK_COMM_LEN 16 with its NUL).
	{"SENDER", len("4194304/") + 15, false},
	{"CPU", 3, true},
	{"CTX", 0, false}, // last: never padded
}

// Printer writes events to an io.Writer in one Format. Each call to Event
// makes exactly one Write call, with one whole line (two lines in
// FormatText with SetExplain); give it a *bufio.Writer and flush that as
// needed. A Printer is not safe for concurrent use.
type Printer struct {
	w       io.Writer
	format  Format
	clock   Clock
	loc     *time.Location // of the text time column
	color   bool           // FormatText with ANSI colours
	explain func(*Event) string
	buf     []byte // the line being built, reused
	text    []byte // explain's text, reused
}

// NewPrinter returns a Printer that writes events to w in format f, with
// times converted by clock. Text times are in time.Local, without colour.
func NewPrinter(w io.Writer, f Format, clock Clock) *Printer {
	return &Printer{w: w, format: f, clock: clock, loc: time.Local, buf: make([]byte, 0, 512)}
}

// SetLocation sets the time zone of FormatText's time column (time.Local
// by default).
func (p *Printer) SetLocation(loc *time.Location) { p.loc = loc }

// SetColor turns ANSI colours (SGR escape sequences) on or off in
// FormatText; FormatJSON never has any. With colour the header is bold, the
// ICMP column green for sent, yellow for a rate-limit counter and red for
// not-sent, and the chain lines (delivery, syscall) are dim but for what
// the socket made of the port-unreachable and the errno the call returned.
// Column widths count only visible characters. Off, the default, the
// output has no escape sequence at all.
func (p *Printer) SetColor(on bool) { p.color = on }

// SetExplain sets a function that describes each event in words (nil, the
// default, for none). In FormatText its result follows each record on a
// line of its own, after four spaces and "⤷ kernel: ", with non-printable
// characters shown as '?' as in names; in FormatJSON it is the last key
// of the record, "explain":"<f(e)>", escaped as the other strings. The
// Printer allocates nothing for it beyond what f does.
func (p *Printer) SetExplain(f func(*Event) string) { p.explain = f }

// ANSI SGR sequences of the coloured text output.
const (
	sgrReset  = "\x1b[0m"
	sgrBold   = "\x1b[1m"
	sgrDim    = "\x1b[2m"
	sgrNormal = "\x1b[22m" // neither bold nor dim
	sgrRed    = "\x1b[31m"
	sgrGreen  = "\x1b[32m"
	sgrYellow = "\x1b[33m"
)

// Header writes the column header line for FormatText, and nothing for
// FormatJSON.
func (p *Printer) Header() error {
	switch p.format {
	case FormatText:
	case FormatJSON:
		return nil
	default:
		return fmt.Errorf("unknown output format %d", int(p.format))
	}
	b := p.buf[:0]
	if p.color {
		b = append(b, sgrBold...)
	}
	for i, c := range textColumns {
		if i > 0 {
			b = append(b, ' ')
		}
		start := len(b)
		b = append(b, c.name...)
		b = pad(b, start, c.width, c.right, 0)
	}
	if p.color {
		b = append(b, sgrReset...)
	}
	b = append(b, '\n')
	p.buf = b
	_, err := p.w.Write(b)
	return err
}

// Event writes one line for e, at the wall-clock time of e.BootNS by the
// Printer's Clock. It allocates nothing.
func (p *Printer) Event(e *Event) error {
	return p.EventAt(e, p.clock.Time(e.BootNS))
}

// EventAt writes one line for e as Event does, but at wall-clock time t
// whatever e.BootNS says: for events that come with their time, as
// ParseJSON's do. It allocates nothing (but what the SetExplain function
// does).
func (p *Printer) EventAt(e *Event, t time.Time) error {
	switch p.format {
	case FormatText:
		p.buf = p.appendText(p.buf[:0], e, t)
		if p.explain != nil {
			p.text = append(p.text[:0], p.explain(e)...)
		}
		if p.explain != nil && len(p.text) > 0 { // "": nothing to add
			p.buf = append(p.buf, "    ⤷ kernel: "...)
			p.buf, _ = appendPrintable(p.buf, p.text)
			p.buf = append(p.buf, '\n')
		}
	case FormatJSON:
		p.buf = appendJSON(p.buf[:0], e, t)
		if p.explain != nil {
			p.text = append(p.text[:0], p.explain(e)...)
			p.buf = p.buf[:len(p.buf)-2] // "}\n"
			p.buf = append(p.buf, `,"explain":`...)
			p.buf = appendJSONString(p.buf, p.text)
			p.buf = append(p.buf, "}\n"...)
		}
	default:
		return fmt.Errorf("unknown output format %d", int(p.format))
	}
	_, err := p.w.Write(p.buf)
	return err
}

// appendJSON appends e as a FormatJSON line, newline included.
func appendJSON(b []byte, e *Event, t time.Time) []byte {
	b = append(b, `{"type":"event","time":"`...)
	b = t.UTC().AppendFormat(b, jsonTimeLayout)
	b = append(b, `","kind":"`...)
	b = append(b, e.Kind.String()...)
	b = append(b, `","family":"`...)
	b = append(b, e.Family.String()...)
	b = append(b, `","src":"`...)
	b = e.Src.AppendTo(b)
	b = append(b, `","sport":`...)
	b = strconv.AppendUint(b, uint64(e.SPort), 10)
	b = append(b, `,"dst":"`...)
	b = e.Dst.AppendTo(b)
	b = append(b, `","dport":`...)
	b = strconv.AppendUint(b, uint64(e.DPort), 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendUint(b, uint64(e.Len), 10)
	b = append(b, `,"ifindex":`...)
	b = strconv.AppendUint(b, uint64(e.IfIndex), 10)
	b = append(b, `,"ifname":`...)
	b = appendJSONString(b, cstring(e.IfName[:]))
	b = append(b, `,"netns":`...)
	b = strconv.AppendUint(b, uint64(e.Netns), 10)
	b = append(b, `,"icmp":"`...)
	b = append(b, e.ICMP.String()...)
	b = append(b, `","cpu":`...)
	b = strconv.AppendUint(b, uint64(e.CPU), 10)
	b = append(b, `,"ctx_pid":`...)
	b = strconv.AppendUint(b, uint64(e.PID), 10)
	b = append(b, `,"ctx_tid":`...)
	b = strconv.AppendUint(b, uint64(e.TID), 10)
	b = append(b, `,"ctx_comm":`...)
	b = appendJSONString(b, cstring(e.Comm[:]))
	b = append(b, `,"sender":"`...)
	b = append(b, e.Sender.String()...)
	if e.Sender != SenderLocal {
		// Whatever the Event holds: a remote sender has no task.
		b = append(b, `","sender_pid":0,"sender_tid":0,"sender_uid":0,"sender_comm":"",`+
			`"sender_cgroup":0,"sender_netns":0`...)
	} else {
		b = append(b, `","sender_pid":`...)
		b = strconv.AppendUint(b, uint64(e.SenderPID), 10)
		b = append(b, `,"sender_tid":`...)
		b = strconv.AppendUint(b, uint64(e.SenderTID), 10)
		b = append(b, `,"sender_uid":`...)
		b = strconv.AppendUint(b, uint64(e.SenderUID), 10)
		b = append(b, `,"sender_comm":`...)
		b = appendJSONString(b, cstring(e.SenderComm[:]))
		b = append(b, `,"sender_cgroup":`...)
		b = strconv.AppendUint(b, e.SenderCgroup, 10)
		b = append(b, `,"sender_netns":`...)
		b = strconv.AppendUint(b, uint64(e.SenderNetns), 10)
	}
	b = append(b, `,"chain":"`...)
	if e.Chain != 0 {
		b = appendHex(b, e.Chain, 16)
	}
	b = append(b, `","icmp_reason":"`...)
	b = append(b, e.ICMP.Reason(e.Family)...)
	b = append(b, `","delivery":"`...)
	b = append(b, e.Outcome.String()...)
	b = append(b, `","sock_ino":`...)
	b = strconv.AppendUint(b, e.SockIno, 10)
	if e.Kind == KindSyscall {
		b = append(b, `,"syscall":"`...)
		b = appendSyscallName(b, e.Syscall)
		b = append(b, `","fd":`...)
		b = strconv.AppendInt(b, int64(e.FD), 10)
	} else {
		b = append(b, `,"syscall":"","fd":-1`...)
	}
	b = append(b, `,"errno":"`...)
	if e.Err != 0 {
		b = appendErrno(b, e.Err)
	}
	b = append(b, `","since_send_ns":`...)
	since, _ := sinceSend(e)
	b = strconv.AppendUint(b, since, 10)
	return append(b, "}\n"...)
}

// sinceSend returns how long after the local send e happened, in
// nanoseconds, and whether that is known: OriginNS is set and not after
// BootNS.
func sinceSend(e *Event) (uint64, bool) {
	if e.OriginNS == 0 || e.BootNS < e.OriginNS {
		return 0, false
	}
	return e.BootNS - e.OriginNS, true
}

// errnoECONNREFUSED is ECONNREFUSED on Linux (all architectures).
const errnoECONNREFUSED = 111

// appendErrno appends the name of errno n: "ECONNREFUSED", or "errno <n>"
// for the others, which the BPF side does not report.
func appendErrno(b []byte, n int32) []byte {
	if n == errnoECONNREFUSED {
		return append(b, "ECONNREFUSED"...)
	}
	b = append(b, "errno "...)
	return strconv.AppendInt(b, int64(n), 10)
}

// appendHex appends the low digits*4 bits of x as digits lowercase
// hexadecimal digits, leading zeros included.
func appendHex(b []byte, x uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hexDigits[x>>(4*uint(i))&0xf])
	}
	return b
}

// appendText appends e as a FormatText line, newline included.
func (p *Printer) appendText(b []byte, e *Event, t time.Time) []byte {
	// Columns, as indexes of textColumns.
	const (
		colTime = iota
		colChain
		colSrc
		colDst
		colLen
		colIface
		colNetns
		colICMP
		colSender
		colCPU
		colCtx
	)
	chainLine := e.Kind == KindDelivery || e.Kind == KindSyscall
	if p.color && chainLine {
		b = append(b, sgrDim...) // up to the outcome
	}
	start := len(b)
	b = t.In(p.loc).AppendFormat(b, textTimeLayout)
	b = endCell(b, start, colTime)

	start = len(b)
	if e.Chain == 0 {
		b = append(b, '-')
	} else {
		b = appendHex(b, e.Chain>>32, 8)
	}
	b = endCell(b, start, colChain)

	switch e.Kind {
	case KindDelivery:
		return append(appendDeliveryText(b, e, p.color), '\n')
	case KindSyscall:
		return append(appendSyscallText(b, e, p.color), '\n')
	}

	start = len(b)
	b = netip.AddrPortFrom(e.Src, e.SPort).AppendTo(b)
	b = endCell(b, start, colSrc)

	start = len(b)
	b = netip.AddrPortFrom(e.Dst, e.DPort).AppendTo(b)
	b = endCell(b, start, colDst)

	start = len(b)
	b = strconv.AppendUint(b, uint64(e.Len), 10)
	b = endCell(b, start, colLen)

	start = len(b)
	b = appendIface(b, e)
	b = endCell(b, start, colIface)

	start = len(b)
	b = strconv.AppendUint(b, uint64(e.Netns), 10)
	b = endCell(b, start, colNetns)

	start = len(b)
	hidden := 0 // bytes of escape sequences in the cell
	reason := e.ICMP.Reason(e.Family)
	if p.color {
		switch {
		case reason != "":
			b = append(b, sgrYellow...)
		case e.ICMP == ICMPSent:
			b = append(b, sgrGreen...)
		case e.ICMP == ICMPNotSent:
			b = append(b, sgrRed...)
		}
		hidden = len(b) - start
	}
	if reason != "" {
		b = append(b, reason...) // the kernel's counter: why it was not sent
	} else {
		b = append(b, e.ICMP.String()...)
	}
	if hidden > 0 {
		b = append(b, sgrReset...)
		hidden += len(sgrReset)
	}
	b = append(pad(b, start, textColumns[colICMP].width, false, hidden), ' ')

	start = len(b)
	b = appendSenderText(b, e, e.Sender.String())
	b = endCell(b, start, colSender)

	start = len(b)
	b = strconv.AppendUint(b, uint64(e.CPU), 10)
	b = endCell(b, start, colCPU)

	b = appendTask(b, e.PID, &e.Comm)
	return append(b, '\n')
}

// appendIface appends the receiving device as the IFACE column shows it:
// its name, or if<index> when the name is empty.
func appendIface(b []byte, e *Event) []byte {
	if name := cstring(e.IfName[:]); len(name) > 0 {
		b, _ = appendPrintable(b, name)
		return b
	}
	b = append(b, "if"...)
	return strconv.AppendUint(b, uint64(e.IfIndex), 10)
}

// appendTask appends PID/COMM.
func appendTask(b []byte, pid uint32, comm *[16]byte) []byte {
	b = strconv.AppendUint(b, uint64(pid), 10)
	b = append(b, '/')
	b, _ = appendPrintable(b, cstring(comm[:]))
	return b
}

// appendSenderText appends the sender as the SENDER column shows it: PID/COMM
// of the local task that sent the datagram, local/? when the task is not
// known, and remote for a non-local sender.
func appendSenderText(b []byte, e *Event, remote string) []byte {
	switch {
	case e.Sender == SenderLocal && e.SenderPID == 0:
		// A local socket, but its datagram left after the send call
		// returned (neighbour resolution): the task is not known.
		return append(b, "local/?"...)
	case e.Sender == SenderLocal:
		return appendTask(b, e.SenderPID, &e.SenderComm)
	}
	return append(b, remote...)
}

// appendDeliveryText appends the sentence of a KindDelivery line:
//
//	↳ port-unreachable for SRC -> DST reached SENDER socket:[INO] in netns NETNS (IFACE): OUTCOME
//
// With color, the line so far is dim: it ends the dimness before OUTCOME
// and resets the attributes at the end.
func appendDeliveryText(b []byte, e *Event, color bool) []byte {
	b = append(b, "↳ port-unreachable for "...)
	b = netip.AddrPortFrom(e.Src, e.SPort).AppendTo(b)
	b = append(b, " -> "...)
	b = netip.AddrPortFrom(e.Dst, e.DPort).AppendTo(b)
	b = append(b, " reached "...)
	remote := "an unknown socket"
	if e.Sender != SenderRemote {
		remote = e.Sender.String() // an invalid kind: show it
	}
	b = appendSenderText(b, e, remote)
	if e.SockIno != 0 {
		b = append(b, " socket:["...)
		b = strconv.AppendUint(b, e.SockIno, 10)
		b = append(b, ']')
	}
	b = append(b, " in netns "...)
	b = strconv.AppendUint(b, uint64(e.Netns), 10)
	b = append(b, " ("...)
	b = appendIface(b, e)
	b = append(b, ')')
	if d := e.Outcome.Describe(); d != "" {
		b = append(b, ": "...)
		if color {
			b = append(b, sgrNormal...)
		}
		b = append(b, d...)
	}
	if color {
		b = append(b, sgrReset...)
	}
	return b
}

// appendSyscallText appends the sentence of a KindSyscall line:
//
//	↳ NAME(fd FD) returned ERRNO to PID/COMM (tid TID), DELAY after the send
//
// With color, the line so far is dim: only ERRNO is not, and it resets the
// attributes at the end.
func appendSyscallText(b []byte, e *Event, color bool) []byte {
	b = append(b, "↳ "...)
	b = appendSyscallName(b, e.Syscall)
	b = append(b, "(fd "...)
	if e.FD < 0 {
		b = append(b, '?')
	} else {
		b = strconv.AppendInt(b, int64(e.FD), 10)
	}
	b = append(b, ") returned "...)
	if color {
		b = append(b, sgrNormal...)
	}
	b = appendErrno(b, e.Err)
	if color {
		b = append(b, sgrDim...)
	}
	b = append(b, " to "...)
	b = appendTask(b, e.PID, &e.Comm)
	b = append(b, " (tid "...)
	b = strconv.AppendUint(b, uint64(e.TID), 10)
	b = append(b, ')')
	if since, ok := sinceSend(e); ok {
		b = append(b, ", "...)
		b = appendMicros(b, since)
		b = append(b, " after the send"...)
	}
	if color {
		b = append(b, sgrReset...)
	}
	return b
}

// appendMicros appends ns nanoseconds rounded to the microsecond (halves
// away from zero) as time.Duration.String prints it ("0s", "512µs",
// "1.5ms", "2.000001s", "1h2m3.5s"), without allocating and without
// overflowing for durations beyond time.Duration's range.
func appendMicros(b []byte, ns uint64) []byte {
	us := ns / 1000
	if ns%1000 >= 500 {
		us++
	}
	switch {
	case us == 0:
		return append(b, "0s"...)
	case us < 1000:
		b = strconv.AppendUint(b, us, 10)
		return append(b, "µs"...)
	case us < 1_000_000:
		b = strconv.AppendUint(b, us/1000, 10)
		b = appendFrac(b, us%1000, 3)
		return append(b, "ms"...)
	}
	secs := us / 1_000_000
	if h := secs / 3600; h > 0 {
		b = strconv.AppendUint(b, h, 10)
		b = append(b, 'h')
	}
	if secs >= 60 {
		b = strconv.AppendUint(b, secs/60%60, 10)
		b = append(b, 'm')
	}
	b = strconv.AppendUint(b, secs%60, 10)
	b = appendFrac(b, us%1_000_000, 6)
	return append(b, 's')
}

// appendFrac appends the fraction frac/10^digits as '.' and its digits
// without trailing zeros, or nothing when frac is 0.
func appendFrac(b []byte, frac uint64, digits int) []byte {
	if frac == 0 {
		return b
	}
	for frac%10 == 0 {
		frac /= 10
		digits--
	}
	b = append(b, '.')
	for i := digits - 1; i >= 0; i-- {
		d := frac
		for range i {
			d /= 10
		}
		b = append(b, byte('0'+d%10))
	}
	return b
}

// endCell pads the cell b[start:] to column col's width and appends the
// separator before the next column.
func endCell(b []byte, start, col int) []byte {
	c := textColumns[col]
	return append(pad(b, start, c.width, c.right, 0), ' ')
}

// pad pads the cell b[start:] with spaces to width characters, on the left
// if right is set and on the right otherwise. A longer cell is left as is.
// hidden bytes of the cell (escape sequences, all ASCII) are not counted
// as characters.
func pad(b []byte, start, width int, right bool, hidden int) []byte {
	n := width - (utf8.RuneCount(b[start:]) - hidden)
	if n <= 0 {
		return b
	}
	end := len(b)
	for range n {
		b = append(b, ' ')
	}
	if right {
		copy(b[start+n:], b[start:end])
		for i := start; i < start+n; i++ {
			b[i] = ' '
		}
	}
	return b
}
