package demo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/udptrace/udptrace/internal/lab"
)

// RunClient is the demo's client process: `MODE ADDR [N]`, run inside the
// client namespace, reporting on out what its calls returned.
//
//	connected ADDR     connect(), send one datagram, read() (2 s at most)
//	unconnected ADDR   sendto() one datagram, then recvfrom() for 300 ms
//	burst ADDR N       sendto() N datagrams
func RunClient(args []string, out io.Writer) error {
	if len(args) < 2 {
		return fmt.Errorf("want MODE ADDR [N], got %q", args)
	}
	dst, err := netip.ParseAddrPort(args[1])
	if err != nil {
		return err
	}
	ua := net.UDPAddrFromAddrPort(dst)
	network := "udp4"
	if dst.Addr().Is6() {
		network = "udp6"
	}
	msg := []byte("hello")
	switch args[0] {
	case "connected":
		c, err := net.DialUDP(network, nil, ua)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write(msg); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = c.Read(make([]byte, 64))
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			fmt.Fprintf(out, "connect() %s, send() ok, read() = -1 ECONNREFUSED (Connection refused)\n", dst)
		case err != nil:
			fmt.Fprintf(out, "connect() %s, send() ok, read(): %v\n", dst, err)
		default:
			fmt.Fprintf(out, "connect() %s, send() ok, read(): an answer\n", dst)
		}
	case "unconnected":
		c, err := net.ListenUDP(network, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.WriteToUDP(msg, ua); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, _, err = c.ReadFromUDP(make([]byte, 64))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			fmt.Fprintf(out, "sendto() %s ok, recvfrom(): nothing within 300 ms (no error reported)\n", dst)
		} else {
			fmt.Fprintf(out, "sendto() %s ok, recvfrom(): %v\n", dst, err)
		}
	case "burst":
		if len(args) != 3 {
			return errors.New("burst wants ADDR N")
		}
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		c, err := net.ListenUDP(network, nil)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDP(msg, ua); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "sendto() %s, %d times: all ok (an unconnected sender hears nothing)\n", dst, n)
	default:
		return fmt.Errorf("unknown mode %q", args[0])
	}
	return nil
}

// serverSocket is the server's one listening port.
type serverSocket struct{ c *net.UDPConn }

func listen(ns *lab.NS) (*serverSocket, error) {
	c, err := lab.UDPSocket(ns, netip.AddrPortFrom(serverAddr4, listenPort).String(), netip.AddrPortFrom(clientAddr4, 0), false)
	if err != nil {
		return nil, err
	}
	return &serverSocket{c}, nil
}

func (s *serverSocket) receive() string {
	s.c.SetReadDeadline(time.Now().Add(time.Second))
	n, from, err := s.c.ReadFromUDPAddrPort(make([]byte, 64))
	if err != nil {
		return fmt.Sprintf("%s: recvfrom(): %v", s.c.LocalAddr(), err)
	}
	return fmt.Sprintf("%d/%s: %s received %d bytes from %s", os.Getpid(), "udptrace", s.c.LocalAddr(), n, from)
}

func (s *serverSocket) close() { s.c.Close() }
