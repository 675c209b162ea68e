package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A workload is the traffic one run sends. noport is the flood the bench
// always had (the traffic udptrace reports); the others are traffic
// udptrace must NOT report, whose cost under udptrace is what a healthy
// server pays for having it loaded (issue 12).
type workload struct {
	name  string
	n     uint64 // units per run at -scale 1: datagrams, 64 KiB writes or exchanges
	unit  string
	about string // one line for the report
	// loPackets: packets are the namespace's lo tx_packets delta (TCP:
	// segments and ACKs); otherwise datagrams sent.
	loPackets bool
}

// workloads are the workloads in the order they run. The counts keep one
// run at one to two seconds here, so that 7 modes x 5 repeats of all five
// fit in ~15 minutes with the tracers' start and stop. The loops use Go's
// ordinary system calls: the Go scheduler's share (sysmon taking the P of a
// thread blocked in read) is in every mode's CPU alike, baseline included.
// (Raw system calls, tried to avoid it, hung a run now and then.)
var workloads = []workload{
	{name: "tcp-bulk", n: 20000, unit: "64 KiB writes", loPackets: true,
		about: "one TCP connection on 127.0.0.1, 64 KiB writes, a receiver thread draining with 256 KiB reads"},
	{name: "tcp-rr", n: 20000, unit: "exchanges", loPackets: true,
		about: "one TCP connection on 127.0.0.1, TCP_NODELAY, 64-byte request then 64-byte response, client and server threads on different CPUs"},
	{name: "udp-flow", n: 200000, unit: "datagrams",
		about: "one connected UDP socket -> one socket bound to 127.0.0.1:7001 that a thread drains (SO_RCVBUF 32 MiB), 64-byte payloads"},
	{name: "udp-peers", n: 200000, unit: "datagrams",
		about: "one unconnected UDP socket sending round-robin to 65 536 destinations 127.1.X.Y:7002 (all of 127/8 is local on lo), drained by a socket bound to 0.0.0.0:7002: 65 536 distinct 4-tuples, as a DNS/QUIC server answering many peers"},
	{name: "noport", n: 200000, unit: "datagrams",
		about: "the no-port flood: an unconnected UDP socket to 127.0.0.1:9 (closed), 16-byte payloads"},
}

func workloadNames() []string {
	var out []string
	for _, w := range workloads {
		out = append(out, w.name)
	}
	return out
}

// workloadMode is the hidden first argument that turns the bench binary into
// a workload process: both ends of the traffic as threads of this one
// process, so that its rusage holds the CPU of both (the loopback receive
// path runs in the sender's softirq, on its CPU, and the receiver's copy on
// its own thread).
const workloadMode = "__workload"

// workloadResult is what a workload process prints on stdout.
type workloadResult struct {
	Sent     uint64 `json:"sent"`     // units: datagrams, writes or exchanges
	Received uint64 `json:"received"` // datagrams or exchanges the receiving end got
	LoTx     uint64 `json:"lo_tx"`    // the namespace's lo tx_packets delta over the loop
	WallNS   int64  `json:"wall_ns"`
	// StartCPUNS is the process's CPU time when the loop began (start-up
	// and socket set-up), which the parent subtracts from its rusage.
	StartCPUNS int64 `json:"start_cpu_ns"`
}

// pin locks the calling goroutine to its thread and the thread to cpu.
func pin(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// runWorkload is the workload process's main.
func runWorkload(args []string) error {
	fs := flag.NewFlagSet(workloadMode, flag.ContinueOnError)
	name := fs.String("w", "", "workload")
	n := fs.Uint64("n", 1000, "units to send")
	cpu := fs.Int("cpu", 1, "CPU of the sending (client) thread")
	peerCPU := fs.Int("peer-cpu", 0, "CPU of the receiving (server) thread")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var gen func(n uint64, cpu, peerCPU int, begin func()) (sent, received uint64, err error)
	switch *name {
	case "tcp-bulk":
		gen = tcpBulk
	case "tcp-rr":
		gen = tcpRR
	case "udp-flow":
		gen = func(n uint64, cpu, peerCPU int, begin func()) (uint64, uint64, error) {
			return udpSend(n, cpu, peerCPU, 7001, 1, begin)
		}
	case "udp-peers":
		gen = func(n uint64, cpu, peerCPU int, begin func()) (uint64, uint64, error) {
			return udpSend(n, cpu, peerCPU, 7002, 65536, begin)
		}
	default:
		return fmt.Errorf("unknown workload %q", *name)
	}
	var res workloadResult
	var lo0 uint64
	var start time.Time
	var beginErr error
	// begin is called by the generator once its sockets are set up, on the
	// sending thread, right before its loop.
	begin := func() {
		var ru unix.Rusage
		beginErr = unix.Getrusage(unix.RUSAGE_SELF, &ru)
		res.StartCPUNS = ru.Utime.Nano() + ru.Stime.Nano()
		if lo0, beginErr = loTxPackets(); beginErr == nil {
			start = time.Now()
		}
	}
	sent, received, err := gen(*n, *cpu, *peerCPU, begin)
	if err != nil {
		return err
	}
	if beginErr != nil {
		return beginErr
	}
	res.WallNS = time.Since(start).Nanoseconds()
	lo1, err := loTxPackets()
	if err != nil {
		return err
	}
	res.Sent, res.Received, res.LoTx = sent, received, lo1-lo0
	return json.NewEncoder(os.Stdout).Encode(res)
}

// loTxPackets reads lo's tx_packets from /proc/self/net/dev, which shows the
// network namespace of this process (the bench's). /sys/class/net/lo would
// not do: sysfs shows the namespace of whoever mounted it, the host's. On lo
// a packet is one skb (lo keeps GSO super-packets whole), which is also what
// the tracepoints see once.
func loTxPackets() (uint64, error) {
	f, err := os.Open("/proc/self/net/dev")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != "lo" {
			continue
		}
		// receive: bytes packets errs drop fifo frame compressed multicast;
		// then transmit: bytes packets ...
		f := strings.Fields(rest)
		if len(f) < 10 {
			break
		}
		return strconv.ParseUint(f[9], 10, 64)
	}
	return 0, fmt.Errorf("/proc/self/net/dev: no lo line")
}

// tcpPair returns a connected TCP pair on 127.0.0.1 (client, server side),
// TCP_NODELAY set on both when nodelay.
func tcpPair(nodelay bool) (client, server int, err error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, -1, err
	}
	defer unix.Close(ln)
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(ln, lo); err != nil {
		return -1, -1, err
	}
	if err := unix.Listen(ln, 1); err != nil {
		return -1, -1, err
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return -1, -1, err
	}
	if client, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return -1, -1, err
	}
	if err := unix.Connect(client, sa); err != nil {
		unix.Close(client)
		return -1, -1, err
	}
	if server, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC); err != nil {
		unix.Close(client)
		return -1, -1, err
	}
	if nodelay {
		for _, fd := range []int{client, server} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
				return -1, -1, err
			}
		}
	}
	return client, server, nil
}

// writeAll writes b whole to a stream socket.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		k, err := unix.Write(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		b = b[k:]
	}
	return nil
}

// readFull reads len(b) bytes; io.EOF-like: false when the peer closed.
func readFull(fd int, b []byte) (bool, error) {
	for len(b) > 0 {
		k, err := unix.Read(fd, b)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return false, err
		}
		if k == 0 {
			return false, nil
		}
		b = b[k:]
	}
	return true, nil
}

// serveOn runs body on its own thread pinned to cpu, then closes fd; wait
// returns body's error once it is done.
func serveOn(fd, cpu int, body func() error) (wait func() error) {
	var err error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer unix.Close(fd)
		if err = pin(cpu); err == nil {
			err = body()
		}
	}()
	return func() error { wg.Wait(); return err }
}

// tcpBulk writes n x 64 KiB from the client; the server thread reads until
// EOF. Received is in 64 KiB units, to check that everything arrived.
func tcpBulk(n uint64, cpu, peerCPU int, begin func()) (uint64, uint64, error) {
	client, server, err := tcpPair(false)
	if err != nil {
		return 0, 0, fmt.Errorf("tcp pair: %w", err)
	}
	var got uint64
	wait := serveOn(server, peerCPU, func() error {
		buf := make([]byte, 256<<10)
		for {
			k, err := unix.Read(server, buf)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || k == 0 {
				return err
			}
			got += uint64(k)
		}
	})
	if err := pin(cpu); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 64<<10)
	begin()
	var sent uint64
	for ; sent < n; sent++ {
		if err := writeAll(client, buf); err != nil {
			return sent, 0, fmt.Errorf("write: %w", err)
		}
	}
	unix.Close(client)
	err = wait()
	return sent, got / uint64(len(buf)), err
}

// tcpRR does n ping-pongs of 64 bytes: the client (this thread, on cpu)
// writes a request and waits for the response the server thread (on
// peerCPU) writes back.
func tcpRR(n uint64, cpu, peerCPU int, begin func()) (uint64, uint64, error) {
	client, server, err := tcpPair(true)
	if err != nil {
		return 0, 0, fmt.Errorf("tcp pair: %w", err)
	}
	var served uint64
	wait := serveOn(server, peerCPU, func() error {
		msg := make([]byte, 64)
		for {
			ok, err := readFull(server, msg)
			if err != nil || !ok {
				return err
			}
			if err := writeAll(server, msg); err != nil {
				return err
			}
			served++
		}
	})
	if err := pin(cpu); err != nil {
		return 0, 0, err
	}
	msg := make([]byte, 64)
	begin()
	var sent uint64
	for ; sent < n; sent++ {
		if err := writeAll(client, msg); err != nil {
			return sent, 0, fmt.Errorf("write: %w", err)
		}
		if ok, err := readFull(client, msg); err != nil || !ok {
			return sent, 0, fmt.Errorf("read the response: %v (peer closed: %v)", err, !ok)
		}
	}
	unix.Close(client)
	err = wait()
	return sent, served, err
}

// udpSend sends n 64-byte datagrams to port on peers destinations: one
// connected socket to 127.0.0.1 when peers is 1, else an unconnected socket
// sending round-robin to 127.1.X.Y. A thread on peerCPU drains a socket
// bound to the port (0.0.0.0 for many peers) with a 32 MiB receive buffer.
func udpSend(n uint64, cpu, peerCPU, port, peers int, begin func()) (uint64, uint64, error) {
	rx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(rx)
	// FORCE: above net.core.rmem_max, as root may.
	if err := unix.SetsockoptInt(rx, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20); err != nil {
		return 0, 0, fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}
	// A timeout, so that the receiver can see that the sender is done.
	tv := unix.Timeval{Usec: 100000}
	if err := unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, 0, err
	}
	bindAddr := [4]byte{127, 0, 0, 1}
	if peers > 1 {
		bindAddr = [4]byte{}
	}
	if err := unix.Bind(rx, &unix.SockaddrInet4{Port: port, Addr: bindAddr}); err != nil {
		return 0, 0, fmt.Errorf("bind :%d: %w", port, err)
	}
	tx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(tx)
	dsts := make([]unix.SockaddrInet4, peers)
	for i := range dsts {
		dsts[i] = unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 1, byte(i >> 8), byte(i)}}
	}
	if peers == 1 {
		if err := unix.Connect(tx, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return 0, 0, err
		}
	}

	// target is the datagrams sent, once the sender is done: the receiver
	// stops when it has them all, or on a quiet 100 ms after done (drops).
	var received, target atomic.Uint64
	target.Store(math.MaxUint64)
	var done atomic.Bool
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if rerr = pin(peerCPU); rerr != nil {
			return
		}
		buf := make([]byte, 2048)
		for {
			_, err := unix.Read(rx, buf)
			switch {
			case err == nil:
				if received.Add(1) >= target.Load() {
					return
				}
				continue
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN) && !done.Load():
				continue
			case errors.Is(err, unix.EAGAIN):
				return
			}
			rerr = err
			return
		}
	}()
	if err := pin(cpu); err != nil {
		return 0, 0, err
	}
	payload := make([]byte, 64)
	begin()
	var sent, fails uint64
	for sent < n {
		var err error
		if peers == 1 {
			_, err = unix.Write(tx, payload)
		} else {
			err = unix.Sendto(tx, payload, 0, &dsts[sent%uint64(peers)])
		}
		if err != nil {
			if fails++; fails > n {
				return sent, 0, fmt.Errorf("send: %w (%d failures)", err, fails)
			}
			continue
		}
		sent++
	}
	target.Store(sent)
	done.Store(true)
	wg.Wait()
	return sent, received.Load(), rerr
}
