//go:build !linux

package probe

import (
	"context"
	"errors"
)

// errListenNeedsLinux explains why the listen kind cannot run here: it reads
// the kernel's socket tables in /proc/net, which only Linux has.
var errListenNeedsLinux = errors.New("listen checks read /proc/net and need Linux")

func systemListenEnv() listenEnv {
	return listenEnv{
		sockets: func(string, int) ([]listenSocket, error) { return nil, errListenNeedsLinux },
		v6only:  func(string, int) (map[uint64]bool, error) { return nil, errListenNeedsLinux },
		owners:  func(context.Context, []uint64) map[uint64]string { return nil },
		local:   hostAddrs,
	}
}
