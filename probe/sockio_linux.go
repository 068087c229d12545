//go:build linux && !race

package probe

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockRead and sockWrite are a sockConn's system calls, raw (see
// rawsock_linux.go). p is not empty for sockRead.
func sockRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func sockWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(ptr), uintptr(len(p)))
	return int(n), e
}
