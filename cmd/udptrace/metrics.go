package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/udptrace/udptrace/internal/metrics"
)

// registerMetrics adds --metrics ADDR to a command's flags (the live tracer,
// udptrace top).
func registerMetrics(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics while running, e.g. :9477 or 127.0.0.1:9477 (they count what passes the filters)")
}

// checkMetricsAddr validates a --metrics value: HOST:PORT or :PORT, with
// HOST an IP address (IPv6 in brackets) or a name, PORT a number 0-65535.
// Anything else is a usage error (exit code 2). Whether it can be listened
// on is startMetrics's to find out.
func checkMetricsAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--metrics %q: want HOST:PORT or :PORT, e.g. :9477 or 127.0.0.1:9477", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usagef("--metrics %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		return usagef("--metrics %q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

// validHostname accepts "" (every address) and names made of letters,
// digits, '-', '_' and dots.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// startMetrics serves m at http://addr/metrics in the background until ctx
// is done. An addr that does not parse is a usage error (exit code 2); one
// that cannot be listened on (in use, not a local address, no permission)
// is returned at once as a runtime error (exit code 1).
func startMetrics(ctx context.Context, addr string, m *metrics.Metrics) error {
	if err := checkMetricsAddr(addr); err != nil {
		return err
	}
	if _, err := metrics.Start(ctx, addr, m); err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	return nil
}

// serveMetrics starts --metrics for a run: nil and a no-op stop when addr is
// "". It listens before anything is loaded, so that a busy address fails at
// once, and serves until stop, past ctx's cancellation (the drain after
// Ctrl-C included).
func serveMetrics(ctx context.Context, addr string) (m *metrics.Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	m = metrics.New(metrics.DefaultMaxPorts)
	mctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	if err := startMetrics(mctx, addr, m); err != nil {
		stop()
		return nil, nil, err
	}
	return m, stop, nil
}
