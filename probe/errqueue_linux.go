//go:build linux

package probe

import (
	"encoding/binary"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// Origins of a queued socket error (linux/errqueue.h).
const (
	eeOriginLocal = 1
	eeOriginICMP  = 2
	eeOriginICMP6 = 3
)

// sizeofSockExtendedErr is struct sock_extended_err; the offender's sockaddr
// (SO_EE_OFFENDER) follows it in the control message.
const sizeofSockExtendedErr = 16

// readErrQueue takes the oldest entry from the socket's error queue without
// blocking. It returns nil when the queue is empty or holds nothing useful.
func readErrQueue(fd int) *icmpError {
	var buf [64]byte
	var oob [256]byte
	_, oobn, _, _, err := unix.Recvmsg(fd, buf[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err != nil {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil
	}
	for _, m := range msgs {
		isV4 := m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR
		isV6 := m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR
		if !isV4 && !isV6 {
			continue
		}
		if e := parseExtendedErr(m.Data); e != nil {
			return e
		}
	}
	return nil
}

func parseExtendedErr(b []byte) *icmpError {
	if len(b) < sizeofSockExtendedErr {
		return nil
	}
	ne := binary.NativeEndian
	e := &icmpError{
		Errno: syscall.Errno(ne.Uint32(b[0:4])),
		Type:  b[5],
		Code:  b[6],
	}
	switch b[4] {
	case eeOriginICMP:
		e.Origin = originICMP
	case eeOriginICMP6:
		e.Origin = originICMP6
	case eeOriginLocal:
		e.Origin = originLocal
	default:
		e.Origin = originOther
	}
	off := b[sizeofSockExtendedErr:]
	if len(off) >= 2 {
		switch ne.Uint16(off[0:2]) {
		case unix.AF_INET:
			if len(off) >= 8 {
				e.Offender = net.IP(append([]byte(nil), off[4:8]...))
			}
		case unix.AF_INET6:
			if len(off) >= 24 {
				e.Offender = net.IP(append([]byte(nil), off[8:24]...))
			}
		}
	}
	return e
}

// enableRecvErr is a net.Dialer Control function: it asks the kernel to
// queue ICMP errors, with their sender, on the socket.
func enableRecvErr(network, _ string, c syscall.RawConn) error {
	domain := unix.AF_INET
	if network == "udp6" || network == "tcp6" {
		domain = unix.AF_INET6
	}
	var serr error
	if err := c.Control(func(fd uintptr) { serr = setRecvErr(int(fd), domain, true) }); err != nil {
		return err
	}
	return serr
}

// connErrQueue reads the oldest queued ICMP error of a connection.
func connErrQueue(c syscall.Conn) *icmpError {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var e *icmpError
	_ = rc.Control(func(fd uintptr) { e = readErrQueue(int(fd)) })
	return e
}

// enableRecvErrReuseAddr is enableRecvErr plus SO_REUSEADDR, for sockets
// bound to a fixed source port that other checks may share.
func enableRecvErrReuseAddr(network, address string, c syscall.RawConn) error {
	if err := enableRecvErr(network, address, c); err != nil {
		return err
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}
