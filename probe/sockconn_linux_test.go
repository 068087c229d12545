//go:build linux

package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSockConnActsAsTCPConn holds the connection dialDirect makes to what
// the *net.TCPConn it made before (net.FileConn of the connected socket)
// does in the same situations: addresses, socket options, and
// each error as the classifier and the details read it (type, errno, text
// with the addresses replaced).
func TestSockConnActsAsTCPConn(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dial := func(kind string) (net.Conn, net.Conn) {
		t.Helper()
		var c net.Conn
		if kind == "sock" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err = dialDirect(ctx, Target{Check: &Check{Host: "127.0.0.1", Port: port}, Addr: net.ParseIP("127.0.0.1"), Family: FamilyIPv4})
			if _, ok := c.(*sockConn); err == nil && !ok {
				t.Fatalf("dialDirect made a %T", c)
			}
		} else {
			// The connection dialDirect made before: net.FileConn of the
			// connected socket.
			var d net.Conn
			if d, err = net.Dial("tcp4", ln.Addr().String()); err == nil {
				var f *os.File
				if f, err = d.(*net.TCPConn).File(); err == nil {
					c, err = net.FileConn(f)
					f.Close()
				}
				d.Close()
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		return c, <-accepted
	}
	// norm replaces the connection's own addresses in an error's text.
	norm := func(c net.Conn, err error) string {
		if err == nil {
			return "<nil>"
		}
		return strings.NewReplacer(c.LocalAddr().String(), "LOCAL", c.RemoteAddr().String(), "REMOTE").Replace(err.Error())
	}
	type outcome struct {
		text    string
		errno   syscall.Errno
		timeout bool
		eof     bool
		closed  bool
		n       int
	}
	describe := func(c net.Conn, n int, err error) outcome {
		o := outcome{text: norm(c, err), n: n, eof: err == io.EOF, closed: errors.Is(err, net.ErrClosed)}
		errors.As(err, &o.errno)
		var ne net.Error
		o.timeout = errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
		return o
	}
	cases := []struct {
		name string
		run  func(c, srv net.Conn) (int, error)
	}{
		{"echo", func(c, srv net.Conn) (int, error) {
			if _, err := c.Write([]byte("ping")); err != nil {
				return 0, err
			}
			b := make([]byte, 4)
			if _, err := io.ReadFull(srv, b); err != nil {
				return 0, err
			}
			if _, err := srv.Write([]byte("pong!")); err != nil {
				return 0, err
			}
			got, err := io.ReadFull(c, make([]byte, 5))
			return got, err
		}},
		{"eof", func(c, srv net.Conn) (int, error) {
			srv.Close()
			return c.Read(make([]byte, 10))
		}},
		{"reset", func(c, srv net.Conn) (int, error) {
			_ = srv.(*net.TCPConn).SetLinger(0)
			srv.Close()
			time.Sleep(50 * time.Millisecond)
			return c.Read(make([]byte, 10))
		}},
		{"read deadline", func(c, _ net.Conn) (int, error) {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			return c.Read(make([]byte, 10))
		}},
		{"deadline in the past", func(c, _ net.Conn) (int, error) {
			_ = c.SetDeadline(time.Unix(1, 0))
			return c.Write([]byte("x"))
		}},
		{"read after close", func(c, _ net.Conn) (int, error) {
			c.Close()
			return c.Read(make([]byte, 10))
		}},
		{"write after close", func(c, _ net.Conn) (int, error) {
			c.Close()
			return c.Write([]byte("x"))
		}},
		{"close twice", func(c, _ net.Conn) (int, error) {
			c.Close()
			return 0, c.Close()
		}},
		{"close during read", func(c, _ net.Conn) (int, error) {
			go func() { time.Sleep(50 * time.Millisecond); c.Close() }()
			return c.Read(make([]byte, 10))
		}},
		{"empty read and write", func(c, _ net.Conn) (int, error) {
			if n, err := c.Read(nil); n != 0 || err != nil {
				return n, err
			}
			return c.Write(nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want, got outcome
			for _, kind := range []string{"net", "sock"} {
				c, srv := dial(kind)
				n, err := tc.run(c, srv)
				o := describe(c, n, err)
				c.Close()
				srv.Close()
				if kind == "net" {
					want = o
				} else {
					got = o
				}
			}
			if got != want {
				t.Errorf("dialDirect's connection: %+v\n*net.TCPConn: %+v", got, want)
			}
		})
	}

	t.Run("addresses and options", func(t *testing.T) {
		c, srv := dial("sock")
		defer c.Close()
		defer srv.Close()
		if got, want := c.RemoteAddr().String(), srv.LocalAddr().String(); got != want {
			t.Errorf("RemoteAddr %s, the peer is %s", got, want)
		}
		if got, want := c.LocalAddr().String(), srv.RemoteAddr().String(); got != want {
			t.Errorf("LocalAddr %s, the peer sees %s", got, want)
		}
		if _, ok := c.LocalAddr().(*net.TCPAddr); !ok {
			t.Errorf("LocalAddr is a %T", c.LocalAddr())
		}
		if ip := c.RemoteAddr().(*net.TCPAddr).IP; len(ip) != net.IPv4len {
			t.Errorf("RemoteAddr's IP has %d bytes, net's has 4", len(ip))
		}
		rc, err := c.(interface {
			SyscallConn() (syscall.RawConn, error)
		}).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		want := map[[2]int]int{
			{unix.IPPROTO_TCP, unix.TCP_NODELAY}:   1,
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:   1,
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}:  15,
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}: 15,
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:   9,
			{unix.SOL_IP, unix.IP_RECVERR}:         0,
		}
		_ = rc.Control(func(fd uintptr) {
			for o, v := range want {
				got, err := unix.GetsockoptInt(int(fd), o[0], o[1])
				if err != nil || got != v {
					t.Errorf("socket option %d/%d: %d (%v), want %d", o[0], o[1], got, err, v)
				}
			}
		})
	})
}
