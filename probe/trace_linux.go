//go:build linux

package probe

import (
	"context"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sockProber sends trace probes as ordinary sockets: a TCP connect or a
// connected UDP socket per probe, with the TTL set and IP_RECVERR on (the same
// dialers the checks use), so each probe's ICMP answer lands on its own
// socket's error queue and cannot be mistaken for another probe's.
type sockProber struct {
	t       Target
	isUDP   bool
	payload []byte
}

func newHopProber(t Target, udp bool) hopProber {
	p := &sockProber{t: t, isUDP: udp}
	if udp {
		p.payload = tracePayload(t.Check)
	}
	return p
}

func (p *sockProber) udp() bool { return p.isUDP }

func (p *sockProber) probe(ctx context.Context, ttl int) hopAnswer {
	ctx, cancel := context.WithTimeout(ctx, TraceProbeWait)
	defer cancel()
	begin := time.Now()
	var err error
	resent := 0
	if p.isUDP {
		err = exchangeUDPTTL(ctx, p.t, ttl, p.payload)
	} else {
		var c net.Conn
		if c, err = dialDirectTTL(ctx, p.t, ttl); err == nil {
			if sc, ok := c.(syscall.Conn); ok {
				if rc, rerr := sc.SyscallConn(); rerr == nil {
					_ = rc.Control(func(fd uintptr) { resent = synResent(int(fd)) })
				}
			}
			c.Close()
		}
	}
	a := answerOf(err, p.t.Addr, hostAddrs(), time.Since(begin))
	a.resent += resent
	return a
}

func (p *sockProber) control(ctx context.Context) hopAnswer {
	ctx, cancel := context.WithTimeout(ctx, TraceProbeWait)
	defer cancel()
	begin := time.Now()
	// The same address and port number, over UDP, from an ephemeral port.
	c := *p.t.Check
	c.SourcePort = 0
	t := Target{Check: &c, Addr: p.t.Addr, Family: p.t.Family}
	err := exchangeUDPTTL(ctx, t, 1, nil)
	return answerOf(err, p.t.Addr, hostAddrs(), time.Since(begin))
}

// localAddr asks the routing table for the source address towards the
// target: connecting a UDP socket sends nothing.
func (p *sockProber) localAddr() string {
	network := "udp4"
	if p.t.Addr.To4() == nil {
		network = "udp6"
	}
	c, err := net.Dial(network, net.JoinHostPort(p.t.Addr.String(), strconv.Itoa(p.t.Check.Port)))
	if err != nil {
		return ""
	}
	defer c.Close()
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// exchangeUDPTTL sends payload once with the given TTL on a socket from
// dialUDP (the check's own source port when it binds one) and waits for any
// datagram from the target or an ICMP error, until ctx ends.
func exchangeUDPTTL(ctx context.Context, t Target, ttl int, payload []byte) error {
	conn, err := dialUDP(ctx, t)
	if err != nil {
		return err
	}
	defer conn.Close()
	domain := unix.AF_INET
	if t.Addr.To4() == nil {
		domain = unix.AF_INET6
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return &dialError{Op: "connect", Err: err}
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setTTL(int(fd), domain, ttl) }); err != nil {
		return &dialError{Op: "connect", Err: err}
	}
	if serr != nil {
		return &dialError{Op: "connect", Err: os.NewSyscallError("setsockopt", serr)}
	}
	_, _, err = exchangeUDP(ctx, conn, payload, func([]byte) bool { return true })
	return err
}
