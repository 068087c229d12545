package probe

import (
	"context"
	"net"
	"sync"
	"time"
)

// interruptWhenDone ends blocked I/O at once when ctx is cancelled, by
// moving a deadline into the past through set. Call the returned stop when
// the I/O under ctx is over: once it returns, the hook never touches the
// deadline again, so the socket can be reused under another context (a bare
// context.AfterFunc may still be running after its stop returns false).
func interruptWhenDone(ctx context.Context, set func(time.Time) error) (stop func()) {
	var mu sync.Mutex
	done := false
	unhook := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			_ = set(time.Unix(1, 0))
		}
	})
	return func() {
		unhook()
		mu.Lock()
		done = true
		mu.Unlock()
	}
}

// bindDeadline makes conn's reads and writes end at ctx's deadline, or at
// once when ctx is cancelled. Call the returned stop when done with ctx.
func bindDeadline(ctx context.Context, conn net.Conn) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return interruptWhenDone(ctx, conn.SetDeadline)
}
