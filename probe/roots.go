package probe

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
)

// TLSRoots caches the pools TLS probes verify against (the system roots plus
// a check's ca_file), one per CA file, so that a probe neither clones the
// system pool nor reads and parses its CA file again: both cost more than
// the handshake's own verification. The agent makes a new TLSRoots at every
// configuration load, so a changed CA file is read at the next reload.
// Errors are not cached: an unreadable file is retried at the next probe.
// Safe for concurrent use.
type TLSRoots struct {
	mu    sync.Mutex
	pools map[string]*x509.CertPool // by CA file; "" is the system roots alone
}

// NewTLSRoots returns an empty cache.
func NewTLSRoots() *TLSRoots { return &TLSRoots{pools: map[string]*x509.CertPool{}} }

type rootsKey struct{}

// WithTLSRoots returns ctx carrying roots for every TLS probe run with it.
// Without it, each probe builds its pool anew (as `probe check` does, which
// runs each check once).
func WithTLSRoots(ctx context.Context, roots *TLSRoots) context.Context {
	return context.WithValue(ctx, rootsKey{}, roots)
}

// rootPool returns the pool for caFile, from ctx's cache when it has one.
func rootPool(ctx context.Context, caFile string) (*x509.CertPool, error) {
	r, _ := ctx.Value(rootsKey{}).(*TLSRoots)
	if r == nil {
		return loadRootPool(caFile)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pools[caFile]; ok {
		return p, nil
	}
	p, err := loadRootPool(caFile)
	if err != nil {
		return nil, err
	}
	r.pools[caFile] = p
	return p, nil
}

// loadRootPool is the system roots plus the certificates of caFile (if set).
func loadRootPool(caFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %s holds no PEM certificate", caFile)
		}
	}
	return roots, nil
}
