// Package reconcile compares what udptrace saw with the kernel's own SNMP
// counters over the same interval, and words the result for people (text)
// and programs (JSON).
package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Input is everything the summary is made from. "Seen" values come from the
// BPF programs (counted before filters, in the reconciled namespace only);
// "Kernel" values are /proc/net/snmp{,6} deltas from that namespace.
type Input struct {
	Duration time.Duration
	Netns    uint32

	Printed   uint64 // events printed, every namespace
	PrintedNS uint64 // of those, from Netns
	Unprinted uint64 // captured, not printed (after -c, or once an output failed), from Netns
	Lost      uint64 // ring buffer full, every namespace
	LostNS    uint64
	PassedNS  uint64 // passed the filters in Netns (printed + unprinted + lost)

	Seen4, Seen6           uint64
	ICMP4Sent, ICMP6Sent   uint64
	ICMP4Known, ICMP6Known bool // a hook could see ICMP replies for the family

	NoPorts, Udp6NoPorts          uint64 // Udp NoPorts, Udp6NoPorts deltas
	OutType3, Icmp6OutDestUnreach uint64 // IcmpMsg OutType3, Icmp6OutDestUnreachs deltas

	// Replies to no-port datagrams suppressed by ICMP rate limits, as
	// udptrace saw them, against the kernel's counters (which also count
	// other ICMP errors): Icmp OutRateLimitGlobal + OutRateLimitHost,
	// Icmp6OutRateLimitHost. RateLimitsKnown: the kernel has them (6.6+).
	RateLimited4, RateLimited6   uint64
	OutRateLimit4, OutRateLimit6 uint64
	RateLimitsKnown              bool
}

// Report is the reconciled result.
type Report struct {
	Input
	// Match: every datagram the kernel counted in NoPorts was seen.
	Match bool
	// Complete: every datagram of the namespace that passed the filters was
	// printed (or deliberately skipped after -c); none was lost.
	Complete bool
}

// Reconcile judges the input.
func Reconcile(in Input) Report {
	return Report{
		Input:    in,
		Match:    in.Seen4 == in.NoPorts && in.Seen6 == in.Udp6NoPorts,
		Complete: in.LostNS == 0 && in.PrintedNS+in.Unprinted+in.LostNS == in.PassedNS,
	}
}

func mark(ok bool) string {
	if ok {
		return "match"
	}
	return "DIFFER"
}

// WriteText writes the human summary (for stderr).
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "--- udptrace summary: %s, reconciled in netns %d ---\n", r.Duration.Round(time.Millisecond), r.Netns)
	fmt.Fprintf(&b, "events printed: %d (%d from this netns)", r.Printed, r.PrintedNS)
	if r.Unprinted > 0 {
		fmt.Fprintf(&b, ", %d more captured but not printed (after the -c limit, or once output stopped)", r.Unprinted)
	}
	fmt.Fprintf(&b, "; lost in the ring buffer: %d (%d from this netns)\n", r.Lost, r.LostNS)
	fmt.Fprintf(&b, "  %-24s %10s %12s\n", "kernel counter", "delta", "udptrace saw")
	fmt.Fprintf(&b, "  %-24s %10d %12d  %s\n", "Udp NoPorts", r.NoPorts, r.Seen4, mark(r.Seen4 == r.NoPorts))
	fmt.Fprintf(&b, "  %-24s %10d %12d  %s\n", "Udp6NoPorts", r.Udp6NoPorts, r.Seen6, mark(r.Seen6 == r.Udp6NoPorts))
	icmpLine(&b, "IcmpMsg OutType3", r.OutType3, r.ICMP4Sent, r.ICMP4Known)
	icmpLine(&b, "Icmp6 OutDestUnreachs", r.Icmp6OutDestUnreach, r.ICMP6Sent, r.ICMP6Known)
	icmpLine(&b, "Icmp OutRateLimit*", r.OutRateLimit4, r.RateLimited4, r.RateLimitsKnown)
	icmpLine(&b, "Icmp6OutRateLimitHost", r.OutRateLimit6, r.RateLimited6, r.RateLimitsKnown)
	switch {
	case r.Match && r.Complete:
		fmt.Fprintf(&b, "result: MATCH - udptrace saw every no-port datagram the kernel counted (%d), and lost none\n", r.NoPorts+r.Udp6NoPorts)
	case r.Match:
		fmt.Fprintf(&b, "result: MATCH, INCOMPLETE - the kernel counts agree, but %d of its events were lost in the ring buffer (raise --ring-size)\n", r.LostNS)
	default:
		fmt.Fprintf(&b, "result: MISMATCH - the kernel counted %d no-port datagrams, udptrace saw %d (traffic in flight at start or stop is counted on one side only)\n",
			r.NoPorts+r.Udp6NoPorts, r.Seen4+r.Seen6)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func icmpLine(b *strings.Builder, name string, counter, sent uint64, known bool) {
	if !known {
		fmt.Fprintf(b, "  %-24s %10d %12s  (replies not visible here)\n", name, counter, "-")
		return
	}
	note := "match"
	if counter > sent {
		note = "differ: the counter also counts other ICMP errors"
	} else if counter < sent {
		note = "DIFFER"
	}
	fmt.Fprintf(b, "  %-24s %10d %12d  %s\n", name, counter, sent, note)
}

// appendMillis appends d in seconds with three decimals, rounded to the
// millisecond as WriteText rounds it (halves away from zero), so that
// ParseJSON gives back the Duration that WriteText printed.
func appendMillis(b []byte, d time.Duration) []byte {
	ms := d.Round(time.Millisecond).Milliseconds()
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// AppendJSON appends the summary as one JSON object (no newline): the keys
// of the README's summary object, in this order, with duration_s in seconds
// rounded to the millisecond.
func (r Report) AppendJSON(b []byte) []byte {
	num := func(key string, v uint64) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = strconv.AppendUint(b, v, 10)
	}
	boolean := func(key string, v bool) {
		b = append(b, ',', '"')
		b = append(b, key...)
		b = append(b, '"', ':')
		b = strconv.AppendBool(b, v)
	}
	b = append(b, `{"type":"summary","duration_s":`...)
	b = appendMillis(b, r.Duration)
	num("netns", uint64(r.Netns))
	num("printed", r.Printed)
	num("printed_netns", r.PrintedNS)
	num("unprinted", r.Unprinted)
	num("lost", r.Lost)
	num("lost_netns", r.LostNS)
	num("passed_netns", r.PassedNS)
	num("seen_ipv4", r.Seen4)
	num("seen_ipv6", r.Seen6)
	num("icmp4_sent", r.ICMP4Sent)
	num("icmp6_sent", r.ICMP6Sent)
	boolean("icmp4_visible", r.ICMP4Known)
	boolean("icmp6_visible", r.ICMP6Known)
	num("udp_noports", r.NoPorts)
	num("udp6_noports", r.Udp6NoPorts)
	num("icmp_out_type3", r.OutType3)
	num("icmp6_out_dest_unreachs", r.Icmp6OutDestUnreach)
	num("icmp4_ratelimited", r.RateLimited4)
	num("icmp6_ratelimited", r.RateLimited6)
	num("icmp_out_ratelimit", r.OutRateLimit4)
	num("icmp6_out_ratelimit", r.OutRateLimit6)
	boolean("ratelimits_visible", r.RateLimitsKnown)
	boolean("match", r.Match)
	boolean("complete", r.Complete)
	return append(b, '}')
}

// ParseJSON is the inverse of AppendJSON: it returns the Report of one
// summary line (a trailing newline is allowed). Every key AppendJSON writes
// must be there, with a value of its type (numbers whole and in range but
// duration_s, booleans true or false); other keys are ignored, as the JSON
// schema's compatibility rule asks. Match and Complete are taken from the
// line as they are, not judged again. Duration is duration_s rounded to the
// millisecond, the precision of both AppendJSON and WriteText: WriteText and
// AppendJSON of the Report give back what udptrace printed.
func ParseJSON(line []byte) (Report, error) {
	var r Report
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(line, &keys); err != nil {
		return r, fmt.Errorf("summary: %v", err)
	}
	var typ string
	var seconds float64
	for _, k := range []struct {
		name string
		dst  any
	}{
		{"type", &typ}, {"duration_s", &seconds}, {"netns", &r.Netns},
		{"printed", &r.Printed}, {"printed_netns", &r.PrintedNS}, {"unprinted", &r.Unprinted},
		{"lost", &r.Lost}, {"lost_netns", &r.LostNS}, {"passed_netns", &r.PassedNS},
		{"seen_ipv4", &r.Seen4}, {"seen_ipv6", &r.Seen6},
		{"icmp4_sent", &r.ICMP4Sent}, {"icmp6_sent", &r.ICMP6Sent},
		{"icmp4_visible", &r.ICMP4Known}, {"icmp6_visible", &r.ICMP6Known},
		{"udp_noports", &r.NoPorts}, {"udp6_noports", &r.Udp6NoPorts},
		{"icmp_out_type3", &r.OutType3}, {"icmp6_out_dest_unreachs", &r.Icmp6OutDestUnreach},
		{"icmp4_ratelimited", &r.RateLimited4}, {"icmp6_ratelimited", &r.RateLimited6},
		{"icmp_out_ratelimit", &r.OutRateLimit4}, {"icmp6_out_ratelimit", &r.OutRateLimit6},
		{"ratelimits_visible", &r.RateLimitsKnown},
		{"match", &r.Match}, {"complete", &r.Complete},
	} {
		raw, ok := keys[k.name]
		if !ok {
			return r, fmt.Errorf("summary: missing key %q", k.name)
		}
		// Unmarshal leaves the value as it was for null.
		if bytes.Equal(raw, []byte("null")) {
			return r, fmt.Errorf("summary: key %q: null", k.name)
		}
		if err := json.Unmarshal(raw, k.dst); err != nil {
			return r, fmt.Errorf("summary: key %q: %s", k.name, strings.TrimPrefix(err.Error(), "json: "))
		}
		if k.name == "type" && typ != "summary" {
			return r, fmt.Errorf("not a summary: type %q", typ)
		}
	}
	ms := math.Round(seconds * 1000)
	if !(ms >= 0 && ms <= float64(math.MaxInt64/int64(time.Millisecond))) {
		return r, fmt.Errorf("summary: key \"duration_s\": %v is not a duration in seconds", seconds)
	}
	r.Duration = time.Duration(ms) * time.Millisecond
	return r, nil
}
