//go:build !linux

package probe

// newHopProber: without a socket error queue the routers' answers cannot be
// read unprivileged, so there is no trace on this system.
func newHopProber(Target, bool) hopProber { return nil }
