package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
)

// WithResolveOnce returns a context under which Run resolves each name at
// most once (per DNS server and address family): later checks reuse the
// first answer or failure, and checks that ask while a lookup is under way
// wait for it. For a single pass over many checks (`probe check`): 200 ports
// of one host need one lookup, and 200 identical DNS failures cost one
// timeout, not 200. The agent resolves at every run, so it follows changes.
func WithResolveOnce(ctx context.Context) context.Context {
	return context.WithValue(ctx, resolveOnceKey{}, &resolveOnce{m: map[lookupKey]*lookupEntry{}})
}

type resolveOnceKey struct{}

type resolveOnce struct {
	mu sync.Mutex
	m  map[lookupKey]*lookupEntry
}

type lookupKey struct{ server, network, host string }

type lookupEntry struct {
	done  chan struct{} // closed when addrs and err are set
	addrs []netip.Addr
	err   error
}

// lookupNetIP resolves host as newResolver(server).LookupNetIP does, through
// ctx's resolve-once cache when it has one.
func lookupNetIP(ctx context.Context, server, network, host string) ([]netip.Addr, error) {
	cache, _ := ctx.Value(resolveOnceKey{}).(*resolveOnce)
	if cache == nil {
		return newResolver(server).LookupNetIP(ctx, network, host)
	}
	key := lookupKey{server, network, host}
	for {
		cache.mu.Lock()
		e, found := cache.m[key]
		if !found {
			e = &lookupEntry{done: make(chan struct{})}
			cache.m[key] = e
		}
		cache.mu.Unlock()
		if !found {
			e.addrs, e.err = newResolver(server).LookupNetIP(ctx, network, host)
			if e.err != nil && errors.Is(ctx.Err(), context.Canceled) {
				// The asking check was cancelled: that says nothing about
				// the name, so the next check asks again.
				cache.mu.Lock()
				delete(cache.m, key)
				cache.mu.Unlock()
			}
			close(e.done)
			return e.addrs, e.err
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// What the resolver itself says when the check's time runs
				// out during a lookup.
				return nil, &net.DNSError{Err: "i/o timeout", Name: host, Server: server, IsTimeout: true}
			}
			return nil, ctx.Err()
		}
		cache.mu.Lock()
		again := cache.m[key] != e // forgotten after a cancellation: ask anew
		cache.mu.Unlock()
		if !again {
			return e.addrs, e.err
		}
	}
}
