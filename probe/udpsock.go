package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// maxDatagram bounds what one read takes from a peer: a hostile endpoint
// cannot make a probe hold more.
const maxDatagram = 4096

// maxStrayDatagrams bounds how many replies that do not match the request
// (stale, spoofed or foreign) a probe reads before calling it a protocol error.
const maxStrayDatagrams = 32

// noReplyError is silence after a datagram: no reply and no ICMP error. It
// proves only that nothing on the path rejected the datagram.
type noReplyError struct{ Waited time.Duration }

func (e *noReplyError) Error() string {
	return fmt.Sprintf("no reply and no ICMP error within %s: the datagram was dropped on the way, or the service ignored it (open|filtered)",
		e.Waited.Round(time.Millisecond))
}

// dialUDP returns a connected UDP socket to t that queues ICMP errors with
// their sender. Connecting sends nothing; it only fixes the peer, so replies
// from anyone else are filtered by the kernel.
func dialUDP(ctx context.Context, t Target) (*net.UDPConn, error) {
	network := "udp4"
	if t.Addr.To4() == nil {
		network = "udp6"
	}
	d := net.Dialer{Control: enableRecvErr}
	if t.Check.SourcePort != 0 {
		d.LocalAddr = &net.UDPAddr{Port: t.Check.SourcePort}
		// Several checks may send from the same port (NTP servers from 123)
		// at once. Each socket is connected to its own peer, so the kernel
		// still hands every reply to the right one; a daemon that holds
		// the port without SO_REUSEADDR keeps it to itself.
		d.Control = enableRecvErrReuseAddr
	}
	c, err := d.DialContext(ctx, network, t.HostPort())
	if err != nil {
		switch {
		case t.Check.SourcePort == 0:
		case errors.Is(err, syscall.EADDRINUSE):
			err = fmt.Errorf("source port %d is taken on this host (a local NTP daemon?): %w", t.Check.SourcePort, err)
		case errors.Is(err, syscall.EACCES):
			err = fmt.Errorf("binding source port %d needs CAP_NET_BIND_SERVICE: %w", t.Check.SourcePort, err)
		}
		return nil, &dialError{Op: "connect", Err: err}
	}
	return c.(*net.UDPConn), nil
}

// exchangeUDP sends req and waits for a datagram that match accepts, until
// ctx's deadline. ICMP errors come back as a *dialError carrying the ICMP
// message and its sender; silence as a *noReplyError.
//
// A datagram that match rejects is not the service answering this request (a
// stale reply, another client's, a spoofed one, or a service that speaks
// something else): it is skipped and the wait goes on, since the real reply
// may still come. If the deadline passes with only such datagrams seen, that
// is not silence but a *protocolError ("N replies from the target, none
// matching"); after maxStrayDatagrams of them the wait ends early.
func exchangeUDP(ctx context.Context, c *net.UDPConn, req []byte, match func([]byte) bool) ([]byte, time.Duration, error) {
	begin := time.Now()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	stop := interruptWhenDone(ctx, c.SetDeadline)
	defer stop()

	if _, err := c.Write(req); err != nil {
		return nil, 0, &dialError{Op: "send", Err: err, ICMP: connErrQueue(c), Elapsed: time.Since(begin)}
	}
	buf := make([]byte, maxDatagram)
	for stray := 0; ; stray++ {
		n, err := c.Read(buf)
		if err != nil {
			icmp := connErrQueue(c)
			if icmp == nil && isTimeout(err) {
				if stray > 0 {
					return nil, 0, strayError(stray, time.Since(begin))
				}
				return nil, 0, &noReplyError{Waited: time.Since(begin)}
			}
			return nil, 0, &dialError{Op: "receive", Err: err, ICMP: icmp, Elapsed: time.Since(begin)}
		}
		if match(buf[:n]) {
			return append([]byte(nil), buf[:n]...), time.Since(begin), nil
		}
		if stray+1 >= maxStrayDatagrams {
			return nil, 0, strayError(stray+1, time.Since(begin))
		}
	}
}

// strayError is a wait that saw n datagrams from the target, none of them an
// answer to the request.
func strayError(n int, waited time.Duration) error {
	what := fmt.Sprintf("%d replies", n)
	if n == 1 {
		what = "1 reply"
	}
	return &protocolError{Msg: fmt.Sprintf("%s from the target within %s, none matching the request "+
		"(stale, foreign or spoofed datagrams, or a service that does not answer this request)", what, waited.Round(time.Millisecond))}
}

// localPortOf is the local port a socket is bound to.
func localPortOf(c net.Conn) int {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.Port
	}
	_, p, _ := net.SplitHostPort(c.LocalAddr().String())
	n, _ := strconv.Atoi(p)
	return n
}
