//go:build !linux

package probe

import (
	"context"
	"errors"
)

// watchBroadcast needs Linux: the fallback that leaves a taken port to its
// owner is a Linux packet socket, and a check that ran only sometimes would
// report differently depending on who holds the port.
func watchBroadcast(context.Context, Target, *broadcastCount) error {
	return errors.New("broadcast checks need Linux (packet sockets, IP_PKTINFO)")
}
