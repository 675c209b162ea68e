// Package demo is `udptrace demo`: the seed experiment, end to end, in a
// world of its own. Two network namespaces, a client and a server host joined
// by a veth pair (IPv4 and IPv6), real sockets in separate client processes,
// the tracer attached to the real kernel; each step prints what it does, the
// chains udptrace saw, and the kernel counters that moved (netstat -su) side
// by side with udptrace's own counts.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/udptrace/udptrace/internal/events"
	"github.com/udptrace/udptrace/internal/lab"
	"github.com/udptrace/udptrace/internal/loader"
	"github.com/udptrace/udptrace/internal/snmp"
)

// Options of a demo run.
type Options struct {
	Pause   time.Duration // between steps; 0: none
	Backend loader.Backend
	// Explain annotates each record with its kernel path (nil: off).
	Explain func(*events.Event) string
	Color   bool
	// ClientCommand starts a demo client process: argv for the client
	// (see RunClient) is appended. Its base name becomes the process name.
	ClientCommand []string
}

// The world's addresses.
var (
	clientAddr4 = netip.MustParseAddr("10.99.0.1")
	serverAddr4 = netip.MustParseAddr("10.99.0.2")
	clientAddr6 = netip.MustParseAddr("fd99::1")
	serverAddr6 = netip.MustParseAddr("fd99::2")
)

const (
	listenPort = 7000 // the server's one open port
	closedPort = 9    // discard: nobody listens
	burst      = 20   // datagrams of the rate-limit step
	clientName = "udp-client"
)

// world is the demo's two hosts.
type world struct {
	client, server *lab.NS
}

func newWorld() (*world, error) {
	c, err := lab.NewNS()
	if err != nil {
		return nil, err
	}
	s, err := lab.NewNS()
	if err != nil {
		c.Close()
		return nil, err
	}
	w := &world{client: c, server: s}
	if err := lab.Veth(c, "cli0", "10.99.0.1/24,fd99::1/64", s, "srv0", "10.99.0.2/24,fd99::2/64"); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// close releases both namespaces; the veth pair, which lives only inside
// them, goes with them.
func (w *world) close() {
	w.client.Close()
	w.server.Close()
}

// counters reads both hosts' netstat -s counters.
func (w *world) counters() (client, server snmp.Counters, err error) {
	if client, err = snmp.ReadNetns(w.client.Path); err != nil {
		return nil, nil, err
	}
	server, err = snmp.ReadNetns(w.server.Path)
	return client, server, err
}

// Run runs the demo, writing to out. It cleans up whatever it made before
// returning, also when ctx is cancelled (Ctrl-C): then it returns ctx.Err().
func Run(ctx context.Context, o Options, out io.Writer) error {
	r := &runner{o: o, out: out, ctx: ctx, explained: map[pathKey]bool{}}
	r.printer = events.NewPrinter(out, events.FormatText, events.NewClock())
	r.printer.SetColor(o.Color)
	if o.Explain != nil {
		// Each kind of record is explained once per step: a burst
		// of identical paths teaches nothing more.
		r.printer.SetExplain(func(e *events.Event) string {
			k := pathKey{e.Kind, e.Family, e.ICMP, e.Outcome, e.Syscall}
			if r.explained[k] {
				return ""
			}
			r.explained[k] = true
			return o.Explain(e)
		})
	}
	r.intro()
	w, err := newWorld()
	if err != nil {
		return fmt.Errorf("build the demo's namespaces: %w", err)
	}
	defer w.close()
	r.w = w
	r.say("Two network namespaces joined by a veth pair: client %s, %s (netns %d) and server %s, %s (netns %d).",
		clientAddr4, clientAddr6, w.client.Inode, serverAddr4, serverAddr6, w.server.Inode)

	// Only the demo's datagrams: every chain record carries the
	// datagram's source, a client address.
	t, err := loader.Open(loader.Config{
		StatsNetns: w.server.Inode,
		Src:        []netip.Prefix{netip.PrefixFrom(clientAddr4, 24).Masked(), netip.PrefixFrom(clientAddr6, 64).Masked()},
		Backend:    o.Backend,
		PrimeNetns: []string{w.server.Path, w.client.Path},
	})
	if err != nil {
		return err
	}
	defer t.Close()
	r.t = t
	r.say("udptrace is attached (backend %s: %s).", t.Backend, strings.Join(t.Hooks, ", "))
	if !t.Delivery {
		r.say("Note: this kernel does not let udptrace see errors arrive back at the client: %s.", t.NoDelivery)
	}
	r.records = make(chan events.Event, 1024)
	go r.read()

	tmp, err := os.MkdirTemp("", "udptrace-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r.tmp = tmp

	for i, s := range steps {
		if err := r.step(i+1, s); err != nil {
			return err
		}
	}
	r.say("")
	r.say("That is the whole path: a datagram to a closed port is counted in Udp NoPorts, answered with ICMP")
	r.say("port unreachable (unless a rate limit says no), and only a connected socket (or one with IP_RECVERR)")
	r.say("turns that reply into ECONNREFUSED for its next call. Run `udptrace` to watch your own host.")
	return nil
}

// pathKey tells records whose kernel path reads the same apart.
type pathKey struct {
	kind    events.Kind
	family  events.Family
	icmp    events.ICMPVerdict
	outcome events.Outcome
	syscall int32
}

// runner is the state of one demo run.
type runner struct {
	explained map[pathKey]bool // in this step
	o         Options
	out       io.Writer
	ctx       context.Context
	w         *world
	t         *loader.Tracer
	printer   *events.Printer
	records   chan events.Event
	tmp       string
}

func (r *runner) say(format string, a ...any) {
	fmt.Fprintf(r.out, format+"\n", a...)
}

func (r *runner) intro() {
	r.say("udptrace demo: what happens to a UDP datagram sent to a port nobody listens on.")
	r.say("Each step runs real sockets in a namespace of its own, shows udptrace's records for it (one chain per")
	r.say("datagram: the drop, the ICMP reply reaching the client, the call that got the error), and the kernel")
	r.say("counters that moved (netstat -su), next to what udptrace counted.")
}

// read moves decoded records from the ring to r.records until the ring is
// closed. The BPF side wakes readers only when the ring fills up, so it
// also looks every loader.PollInterval.
func (r *runner) read() {
	var rec ringbuf.Record
	for {
		r.t.Reader.SetDeadline(time.Now().Add(loader.PollInterval))
		err := r.t.Reader.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			close(r.records)
			return
		}
		var e events.Event
		if events.Decode(rec.RawSample, &e) == nil {
			r.records <- e
		}
	}
}

// step is one experiment.
type step struct {
	title string
	// what is said before running it
	story []string
	// the client processes to run: their arguments (see RunClient)
	clients [][]string
	// the server listens on listenPort during the step
	listen bool
	// records expected: no-port datagrams (the rest of their chains is
	// awaited too when the kernel lets udptrace see them)
	noports int
	// the counters to show, as host/name
	counters []counterRow
}

// counterRow is a kernel counter and what udptrace counted for it.
type counterRow struct {
	host, name string // host: "client" or "server"; name as in package snmp
	label      string // netstat-like name
	count      func(evs []events.Event) int
	what       string // what udptrace counted, e.g. "no-port records"
	recent     bool   // a counter only newer kernels have (6.6+, 6.1.113+)
}

func countOf(pred func(*events.Event) bool) func([]events.Event) int {
	return func(evs []events.Event) int {
		n := 0
		for i := range evs {
			if pred(&evs[i]) {
				n++
			}
		}
		return n
	}
}

func noport(f events.Family) func(*events.Event) bool {
	return func(e *events.Event) bool { return e.Kind == events.KindNoPort && e.Family == f }
}

var (
	rowNoPorts = counterRow{"server", "Udp.NoPorts", "Udp NoPorts", countOf(noport(events.FamilyIPv4)), "no-port records", false}
	rowInDgram = counterRow{"server", "Udp.InDatagrams", "Udp InDatagrams", nil, "(delivered: no record)", false}
	rowOut3    = counterRow{"server", "IcmpMsg.OutType3", "IcmpMsg OutType3", countOf(func(e *events.Event) bool {
		return noport(events.FamilyIPv4)(e) && e.ICMP == events.ICMPSent
	}), "replies sent", false}
	rowIn3 = counterRow{"client", "IcmpMsg.InType3", "IcmpMsg InType3", countOf(func(e *events.Event) bool {
		return e.Kind == events.KindDelivery && e.Family == events.FamilyIPv4
	}), "delivery records", false}
	rowRLHost = counterRow{"server", "Icmp.OutRateLimitHost", "Icmp OutRateLimitHost", countOf(func(e *events.Event) bool {
		return noport(events.FamilyIPv4)(e) && e.ICMP == events.ICMPRateLimitedHost
	}), "rate-limited (host)", true}
	rowRLGlobal = counterRow{"server", "Icmp.OutRateLimitGlobal", "Icmp OutRateLimitGlobal", countOf(func(e *events.Event) bool {
		return noport(events.FamilyIPv4)(e) && e.ICMP == events.ICMPRateLimitedGlobal
	}), "rate-limited (global)", true}
	rowNoPorts6 = counterRow{"server", "Udp6NoPorts", "Udp6NoPorts", countOf(noport(events.FamilyIPv6)), "no-port records", false}
	rowOut6     = counterRow{"server", "Icmp6OutDestUnreachs", "Icmp6OutDestUnreachs", countOf(func(e *events.Event) bool {
		return noport(events.FamilyIPv6)(e) && e.ICMP == events.ICMPSent
	}), "replies sent", false}
	rowIn6 = counterRow{"client", "Icmp6InDestUnreachs", "Icmp6InDestUnreachs", countOf(func(e *events.Event) bool {
		return e.Kind == events.KindDelivery && e.Family == events.FamilyIPv6
	}), "delivery records", false}
)

var steps = []step{
	{
		title: "A datagram to a port that is listening (the contrast)",
		story: []string{
			"The server listens on 10.99.0.2:7000; the client sends it one datagram.",
			"__udp4_lib_rcv finds the socket and queues the datagram: Udp InDatagrams counts it, nothing is dropped,",
			"so udptrace prints nothing.",
		},
		listen:   true,
		clients:  [][]string{{"unconnected", "10.99.0.2:7000"}},
		counters: []counterRow{rowInDgram, rowNoPorts},
	},
	{
		title: "A connected client sends to a closed port (the seed experiment)",
		story: []string{
			"The client connect()s a UDP socket to 10.99.0.2:9, where nothing listens, sends one datagram, then read()s.",
			"Server: __udp4_lib_rcv finds no socket, counts Udp NoPorts and answers ICMP port unreachable (type 3, code 3).",
			"Client: __udp4_lib_err finds the connected socket and sets sk_err = ECONNREFUSED; read() returns it.",
		},
		clients:  [][]string{{"connected", "10.99.0.2:9"}},
		noports:  1,
		counters: []counterRow{rowNoPorts, rowOut3, rowIn3},
	},
	{
		title: "An unconnected client sends to a closed port",
		story: []string{
			"The same datagram from a socket that never called connect() (sendto() only), then a read with a timeout.",
			"The ICMP reply still comes back, but __udp4_lib_err drops it: the socket is not connected and has no",
			"IP_RECVERR, so the kernel keeps the error to itself (RFC 1122 4.1.3.3) and the read just times out.",
		},
		clients:  [][]string{{"unconnected", "10.99.0.2:9"}},
		noports:  1,
		counters: []counterRow{rowNoPorts, rowOut3, rowIn3},
	},
	{
		title: "The same over IPv6",
		story: []string{
			"A connected client sends to [fd99::2]:9. __udp6_lib_rcv counts Udp6NoPorts and icmp6_send() answers",
			"ICMPv6 destination unreachable, port unreachable (type 1, code 4); __udp6_lib_err sets ECONNREFUSED.",
		},
		clients:  [][]string{{"connected", "[fd99::2]:9"}},
		noports:  1,
		counters: []counterRow{rowNoPorts6, rowOut6, rowIn6},
	},
	{
		title: "A burst meets ICMP rate limiting",
		story: []string{
			fmt.Sprintf("The client sends %d datagrams to 10.99.0.2:9 at once. Every one is counted in Udp NoPorts, but", burst),
			"__icmp_send lets only a few replies to the same host through (net.ipv4.icmp_ratelimit, 1 s, burst 6): the",
			"rest are counted in Icmp OutRateLimitHost and never sent. (Loopback is exempt: that is why this runs over veth.)",
		},
		clients:  [][]string{{"burst", "10.99.0.2:9", fmt.Sprint(burst)}},
		noports:  burst,
		counters: []counterRow{rowNoPorts, rowOut3, rowRLHost, rowRLGlobal, rowIn3},
	},
}

func (r *runner) step(n int, s step) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	r.say("")
	r.say("━━ Step %d/%d · %s ━━", n, len(steps), s.title)
	clear(r.explained)
	for _, l := range s.story {
		r.say("%s", l)
	}
	beforeC, beforeS, err := r.w.counters()
	if err != nil {
		return err
	}
	var server *serverSocket
	if s.listen {
		if server, err = listen(r.w.server); err != nil {
			return err
		}
		defer server.close()
	}
	for _, args := range s.clients {
		res, err := r.runClient(args)
		if err != nil {
			return err
		}
		r.say("  client %s", res)
	}
	if server != nil {
		r.say("  server %s", server.receive())
	}
	recs, err := r.collect(s, beforeS)
	if err != nil {
		return err
	}
	r.say("")
	if len(recs) == 0 {
		r.say("  (no udptrace record: nothing was dropped)")
	} else {
		r.printer.Header()
		for i := range recs {
			r.printer.Event(&recs[i])
		}
	}
	afterC, afterS, err := r.w.counters()
	if err != nil {
		return err
	}
	r.say("")
	r.say("  %-28s %-6s %8s %8s %6s   %s", "kernel counter (netstat -s)", "host", "before", "after", "Δ", "udptrace")
	for _, c := range s.counters {
		before, after := beforeS, afterS
		if c.host == "client" {
			before, after = beforeC, afterC
		}
		if _, ok := after[c.name]; c.recent && !ok {
			r.say("  %-28s %-6s %8s %8s %6s   (this kernel has no such counter)", c.label, c.host, "-", "-", "-")
			continue
		}
		b, a := before.Get(c.name), after.Get(c.name)
		seen := "-"
		verdict := ""
		if c.count != nil {
			n := c.count(recs)
			seen = fmt.Sprintf("%d %s", n, c.what)
			verdict = "  match"
			if uint64(n) != a-b {
				verdict = "  DIFFER"
			}
		} else {
			seen = c.what
		}
		r.say("  %-28s %-6s %8d %8d %+6d   %-24s%s", c.label, c.host, b, a, int64(a-b), seen, verdict)
	}
	return r.pause()
}

func (r *runner) pause() error {
	if r.o.Pause <= 0 {
		return r.ctx.Err()
	}
	select {
	case <-r.ctx.Done():
		return r.ctx.Err()
	case <-time.After(r.o.Pause):
		return nil
	}
}

// collect waits until the step's datagrams reached the server's NoPorts
// counter and their records (and those of their chains) came out of the
// ring, then a little more for stragglers.
func (r *runner) collect(s step, beforeS snmp.Counters) ([]events.Event, error) {
	var recs []events.Event
	deadline := time.After(5 * time.Second)
	settle := time.After(150 * time.Millisecond)
	counted := func(kind events.Kind) int {
		n := 0
		for _, e := range recs {
			if e.Kind == kind {
				n++
			}
		}
		return n
	}
	for {
		select {
		case <-r.ctx.Done():
			return nil, r.ctx.Err()
		case e, ok := <-r.records:
			if !ok {
				return nil, errors.New("the ring buffer closed")
			}
			recs = append(recs, e)
		case <-settle:
			if counted(events.KindNoPort) >= s.noports {
				return recs, nil
			}
			settle = time.After(50 * time.Millisecond)
		case <-deadline:
			_, now, err := r.w.counters()
			if err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("step %q: %d no-port records after 5 s (server NoPorts moved by %d), want %d",
				s.title, counted(events.KindNoPort), snmp.Sub(now, beforeS).Get("Udp.NoPorts")+snmp.Sub(now, beforeS).Get("Udp6NoPorts"), s.noports)
		}
	}
}

// runClient runs one client process inside the client namespace and
// returns what it reported.
func (r *runner) runClient(args []string) (string, error) {
	if len(r.o.ClientCommand) == 0 {
		return "", errors.New("no client command")
	}
	// The process is named after the link it was started through.
	exe := filepath.Join(r.tmp, clientName)
	if _, err := os.Lstat(exe); err != nil {
		if err := os.Symlink(r.o.ClientCommand[0], exe); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(r.ctx, exe, append(append([]string{}, r.o.ClientCommand[1:]...), args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := r.w.client.Do(cmd.Start); err != nil {
		return "", fmt.Errorf("start the client: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		if r.ctx.Err() != nil {
			return "", r.ctx.Err()
		}
		return "", fmt.Errorf("client %v: %v: %s", args, err, strings.TrimSpace(out.String()))
	}
	return fmt.Sprintf("%d/%s: %s", cmd.Process.Pid, clientName, strings.TrimSpace(out.String())), nil
}
