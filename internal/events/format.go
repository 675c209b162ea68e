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
	//	TIME            SRC                   DST                     LEN IFACE           NETNS ICMP     SENDER                  CPU CTX
	//	14:16:02.123456 127.0.0.1:40000       127.0.0.1:9              13 lo         4026531840 sent     123/nc                    1 123/nc
	//	14:16:02.234567 192.0.2.7:53124       10.0.0.2:161             40 eth0       4026531840 not-sent remote                    0 0/swapper/0
	//
	// TIME is local wall-clock time with microseconds. SRC and DST are
	// address:port, IPv6 as [addr]:port; an address longer than its column
	// pushes the rest of the line right rather than being cut. LEN is the
	// UDP length field. IFACE is the receiving device, or if<index> when
	// the name is empty. NETNS is the namespace's inode number. ICMP is
	// sent, not-sent or unknown. SENDER is PID/COMM of the local task that
	// sent the datagram, local/? when a local socket sent it but the
	// datagram left after the send call returned (it waited for neighbour
	// resolution), or remote when no local socket was seen sending it; the
	// column fits any Linux PID and task name. CTX is PID/COMM of
	// the task that ran the receive path, on CPU. Non-printable characters
	// of IFACE and both COMMs are shown as '?'.
	FormatText Format = iota

	// FormatJSON prints one JSON object per line (JSON Lines), with no
	// header. Keys always appear, in this order:
	//
	//	type           string  always "event"
	//	time           string  wall-clock time, RFC 3339 in UTC with exactly
	//	                       nine fractional digits:
	//	                       "2026-11-25T14:16:02.123456789Z"
	//	kind           string  "noport": no socket listened on the destination
	//	                       port
	//	family         string  "ipv4" or "ipv6"
	//	src            string  source address, no brackets; IPv6 in canonical
	//	                       form (RFC 5952, as net/netip prints it)
	//	sport          number  source port
	//	dst            string  destination address, as src
	//	dport          number  destination port
	//	len            number  the UDP header's length field (header + payload)
	//	ifindex        number  receiving device's ifindex
	//	ifname         string  receiving device's name ("" when unknown)
	//	netns          number  inode number of the receiving device's namespace
	//	icmp           string  "sent", "not-sent" or "unknown": whether the
	//	                       kernel sent an ICMP/ICMPv6 port-unreachable
	//	cpu            number  CPU that ran the receive path
	//	ctx_pid        number  tgid of the task that ran the receive path
	//	ctx_tid        number  its thread id
	//	ctx_comm       string  its name
	//	sender         string  "local": a socket of this host was seen sending
	//	                       the datagram; "remote": none was, and the
	//	                       sender_* keys below are 0 and ""
	//	sender_pid     number  tgid of the task that sent the datagram (0 when
	//	                       the task is unknown, e.g. the datagram left
	//	                       after neighbour resolution)
	//	sender_tid     number  its thread id
	//	sender_uid     number  its user id
	//	sender_comm    string  its name
	//	sender_cgroup  number  its cgroup v2 id
	//	sender_netns   number  inode number of the sending socket's namespace
	//
	// For example (on one line):
	//
	//	{"type":"event","time":"2026-11-25T14:16:02.123456789Z","kind":"noport",
	//	"family":"ipv4","src":"127.0.0.1","sport":40000,"dst":"127.0.0.1","dport":9,
	//	"len":13,"ifindex":1,"ifname":"lo","netns":4026531840,"icmp":"sent","cpu":1,
	//	"ctx_pid":123,"ctx_tid":123,"ctx_comm":"nc","sender":"local","sender_pid":123,
	//	"sender_tid":123,"sender_uid":1000,"sender_comm":"nc","sender_cgroup":5183,
	//	"sender_netns":4026531840}
	//
	// and for a datagram from another host the last keys are
	//
	//	"sender":"remote","sender_pid":0,"sender_tid":0,"sender_uid":0,
	//	"sender_comm":"","sender_cgroup":0,"sender_netns":0}
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
// makes exactly one Write call with one whole line; give it a *bufio.Writer
// and flush that as needed. A Printer is not safe for concurrent use.
type Printer struct {
	w      io.Writer
	format Format
	clock  Clock
	loc    *time.Location // of the text time column
	buf    []byte         // the line being built, reused
}

// NewPrinter returns a Printer that writes events to w in format f, with
// times converted by clock.
func NewPrinter(w io.Writer, f Format, clock Clock) *Printer {
	return &Printer{w: w, format: f, clock: clock, loc: time.Local, buf: make([]byte, 0, 512)}
}

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
	for i, c := range textColumns {
		if i > 0 {
			b = append(b, ' ')
		}
		start := len(b)
		b = append(b, c.name...)
		b = pad(b, start, c.width, c.right)
	}
	b = append(b, '\n')
	p.buf = b
	_, err := p.w.Write(b)
	return err
}

// Event writes one line for e. It allocates nothing.
func (p *Printer) Event(e *Event) error {
	t := p.clock.Time(e.BootNS)
	switch p.format {
	case FormatText:
		p.buf = p.appendText(p.buf[:0], e, t)
	case FormatJSON:
		p.buf = appendJSON(p.buf[:0], e, t)
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
		return append(b, `","sender_pid":0,"sender_tid":0,"sender_uid":0,"sender_comm":"",`+
			`"sender_cgroup":0,"sender_netns":0}`+"\n"...)
	}
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
	return append(b, "}\n"...)
}

// appendText appends e as a FormatText line, newline included.
func (p *Printer) appendText(b []byte, e *Event, t time.Time) []byte {
	// Columns, as indexes of textColumns.
	const (
		colTime = iota
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
	start := len(b)
	b = t.In(p.loc).AppendFormat(b, textTimeLayout)
	b = endCell(b, start, colTime)

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
	if name := cstring(e.IfName[:]); len(name) > 0 {
		b, _ = appendPrintable(b, name)
	} else {
		b = append(b, "if"...)
		b = strconv.AppendUint(b, uint64(e.IfIndex), 10)
	}
	b = endCell(b, start, colIface)

	start = len(b)
	b = strconv.AppendUint(b, uint64(e.Netns), 10)
	b = endCell(b, start, colNetns)

	start = len(b)
	b = append(b, e.ICMP.String()...)
	b = endCell(b, start, colICMP)

	start = len(b)
	switch {
	case e.Sender == SenderLocal && e.SenderPID == 0:
		// A local socket, but its datagram left after the send call
		// returned (neighbour resolution): the task is not known.
		b = append(b, "local/?"...)
	case e.Sender == SenderLocal:
		b = strconv.AppendUint(b, uint64(e.SenderPID), 10)
		b = append(b, '/')
		b, _ = appendPrintable(b, cstring(e.SenderComm[:]))
	default:
		b = append(b, e.Sender.String()...)
	}
	b = endCell(b, start, colSender)

	start = len(b)
	b = strconv.AppendUint(b, uint64(e.CPU), 10)
	b = endCell(b, start, colCPU)

	b = strconv.AppendUint(b, uint64(e.PID), 10)
	b = append(b, '/')
	b, _ = appendPrintable(b, cstring(e.Comm[:]))
	return append(b, '\n')
}

// endCell pads the cell b[start:] to column col's width and appends the
// separator before the next column.
func endCell(b []byte, start, col int) []byte {
	c := textColumns[col]
	return append(pad(b, start, c.width, c.right), ' ')
}

// pad pads the cell b[start:] with spaces to width characters, on the left
// if right is set and on the right otherwise. A longer cell is left as is.
func pad(b []byte, start, width int, right bool) []byte {
	n := width - utf8.RuneCount(b[start:])
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
