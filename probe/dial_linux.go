//go:build linux

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// dialDirect connects to t with IP_RECVERR (IPV6_RECVERR) set, so that an ICMP
// error answering the SYN stays readable on the socket's error queue and can be
// attributed to the device that sent it. net.Dialer closes the socket on
// failure before the queue can be read, hence the hand-made non-blocking
// connect on top of the runtime poller (os.NewFile + SyscallConn).
func dialDirect(ctx context.Context, t Target) (net.Conn, error) {
	return dialDirectTTL(ctx, t, 0)
}

// dialDirectTTL is dialDirect with the packets' TTL (IPv6: hop limit) set to
// ttl; 0 keeps the system default. The path tracer uses it so that a router
// at hop ttl answers the SYN with ICMP time exceeded, read like any other
// ICMP error from the error queue.
func dialDirectTTL(ctx context.Context, t Target, ttl int) (net.Conn, error) {
	f, domain, err := connectSocket(ctx, t, ttl)
	if err != nil {
		return nil, err
	}
	conn, err := newSockConn(f, domain, t.Addr, t.Check.Port)
	if err != nil {
		f.Close()
		return nil, &dialError{Op: "connect", Err: err}
	}
	return conn, nil
}

// connectDirect proves that a TCP handshake with t completes and closes the
// connection at once: dialDirect for the tcp kind, without making a
// net.Conn it would not use (net.FileConn dups the socket, registers the
// copy with the poller and sets five socket options: 13 of the 35 system
// calls a probe made).
func connectDirect(ctx context.Context, t Target) error {
	f, _, err := connectSocket(ctx, t, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// connectSocket is the connect of dialDirectTTL: it returns the connected
// socket as an *os.File (registered with the runtime poller) and its
// address family.
func connectSocket(ctx context.Context, t Target, ttl int) (*os.File, int, error) {
	domain, sa, err := sockaddrOf(t.Addr, t.Check.Port)
	if err != nil {
		return nil, 0, err
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, 0, &dialError{Op: "socket", Err: os.NewSyscallError("socket", err)}
	}
	if err := setRecvErr(fd, domain, true); err != nil {
		unix.Close(fd)
		return nil, 0, &dialError{Op: "setsockopt", Err: os.NewSyscallError("setsockopt", err)}
	}
	if ttl > 0 {
		if err := setTTL(fd, domain, ttl); err != nil {
			unix.Close(fd)
			return nil, 0, &dialError{Op: "setsockopt", Err: os.NewSyscallError("setsockopt", err)}
		}
	}
	begin := time.Now()
	if err := rawConnect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		icmp := readErrQueue(fd)
		unix.Close(fd)
		return nil, 0, &dialError{Op: "connect", Err: os.NewSyscallError("connect", err), ICMP: icmp}
	}

	f := os.NewFile(uintptr(fd), "tcp:"+t.HostPort())
	connected := false
	defer func() {
		if !connected {
			f.Close()
		}
	}()
	if d, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(d); err != nil {
			return nil, 0, &dialError{Op: "connect", Err: err}
		}
	}
	stop := interruptWhenDone(ctx, f.SetWriteDeadline)
	defer stop()

	rc, err := f.SyscallConn()
	if err != nil {
		return nil, 0, &dialError{Op: "connect", Err: err}
	}
	var connErr error
	var icmp *icmpError
	// A trace accounts for every packet it sends, SYNs the kernel sent again
	// included (a probe outlasting TCP's 1s initial timeout).
	resent := func() int {
		n := 0
		if ttl > 0 {
			_ = rc.Control(func(fd uintptr) { n = synResent(int(fd)) })
		}
		return n
	}
	waitErr := rc.Write(func(fd uintptr) bool {
		// A peer means the handshake completed: one system call on the
		// way that succeeds. The first call runs before any wait, when the
		// handshake is usually still in progress.
		if hasPeer(int(fd)) {
			return true
		}
		v, err := rawGetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			connErr = os.NewSyscallError("getsockopt", err)
			return true
		}
		if v != 0 {
			connErr = os.NewSyscallError("connect", syscall.Errno(v))
			icmp = readErrQueue(int(fd))
			return true
		}
		return false // in progress
	})
	if waitErr != nil {
		// Deadline or cancellation: report any soft ICMP error seen meanwhile.
		_ = rc.Control(func(fd uintptr) { icmp = readErrQueue(int(fd)) })
		if errors.Is(waitErr, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			waitErr = ctx.Err()
		}
		return nil, 0, &dialError{Op: "connect", Err: waitErr, ICMP: icmp, Timeout: true, Resent: resent()}
	}
	if connErr != nil {
		return nil, 0, &dialError{Op: "connect", Err: connErr, ICMP: icmp, Elapsed: time.Since(begin), Resent: resent()}
	}
	connected = true
	return f, domain, nil
}

func sockaddrOf(ip net.IP, port int) (int, unix.Sockaddr, error) {
	if ip4 := ip.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa, nil
	}
	if ip16 := ip.To16(); ip16 != nil {
		sa := &unix.SockaddrInet6{Port: port}
		copy(sa.Addr[:], ip16)
		return unix.AF_INET6, sa, nil
	}
	return 0, nil, &dialError{Op: "connect", Err: fmt.Errorf("invalid IP address %q", ip)}
}

func setRecvErr(fd, domain int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	if domain == unix.AF_INET6 {
		return rawSetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_RECVERR, v)
	}
	return rawSetsockoptInt(fd, unix.SOL_IP, unix.IP_RECVERR, v)
}

// setTTL sets the TTL (IPv6: unicast hop limit) of the socket's packets.
func setTTL(fd, domain, ttl int) error {
	if domain == unix.AF_INET6 {
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TTL, ttl)
}

// synResent is how many times the kernel retransmitted the socket's SYN
// (tcpi_retransmits: retransmission timeouts, counted also when this host's
// firewall drops the copy); 0 when unknown.
func synResent(fd int) int {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0
	}
	return int(info.Retransmits)
}
