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
	conn, err := dialTCP(ctx, t)
	r.addTiming(PhaseConnect, time.Since(begin))
	if err != nil {
		return fail(&r, PhaseConnect, err, t.Addr)
	}
	conn.Close()
	r.Up, r.Reason, r.Phase = true, ReasonOK, PhaseConnect
	r.Detail = fmt.Sprintf("connected to %s in %s", t.HostPort(), time.Since(begin).Round(time.Microsecond))
	return r
}
