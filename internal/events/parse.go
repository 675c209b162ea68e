package events

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrNotEvent is the error that ParseJSON wraps when the line is a JSON
// object whose "type" is not "event", such as udptrace's summary line.
var ErrNotEvent = errors.New(`not an event record`)

// The keys of a FormatJSON record, in their order; ParseJSON keeps the set
// it has seen as bits.
const (
	keyType = iota
	keyTime
	keyKind
	keyFamily
	keySrc
	keySport
	keyDst
	keyDport
	keyLen
	keyIfindex
	keyIfname
	keyNetns
	keyICMP
	keyCPU
	keyCtxPID
	keyCtxTID
	keyCtxComm
	keySender
	keySenderPID
	keySenderTID
	keySenderUID
	keySenderComm
	keySenderCgroup
	keySenderNetns
	keyChain
	keyICMPReason
	keyDelivery
	keySockIno
	keySyscall
	keyFD
	keyErrno
	keySinceSend
	numKeys
)

var jsonKeys = [numKeys]string{
	"type", "time", "kind", "family", "src", "sport", "dst", "dport", "len", "ifindex",
	"ifname", "netns", "icmp", "cpu", "ctx_pid", "ctx_tid", "ctx_comm", "sender",
	"sender_pid", "sender_tid", "sender_uid", "sender_comm", "sender_cgroup",
	"sender_netns", "chain", "icmp_reason", "delivery", "sock_ino", "syscall", "fd",
	"errno", "since_send_ns",
}

// ParseJSON is the inverse of FormatJSON: it fills e from line, one JSON
// object as Printer writes it (a trailing newline is allowed), and returns
// the record's wall-clock time, which Printer.EventAt prints it at. Every
// key of the schema must be there, once; keys ParseJSON does not know are
// ignored, as the schema's compatibility rule asks (among them "explain").
// The order of the keys does not matter. It is strict about the values: an
// unknown kind, family, ICMP verdict, sender, delivery outcome, syscall or
// errno string, an icmp_reason that does not fit the verdict and family, an
// address of the other family, a number out of its field's range or not an
// integer, or a syscall or fd in a record that is not of KindSyscall is an
// error. A line whose "type" is not "event" gives an error wrapping
// ErrNotEvent. On error, e is in an unspecified state.
//
// Printing the Event at the returned time gives back the same line in
// FormatJSON, and the line FormatText printed for the original record,
// with these exceptions: a name whose JSON was re-encoded by another tool
// may show a U+FFFD where udptrace printed '?' (ParseJSON reads the
// \ufffd escape, which udptrace writes for each byte of invalid UTF-8, as
// one such byte); and a KindSyscall record made in the same nanosecond as
// the send loses its ", 0s after the send" (since_send_ns is 0 for both
// "at once" and "unknown").
//
// JSON carries no CLOCK_BOOTTIME: ParseJSON sets BootNS to the time in
// Unix nanoseconds, so that the zero Clock converts it back (or, for a time
// not after since_send_ns nanoseconds past the epoch, to since_send_ns +
// 1), and OriginNS to BootNS - since_send_ns when since_send_ns is not 0,
// else to 0. The Sender fields of a "remote" record are set to zero,
// whatever the line says, as Decode does; so are FD and Syscall to -1 in
// records of other kinds than KindSyscall.
func ParseJSON(line []byte, e *Event) (time.Time, error) {
	*e = Event{}
	r := jsonReader{b: line}
	var (
		t           time.Time
		seen        uint64
		rateLimited bool
		reason      string // icmp_reason
		syscallSet  bool   // syscall is not ""
		since       uint64
		next        int // the index of the key expected next
	)
	r.space()
	if err := r.want('{'); err != nil {
		return t, err
	}
	r.space()
	if r.peek() == '}' {
		r.i++
	} else {
		for {
			r.space()
			key, err := r.str(r.tmp[:0])
			if err != nil {
				return t, err
			}
			r.space()
			if err := r.want(':'); err != nil {
				return t, err
			}
			r.space()
			k := keyIndex(key, next)
			next = k + 1
			if k < 0 {
				if err := r.skip(0); err != nil {
					return t, err
				}
			} else {
				if seen&(1<<k) != 0 {
					return t, fmt.Errorf("key %q twice", jsonKeys[k])
				}
				seen |= 1 << k
				switch k {
				case keyType:
					var s []byte
					if s, err = r.str(r.tmp[:0]); err == nil && string(s) != "event" {
						return t, fmt.Errorf("%w: type %q", ErrNotEvent, s)
					}
				case keyTime:
					t, err = r.time()
				case keyKind:
					e.Kind, err = r.kind()
				case keyFamily:
					e.Family, err = r.family()
				case keySrc:
					e.Src, err = r.addr()
				case keySport:
					e.SPort, err = r.uint16()
				case keyDst:
					e.Dst, err = r.addr()
				case keyDport:
					e.DPort, err = r.uint16()
				case keyLen:
					e.Len, err = r.uint16()
				case keyIfindex:
					e.IfIndex, err = r.uint32()
				case keyIfname:
					err = r.name(&e.IfName)
				case keyNetns:
					e.Netns, err = r.uint32()
				case keyICMP:
					e.ICMP, rateLimited, err = r.icmp()
				case keyCPU:
					e.CPU, err = r.uint32()
				case keyCtxPID:
					e.PID, err = r.uint32()
				case keyCtxTID:
					e.TID, err = r.uint32()
				case keyCtxComm:
					err = r.name(&e.Comm)
				case keySender:
					e.Sender, err = r.sender()
				case keySenderPID:
					e.SenderPID, err = r.uint32()
				case keySenderTID:
					e.SenderTID, err = r.uint32()
				case keySenderUID:
					e.SenderUID, err = r.uint32()
				case keySenderComm:
					err = r.name(&e.SenderComm)
				case keySenderCgroup:
					e.SenderCgroup, err = r.uint(math.MaxUint64)
				case keySenderNetns:
					e.SenderNetns, err = r.uint32()
				case keyChain:
					e.Chain, err = r.chain()
				case keyICMPReason:
					reason, err = r.reason()
				case keyDelivery:
					e.Outcome, err = r.outcome()
				case keySockIno:
					e.SockIno, err = r.uint(math.MaxUint64)
				case keySyscall:
					e.Syscall, syscallSet, err = r.syscall()
				case keyFD:
					var fd int64
					fd, err = r.int(math.MinInt32, math.MaxInt32)
					e.FD = int32(fd)
				case keyErrno:
					e.Err, err = r.errno()
				case keySinceSend:
					// OriginNS is at least 1, so BootNS - OriginNS is
					// at most MaxUint64 - 1.
					since, err = r.uint(math.MaxUint64 - 1)
				}
				if err != nil {
					return t, fmt.Errorf("key %q: %w", jsonKeys[k], err)
				}
			}
			r.space()
			if c := r.peek(); c == ',' {
				r.i++
				continue
			} else if c == '}' {
				r.i++
				break
			}
			return t, r.errorf("want ',' or '}'")
		}
	}
	r.space()
	if r.i != len(r.b) {
		return t, r.errorf("data after the object")
	}
	for k := range numKeys {
		if seen&(1<<k) == 0 {
			return t, fmt.Errorf("missing key %q", jsonKeys[k])
		}
	}

	// What depends on more than one key.
	for _, a := range [2]netip.Addr{e.Src, e.Dst} {
		if (e.Family == FamilyIPv4) != a.Is4() {
			return t, fmt.Errorf("address %s in an %s record", a, e.Family)
		}
	}
	switch {
	case !rateLimited && reason != "":
		return t, fmt.Errorf("icmp_reason %q with icmp %q", reason, e.ICMP)
	case !rateLimited:
	case reason == ICMPRateLimitedGlobal.Reason(e.Family):
		e.ICMP = ICMPRateLimitedGlobal
	case reason == ICMPRateLimitedHost.Reason(e.Family):
		e.ICMP = ICMPRateLimitedHost
	default:
		return t, fmt.Errorf("icmp_reason %q in a rate-limited %s record", reason, e.Family)
	}
	if e.Kind == KindSyscall {
		if !syscallSet {
			return t, fmt.Errorf(`syscall "" in a syscall record`)
		}
	} else {
		if syscallSet || e.FD != -1 {
			return t, fmt.Errorf("syscall %q, fd %d in a %s record: want \"\" and -1", SyscallName(e.Syscall), e.FD, e.Kind)
		}
		e.Syscall = -1
	}
	if e.Sender != SenderLocal {
		e.SenderCgroup = 0
		e.SenderPID, e.SenderTID, e.SenderUID, e.SenderNetns = 0, 0, 0, 0
		e.SenderComm = [16]byte{}
	}
	if ns := t.UnixNano(); ns > 0 && uint64(ns) > since {
		e.BootNS = uint64(ns)
	} else if since > 0 {
		e.BootNS = since + 1
	}
	if since > 0 {
		e.OriginNS = e.BootNS - since
	}
	return t, nil
}

// keyIndex returns the index of key in jsonKeys, or -1. It tries next
// first: the keys usually come in their order.
func keyIndex(key []byte, next int) int {
	if next >= 0 && next < len(jsonKeys) && string(key) == jsonKeys[next] {
		return next
	}
	for i, k := range jsonKeys {
		if string(key) == k {
			return i
		}
	}
	return -1
}

// jsonReader reads JSON from b, at b[i].
type jsonReader struct {
	b   []byte
	i   int
	tmp [64]byte // for strings
}

func (r *jsonReader) errorf(format string, a ...any) error {
	if r.i >= len(r.b) {
		return fmt.Errorf("at the end of the line: "+format, a...)
	}
	return fmt.Errorf("at byte %d: "+format, append([]any{r.i + 1}, a...)...)
}

// peek returns the next byte, or 0 at the end.
func (r *jsonReader) peek() byte {
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// space skips white space.
func (r *jsonReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// want reads the byte c.
func (r *jsonReader) want(c byte) error {
	if r.peek() != c {
		return r.errorf("want '%c'", c)
	}
	r.i++
	return nil
}

// str reads a string and appends its value to dst. It takes the escape
// \ufffd, which appendJSONString writes for each byte of invalid UTF-8,
// back as one such byte (0xff), and other escapes as the characters they
// stand for.
func (r *jsonReader) str(dst []byte) ([]byte, error) {
	if r.peek() != '"' {
		return dst, r.errorf("want a string")
	}
	r.i++
	start := r.i
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			dst = append(dst, r.b[start:r.i]...)
			r.i++
			return dst, nil
		case c < 0x20:
			return dst, r.errorf("control character in a string")
		case c == '\\':
			dst = append(dst, r.b[start:r.i]...)
			var err error
			if dst, err = r.escape(dst); err != nil {
				return dst, err
			}
			start = r.i
		default:
			r.i++
		}
	}
	return dst, r.errorf("unterminated string")
}

// escape reads the escape sequence at r.i and appends its character.
func (r *jsonReader) escape(dst []byte) ([]byte, error) {
	if r.i+1 >= len(r.b) {
		return dst, r.errorf("unterminated string")
	}
	c := r.b[r.i+1]
	switch c {
	case '"', '\\', '/':
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		u, ok := r.hex4(r.i + 2)
		if !ok {
			return dst, r.errorf(`bad \u escape`)
		}
		switch {
		case u == utf8.RuneError:
			r.i += 6
			return append(dst, 0xff), nil // never valid UTF-8
		case u >= 0xd800 && u < 0xdc00: // the first of a surrogate pair
			lo, ok := r.hex4(r.i + 8)
			if !ok || r.b[r.i+6] != '\\' || r.b[r.i+7] != 'u' || lo < 0xdc00 || lo > 0xdfff {
				return dst, r.errorf("lone UTF-16 surrogate")
			}
			r.i += 12
			return utf8.AppendRune(dst, utf16.DecodeRune(u, lo)), nil
		case u >= 0xdc00 && u <= 0xdfff:
			return dst, r.errorf("lone UTF-16 surrogate")
		}
		r.i += 6
		return utf8.AppendRune(dst, u), nil
	default:
		return dst, r.errorf("bad escape")
	}
	r.i += 2
	return append(dst, c), nil
}

// hex4 returns the value of the 4 hexadecimal digits at b[i:].
func (r *jsonReader) hex4(i int) (rune, bool) {
	if i+4 > len(r.b) {
		return 0, false
	}
	var v rune
	for _, c := range r.b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

// integer reads a JSON number that is an integer: its sign and magnitude.
func (r *jsonReader) integer() (neg bool, mag uint64, err error) {
	if r.peek() == '-' {
		neg = true
		r.i++
	}
	start := r.i
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		d := uint64(r.b[r.i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			r.i = start
			return neg, mag, r.errorf("number out of range")
		}
		mag = mag*10 + d
		r.i++
	}
	switch {
	case r.i == start:
		return neg, mag, r.errorf("want a number")
	case r.b[start] == '0' && r.i-start > 1:
		r.i = start
		return neg, mag, r.errorf("number with a leading zero")
	}
	if c := r.peek(); c == '.' || c == 'e' || c == 'E' {
		return neg, mag, r.errorf("want an integer")
	}
	return neg, mag, nil
}

// uint reads an integer from 0 to max.
func (r *jsonReader) uint(max uint64) (uint64, error) {
	start := r.i
	neg, mag, err := r.integer()
	if err != nil {
		return 0, err
	}
	if (neg && mag != 0) || mag > max {
		r.i = start
		return 0, r.errorf("number out of range 0 to %d", max)
	}
	return mag, nil
}

func (r *jsonReader) uint16() (uint16, error) {
	v, err := r.uint(math.MaxUint16)
	return uint16(v), err
}

func (r *jsonReader) uint32() (uint32, error) {
	v, err := r.uint(math.MaxUint32)
	return uint32(v), err
}

// int reads an integer from min (negative) to max (positive).
func (r *jsonReader) int(min, max int64) (int64, error) {
	start := r.i
	neg, mag, err := r.integer()
	if err != nil {
		return 0, err
	}
	if (neg && mag > uint64(-min)) || (!neg && mag > uint64(max)) {
		r.i = start
		return 0, r.errorf("number out of range %d to %d", min, max)
	}
	if neg {
		return -int64(mag), nil
	}
	return int64(mag), nil
}

// skip reads any value, depth levels deep in arrays and objects.
func (r *jsonReader) skip(depth int) error {
	if depth > 32 {
		return r.errorf("nested too deeply")
	}
	switch c := r.peek(); {
	case c == '"':
		_, err := r.str(r.tmp[:0])
		return err
	case c == '{', c == '[':
		r.i++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		r.space()
		if r.peek() == end {
			r.i++
			return nil
		}
		for {
			r.space()
			if c == '{' {
				if _, err := r.str(r.tmp[:0]); err != nil {
					return err
				}
				r.space()
				if err := r.want(':'); err != nil {
					return err
				}
				r.space()
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
			r.space()
			switch r.peek() {
			case ',':
				r.i++
			case end:
				r.i++
				return nil
			default:
				return r.errorf("want ',' or '%c'", end)
			}
		}
	case c == 't':
		return r.literal("true")
	case c == 'f':
		return r.literal("false")
	case c == 'n':
		return r.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return r.number()
	}
	return r.errorf("want a value")
}

// literal reads the word w.
func (r *jsonReader) literal(w string) error {
	if len(r.b)-r.i < len(w) || string(r.b[r.i:r.i+len(w)]) != w {
		return r.errorf("want a value")
	}
	r.i += len(w)
	return nil
}

// number reads any JSON number.
func (r *jsonReader) number() error {
	digits := func() int {
		n := 0
		for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.peek() == '-' {
		r.i++
	}
	start := r.i
	if n := digits(); n == 0 || (n > 1 && r.b[start] == '0') {
		r.i = start
		return r.errorf("bad number")
	}
	if r.peek() == '.' {
		r.i++
		if digits() == 0 {
			return r.errorf("bad number")
		}
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.i++
		if c := r.peek(); c == '+' || c == '-' {
			r.i++
		}
		if digits() == 0 {
			return r.errorf("bad number")
		}
	}
	return nil
}

// oneOf reads a string and returns the index of its value in names.
func (r *jsonReader) oneOf(names ...string) (int, error) {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil {
		return 0, err
	}
	for i, n := range names {
		if string(s) == n {
			return i, nil
		}
	}
	r.i = start
	return 0, r.errorf("unknown value %q", s)
}

func (r *jsonReader) time() (time.Time, error) {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(s))
	if err != nil {
		r.i = start
		return t, r.errorf("time %q is not RFC 3339", s)
	}
	return t, nil
}

func (r *jsonReader) kind() (Kind, error) {
	i, err := r.oneOf("noport", "delivery", "syscall")
	return KindNoPort + Kind(i), err
}

func (r *jsonReader) family() (Family, error) {
	i, err := r.oneOf("ipv4", "ipv6")
	return [2]Family{FamilyIPv4, FamilyIPv6}[i], err
}

func (r *jsonReader) addr() (netip.Addr, error) {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(string(s))
	if err != nil {
		r.i = start
		return a, r.errorf("%q is not an IP address", s)
	}
	return a, nil
}

// name reads a string into a task or device name: at most 16 bytes, no
// NUL.
func (r *jsonReader) name(dst *[16]byte) error {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil {
		return err
	}
	if len(s) > len(dst) {
		r.i = start
		return r.errorf("name longer than %d bytes", len(dst))
	}
	for _, c := range s {
		if c == 0 {
			r.i = start
			return r.errorf("NUL in a name")
		}
	}
	*dst = [16]byte{}
	copy(dst[:], s)
	return nil
}

// icmp reads the "icmp" key: ICMPRateLimitedGlobal stands for
// "rate-limited" until icmp_reason tells which limit.
func (r *jsonReader) icmp() (v ICMPVerdict, rateLimited bool, err error) {
	i, err := r.oneOf("unknown", "sent", "not-sent", "rate-limited")
	if i == 3 {
		return ICMPRateLimitedGlobal, true, err
	}
	return ICMPUnknown + ICMPVerdict(i), false, err
}

func (r *jsonReader) reason() (string, error) {
	names := [...]string{"", "OutRateLimitGlobal", "OutRateLimitHost", "Icmp6OutRateLimitHost"}
	i, err := r.oneOf(names[:]...)
	return names[i], err
}

func (r *jsonReader) sender() (SenderKind, error) {
	i, err := r.oneOf("remote", "local", "untraced")
	return SenderRemote + SenderKind(i), err
}

func (r *jsonReader) outcome() (Outcome, error) {
	i, err := r.oneOf("", "econnrefused", "errqueue", "ignored", "no-socket", "unknown")
	return OutcomeNone + Outcome(i), err
}

// chain reads 16 lowercase hexadecimal digits, or "" for 0.
func (r *jsonReader) chain() (uint64, error) {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil || len(s) == 0 {
		return 0, err
	}
	var v uint64
	ok := len(s) == 16
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			ok = false
		}
		v = v<<4 | uint64(c)
	}
	if !ok {
		r.i = start
		return 0, r.errorf("%q: want 16 lowercase hexadecimal digits, or \"\"", s)
	}
	return v, nil
}

// syscall reads a name as SyscallName writes it, and returns its number
// and whether it was not "".
func (r *jsonReader) syscall() (int32, bool, error) {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil || len(s) == 0 {
		return -1, false, err
	}
	if string(s) == "?" {
		return -1, true, nil
	}
	for _, nr := range socketSyscalls {
		if string(s) == syscallName(nr) {
			return nr, true, nil
		}
	}
	if digits, ok := cutPrefix(s, "syscall_"); ok {
		n := jsonReader{b: digits}
		nr, err := n.int(math.MinInt32, math.MaxInt32)
		// Not a number SyscallName names otherwise.
		if err == nil && n.i == len(digits) && nr != -1 && syscallName(int32(nr)) == "" {
			return int32(nr), true, nil
		}
	}
	r.i = start
	return -1, false, r.errorf("unknown value %q", s)
}

// socketSyscalls are the numbers syscallName names.
var socketSyscalls = [...]int32{0, 1, 19, 20, 44, 45, 46, 47, 299, 307}

// errno reads an errno as appendErrno writes it, or "" for 0.
func (r *jsonReader) errno() (int32, error) {
	start := r.i
	s, err := r.str(r.tmp[:0])
	if err != nil || len(s) == 0 {
		return 0, err
	}
	if string(s) == "ECONNREFUSED" {
		return errnoECONNREFUSED, nil
	}
	if digits, ok := cutPrefix(s, "errno "); ok {
		n := jsonReader{b: digits}
		v, err := n.int(math.MinInt32, math.MaxInt32)
		// Not a number written otherwise.
		if err == nil && n.i == len(digits) && v != 0 && v != errnoECONNREFUSED {
			return int32(v), nil
		}
	}
	r.i = start
	return 0, r.errorf("unknown value %q", s)
}

func cutPrefix(s []byte, prefix string) ([]byte, bool) {
	if len(s) < len(prefix) || string(s[:len(prefix)]) != prefix {
		return s, false
	}
	return s[len(prefix):], true
}
