// Package metrics exposes what udptrace counts as Prometheus metrics: the
// no-port datagrams by family, destination port and network namespace, the
// verdict on their ICMP port-unreachable, what the reply did at the sending
// socket, the calls that got ECONNREFUSED, and udptrace's own losses.
//
// The metrics live in a private registry (with the process and Go runtime
// collectors), never in client_golang's global one. Every series is a
// counter that only grows: a destination port gets a label of its own only
// while fewer than maxPorts ports have one (the first ones seen), and the
// rest are counted under port="other" for good, so the number of series stays
// bounded and no series is ever reset or removed.
//
// The metrics, all counters:
//
//	udptrace_noport_datagrams_total{family,port,netns}
//	udptrace_icmp_replies_total{family,port,netns,verdict}
//	udptrace_icmp_deliveries_total{family,outcome}
//	udptrace_refused_calls_total{family}
//	udptrace_lost_events_total                 (when SetSources gave its source)
//	udptrace_aggregation_overflow_total         (when SetSources gave its source)
//
// family is "ipv4" or "ipv6"; port the destination port in decimal, or
// "other"; netns the inode number of the receiving network namespace in
// decimal (as in /proc/PID/ns/net -> net:[inode]); verdict "sent",
// "rate-limited", "not-sent" or "unknown" (see events.ICMPVerdict); outcome
// "econnrefused", "errqueue", "ignored", "no-socket" or "unknown" (see
// events.Outcome). Each no-port datagram counts once in
// udptrace_noport_datagrams_total and once, under its verdict, in
// udptrace_icmp_replies_total, so summing the latter over verdict gives the
// former. udptrace_build_info{version,backend} is 1 once SetBuildInfo was
// called; go_build_info, go_* and process_* come from client_golang.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/udptrace/udptrace/internal/events"
)

// DefaultMaxPorts is the port bound udptrace uses: at most this many
// destination ports get a label of their own.
const DefaultMaxPorts = 100

// OtherPort is the port label of the datagrams to ports beyond the bound.
const OtherPort = "other"

// Path is where Handler's metrics are served by Serve and Start.
const Path = "/metrics"

// Port states in Metrics.portState.
const (
	portNew   = 0 // not seen yet
	portOwn   = 1 // has a label of its own
	portOther = 2 // counted under "other"
)

// otherKey is the port of a seriesKey for port="other".
const otherKey = 1 << 16

// seriesKey names one (noport, icmp) pair of series.
type seriesKey struct {
	family  events.Family
	verdict events.ICMPVerdict // normalized: one value per label
	port    uint32             // the port, or otherKey
	netns   uint32
}

// series caches the label children of one seriesKey.
type series struct {
	noport, icmp prometheus.Counter
}

// Metrics is udptrace's set of metrics. Its methods are safe for concurrent
// use.
type Metrics struct {
	reg        *prometheus.Registry
	handler    http.Handler
	noport     *prometheus.CounterVec
	icmp       *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	refused    *prometheus.CounterVec
	info       *prometheus.GaugeVec
	sources    *sourceCollector

	mu        sync.Mutex
	maxPorts  int
	ownPorts  int
	portState [1 << 16]uint8
	series    map[seriesKey]series

	// The children of the small fixed label sets, made in New, indexed by
	// familyIndex and the outcome.
	deliv [2][events.OutcomeUnknown + 1]prometheus.Counter
	calls [2]prometheus.Counter
}

// New makes udptrace's metrics; at most maxPorts distinct destination ports
// get a label of their own (the first ones seen; the rest are counted under
// port="other"), so the series stay bounded and every counter stays
// monotonic. maxPorts <= 0 counts every port under "other".
func New(maxPorts int) *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		maxPorts: maxPorts,
		series:   map[seriesKey]series{},
		noport: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "udptrace_noport_datagrams_total",
			Help: "UDP datagrams dropped because no socket listened on their destination port (Udp NoPorts, Udp6NoPorts) that udptrace reported, by family, destination port (\"other\" beyond the port bound) and network namespace inode.",
		}, []string{"family", "port", "netns"}),
		icmp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "udptrace_icmp_replies_total",
			Help: "The ICMP port-unreachable verdict for each of those datagrams: sent, rate-limited, not-sent or unknown.",
		}, []string{"family", "port", "netns", "verdict"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "udptrace_icmp_deliveries_total",
			Help: "Port-unreachables that came back to the sending socket on this host, by what the kernel did with them: econnrefused, errqueue, ignored, no-socket or unknown.",
		}, []string{"family", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "udptrace_refused_calls_total",
			Help: "Socket calls that returned ECONNREFUSED to the process after such a port-unreachable.",
		}, []string{"family"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "udptrace_build_info",
			Help: "1, labelled with udptrace's version and the BPF backend in use.",
		}, []string{"version", "backend"}),
		sources: &sourceCollector{
			lostDesc: prometheus.NewDesc("udptrace_lost_events_total",
				"Records the BPF programs could not queue because the ring buffer was full (raise --ring-size).", nil, nil),
			overflowDesc: prometheus.NewDesc("udptrace_aggregation_overflow_total",
				"Datagrams udptrace top could not count per key because its aggregation map was full.", nil, nil),
		},
	}
	for i, f := range []events.Family{events.FamilyIPv4, events.FamilyIPv6} {
		for o := events.OutcomeRefused; o <= events.OutcomeUnknown; o++ {
			m.deliv[i][o] = m.deliveries.WithLabelValues(f.String(), o.String())
		}
		m.deliv[i][events.OutcomeNone] = m.deliv[i][events.OutcomeUnknown]
		m.calls[i] = m.refused.WithLabelValues(f.String())
	}
	m.reg.MustRegister(m.noport, m.icmp, m.deliveries, m.refused, m.info, m.sources,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		collectors.NewBuildInfoCollector())
	m.handler = promhttp.InstrumentMetricHandler(m.reg,
		promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError}))
	return m
}

// familyIndex returns the index of f in Metrics.deliv and calls, or -1.
func familyIndex(f events.Family) int {
	switch f {
	case events.FamilyIPv4:
		return 0
	case events.FamilyIPv6:
		return 1
	}
	return -1
}

// verdictLabel folds the verdicts onto the label's four values.
func verdictLabel(v events.ICMPVerdict) events.ICMPVerdict {
	switch v {
	case events.ICMPSent, events.ICMPNotSent, events.ICMPRateLimitedHost:
		return v
	case events.ICMPRateLimitedGlobal:
		return events.ICMPRateLimitedHost // both are "rate-limited"
	}
	return events.ICMPUnknown
}

// Add counts n no-port datagrams of family to dport in netns whose ICMP reply
// had verdict v. It allocates only for a combination of labels it has not
// seen before.
func (m *Metrics) Add(family events.Family, dport uint16, netns uint32, v events.ICMPVerdict, n uint64) {
	if n == 0 {
		return
	}
	k := seriesKey{family: family, verdict: verdictLabel(v), port: uint32(dport), netns: netns}
	m.mu.Lock()
	switch m.portState[dport] {
	case portNew:
		if m.ownPorts < m.maxPorts {
			m.portState[dport] = portOwn
			m.ownPorts++
		} else {
			m.portState[dport] = portOther
			k.port = otherKey
		}
	case portOther:
		k.port = otherKey
	}
	s, ok := m.series[k]
	if !ok {
		port := OtherPort
		if k.port != otherKey {
			port = strconv.Itoa(int(k.port))
		}
		ns := strconv.FormatUint(uint64(netns), 10)
		s = series{
			noport: m.noport.WithLabelValues(family.String(), port, ns),
			icmp:   m.icmp.WithLabelValues(family.String(), port, ns, k.verdict.String()),
		}
		m.series[k] = s
	}
	m.mu.Unlock()
	s.noport.Add(float64(n))
	s.icmp.Add(float64(n))
}

// Observe counts one record of the live tracer: a KindNoPort record as one
// datagram (Add), a KindDelivery record under its outcome, a KindSyscall
// record as one refused call. It allocates nothing once the record's labels
// have been seen.
func (m *Metrics) Observe(e *events.Event) {
	switch e.Kind {
	case events.KindNoPort:
		m.Add(e.Family, e.DPort, e.Netns, e.ICMP, 1)
	case events.KindDelivery:
		o := e.Outcome
		if o > events.OutcomeUnknown {
			o = events.OutcomeUnknown
		}
		if i := familyIndex(e.Family); i >= 0 {
			m.deliv[i][o].Inc()
		} else {
			if o == events.OutcomeNone {
				o = events.OutcomeUnknown
			}
			m.deliveries.WithLabelValues(e.Family.String(), o.String()).Inc()
		}
	case events.KindSyscall:
		if i := familyIndex(e.Family); i >= 0 {
			m.calls[i].Inc()
		} else {
			m.refused.WithLabelValues(e.Family.String()).Inc()
		}
	}
}

// SetSources gives functions returning udptrace's own cumulative counts
// (read at scrape time): lost ring-buffer events and aggregation-map
// overflows (either may be nil). A nil source's metric is not exported. The
// functions are called one scrape at a time, never after SetSources
// replaced them; a value lower than one already exported (a source that
// failed and returned 0, say) exports the previous value again, so the
// counters never go down.
func (m *Metrics) SetSources(lost, overflow func() uint64) {
	m.sources.mu.Lock()
	m.sources.lost, m.sources.overflow = lost, overflow
	m.sources.mu.Unlock()
}

// SetBuildInfo sets udptrace_build_info{version,backend} to 1 (and removes the
// previous labels, if any).
func (m *Metrics) SetBuildInfo(version, backend string) {
	m.info.Reset()
	m.info.WithLabelValues(version, backend).Set(1)
}

// Registry returns the private registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats: text, or
// protobuf when the scraper asks for it.
func (m *Metrics) Handler() http.Handler { return m.handler }

// sourceCollector exports the counts of SetSources.
type sourceCollector struct {
	lostDesc, overflowDesc *prometheus.Desc

	mu                     sync.Mutex // held while calling the sources
	lost, overflow         func() uint64
	lastLost, lastOverflow uint64
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lostDesc
	ch <- c.overflowDesc
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	read := func(d *prometheus.Desc, f func() uint64, last *uint64) {
		if f == nil {
			return
		}
		*last = max(*last, f())
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(*last))
	}
	read(c.lostDesc, c.lost, &c.lastLost)
	read(c.overflowDesc, c.overflow, &c.lastOverflow)
}

// Serve serves m at http://addr/metrics until ctx is done, then returns nil.
// It returns an error at once if addr cannot be listened on, and the server's
// error should serving fail.
func Serve(ctx context.Context, addr string, m *Metrics) error {
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	return serve(ctx, ln, m)
}

// Start is Serve in the background: it listens on addr and returns the
// listener's address (addr with the port chosen, for port 0), or why it
// could not listen; it then serves m until ctx is done.
func Start(ctx context.Context, addr string, m *Metrics) (net.Addr, error) {
	ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	go serve(ctx, ln, m)
	return ln.Addr(), nil
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, unwrapOpError(err))
	}
	return ln, nil
}

// unwrapOpError drops net.OpError's repetition of the address.
func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

func serve(ctx context.Context, ln net.Listener, m *Metrics) error {
	mux := http.NewServeMux()
	mux.Handle(Path, m.Handler())
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "udptrace: metrics at %s\n", Path)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		// Let a scrape under way finish, briefly.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(ln)
	close(stopped)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
