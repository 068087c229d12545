//go:build linux && race

package probe

import (
	"errors"
	"syscall"
)

// Under the race detector a sockConn reads and writes through package
// syscall, whose Read and Write tell the detector that data written to a
// socket happens before its reading, as net's I/O does: with raw system
// calls, every test whose server and client share memory through a socket
// would report a race the kernel's ordering rules out.
func sockRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func sockWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
