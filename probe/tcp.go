package probe

import (
	"context"
	"fmt"
	"time"
)

// probeTCP proves that a TCP handshake with the address completes.
func probeTCP(ctx context.Context, t Target) Result {
	r := newResult(t)
	begin := time.Now()
	err := connectTCP(ctx, t)
	r.addTiming(PhaseConnect, time.Since(begin))
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseConnect
	r.Detail = fmt.Sprintf("connected to %s in %s", t.HostPort(), time.Since(begin).Round(time.Microsecond))
	return r
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
