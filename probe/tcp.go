package probe

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// probeTCP proves that a TCP handshake with the address completes.
func probeTCP(ctx context.Context, t Target) Result {
	r := newResult(t)
	begin := time.Now()
	err := connectTCP(ctx, t)
	took := time.Since(begin)
	r.addTiming(PhaseConnect, took)
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseConnect
	host := t.Check.Host
	if t.Addr != nil {
		host = r.Address // t.Addr's text, made once by newResult
	}
	r.Detail = connectedDetail(host, t.Check.Port, took)
	return r
}

// connectedDetail is "connected to HOST:PORT in TOOK" (an IPv6 address in
// brackets, as net.JoinHostPort writes it), assembled in one buffer: a
// probe that succeeds makes this text every time.
func connectedDetail(host string, port int, took time.Duration) string {
	var buf [96]byte
	b := append(buf[:0], "connected to "...)
	if strings.IndexByte(host, ':') >= 0 {
		b = append(append(append(b, '['), host...), ']')
	} else {
		b = append(b, host...)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(port), 10)
	b = append(b, " in "...)
	b = append(b, took.Round(time.Microsecond).String()...)
	return string(b)
}

// connectTCP is dialTCP for a probe that only needs the handshake: the
// connection is closed at once, and a direct one is never made a net.Conn.
func connectTCP(ctx context.Context, t Target) error {
	if pu, err := proxyFor(t.Check); err == nil && pu == nil && t.Addr != nil {
		return connectDirect(ctx, t)
	}
	conn, err := dialTCP(ctx, t)
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}
