//go:build linux

package probe

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The connect path's socket calls never block (the socket is non-blocking;
// waiting is the runtime poller's), so they are made as raw system calls.
// A call through syscall.Syscall tells the runtime it may block: the first
// one after the agent was idle wakes the runtime's monitor thread, which
// then polls every 20 us until the probe is done (in BenchmarkAgentProbe
// about a sixth of the agent's CPU per TCP probe). They also allocate
// nothing: x/sys's Getpeername converts the address, asking the socket's
// protocol with one more getsockopt.

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawSetsockoptInt is unix.SetsockoptInt without entering the scheduler.
func rawSetsockoptInt(fd, level, opt, value int) error {
	v := int32(value)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), 4, 0)
	return errnoErr(e)
}

// rawGetsockoptInt is unix.GetsockoptInt without entering the scheduler.
func rawGetsockoptInt(fd, level, opt int) (int, error) {
	var v int32
	l := uint32(4)
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&l)), 0)
	return int(v), errnoErr(e)
}

// rawConnect starts a non-blocking connect to sa (from sockaddrOf).
func rawConnect(fd int, sa unix.Sockaddr) error {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		var rsa unix.RawSockaddrInet4
		rsa.Family = unix.AF_INET
		rsa.Port = htons(uint16(sa.Port))
		rsa.Addr = sa.Addr
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), unix.SizeofSockaddrInet4)
		return errnoErr(e)
	case *unix.SockaddrInet6:
		var rsa unix.RawSockaddrInet6
		rsa.Family = unix.AF_INET6
		rsa.Port = htons(uint16(sa.Port))
		rsa.Addr = sa.Addr
		rsa.Scope_id = sa.ZoneId
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), unix.SizeofSockaddrInet6)
		return errnoErr(e)
	}
	return unix.Connect(fd, sa)
}

// hasPeer reports whether the socket has a peer (its handshake
// completed), without converting the peer's address.
func hasPeer(fd int) bool {
	var rsa unix.RawSockaddrAny
	l := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
	return e == 0
}
