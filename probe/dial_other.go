//go:build !linux

package probe

import (
	"context"
	"net"
	"syscall"
)

// dialDirect on systems without a readable socket error queue: ICMP errors are
// seen only as the errno they map to, so "rejected" cannot be told from
// "refused" or "unreachable" there.
func dialDirect(ctx context.Context, t Target) (net.Conn, error) {
	var d net.Dialer
	network := "tcp4"
	if t.Addr.To4() == nil {
		network = "tcp6"
	}
	c, err := d.DialContext(ctx, network, t.HostPort())
	if err != nil {
		return nil, &dialError{Op: "connect", Err: err}
	}
	return c, nil
}

// connectDirect proves that a TCP handshake with t completes and closes the
// connection at once.
func connectDirect(ctx context.Context, t Target) error {
	c, err := dialDirect(ctx, t)
	if err != nil {
		return err
	}
	return c.Close()
}

// enableRecvErr does nothing where there is no socket error queue.
func enableRecvErr(string, string, syscall.RawConn) error { return nil }

// connErrQueue: no error queue to read.
func connErrQueue(syscall.Conn) *icmpError { return nil }

// enableRecvErrReuseAddr: no error queue, and the platform's default reuse rules.
func enableRecvErrReuseAddr(string, string, syscall.RawConn) error { return nil }
