//go:build !linux

package gateway

// Read returns ErrUnsupported: this build cannot read the routing table, and
// a gateway is never guessed.
func Read() ([]Gateway, error) { return nil, ErrUnsupported }
