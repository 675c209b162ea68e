package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// senderMode is the hidden first argument that turns the bench binary into
// the flood sender. The parent starts it inside the test namespace (the child
// inherits the namespace of the thread that forks it), so that its CPU time
// can be read exactly from its rusage when it exits.
const senderMode = "__flood-sender"

// senderResult is what the sender prints on stdout, one JSON object.
type senderResult struct {
	Sent   uint64 `json:"sent"`
	Errors uint64 `json:"errors"` // sendto calls that failed (ENOBUFS, ...) and were retried
	WallNS int64  `json:"wall_ns"`
	// StartCPUNS is the process's CPU time (user + system) when the loop
	// began: the Go runtime's start-up, which the parent subtracts from the
	// rusage of the whole process.
	StartCPUNS int64  `json:"start_cpu_ns"`
	Method     string `json:"method"`
}

// runSender floods dst with n datagrams of size bytes from one unconnected
// IPv4 UDP socket, on a locked OS thread pinned to one CPU.
//
// golang.org/x/sys v0.50.0 (go.mod) has no Sendmmsg wrapper, so this is a
// tight sendto loop; an unconnected socket never receives the port-unreachable
// as an error (no IP_RECVERR), so every call succeeds and every datagram
// reaches the closed port.
func runSender(args []string) error {
	fs := flag.NewFlagSet(senderMode, flag.ContinueOnError)
	n := fs.Uint64("n", 200000, "datagrams to send")
	cpu := fs.Int("cpu", 1, "CPU to pin the sending thread to")
	port := fs.Int("port", 9, "destination port on 127.0.0.1")
	size := fs.Int("size", 16, "payload bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}

	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(*cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", *cpu, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	dst := &unix.SockaddrInet4{Port: *port, Addr: [4]byte{127, 0, 0, 1}}
	payload := make([]byte, *size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}

	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	res := senderResult{StartCPUNS: ru.Utime.Nano() + ru.Stime.Nano(), Method: "sendto loop"}
	start := time.Now()
	for res.Sent < *n {
		// A different first payload byte per datagram: distinct chain ids.
		payload[0] = byte(res.Sent)
		if err := unix.Sendto(fd, payload, 0, dst); err != nil {
			res.Errors++
			if res.Errors > *n {
				return fmt.Errorf("sendto: %w (%d failures)", err, res.Errors)
			}
			continue
		}
		res.Sent++
	}
	res.WallNS = time.Since(start).Nanoseconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}
