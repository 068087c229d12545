package probe

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The listen kind proves the local half of an inbound requirement: a service
// on this host is listening on the port, on the address peers will use. It
// reads the kernel's socket tables and never connects or sends, so it cannot
// disturb the service (no half-open connections in its accept queue, no
// datagrams it would have to parse). The other half, whether peers can get
// through the network to it, only a check from a peer can prove.
//
// The host field names the address peers use to reach the service:
//
//   - a local address (10.0.0.5, a name resolving to one): a socket bound to
//     that address or to a wildcard that covers it serves it;
//   - 0.0.0.0 (or ::): "on every address"; only a wildcard socket serves it;
//   - localhost, 127.0.0.1, ::1: for services meant for this host only.
//
// An address that is not this host's is a configuration error: this check
// cannot observe another host's sockets, and must not pretend to.
//
// Verdicts:
//
//   - ok: a socket serving the address listens (TCP LISTEN, or an
//     unconnected bound UDP socket);
//   - refused: no socket at all on the port; a peer would be refused (TCP
//     reset, ICMP port unreachable), so the target itself says no;
//   - local: the service runs, but is bound only to other addresses (e.g.
//     127.0.0.1 where LAN peers need it, or an IPv6-only socket where IPv4
//     is needed). Peers are refused too, but the cause is this host's service
//     configuration, not a missing service;
//   - error: the host is not local, or the facts cannot be read.
//
// Phase: connect, the step a peer's attempt would need the listener for.

// ListenFacts are the sockets found on a listen check's port.
type ListenFacts struct {
	// Listening lists the local address:port of every socket listening on
	// the port (TCP LISTEN, or bound unconnected UDP), whether or not it
	// serves the wanted address.
	Listening []string `json:"listening"`
	// Processes names their owners as "name[pid]", when this agent may read
	// /proc/PID/fd (root, or the same user); empty otherwise.
	Processes []string `json:"processes,omitempty"`
}

// maxListenFacts bounds the addresses and processes a result carries.
const maxListenFacts = 32

// listenSocket is one socket bound to the checked port.
type listenSocket struct {
	Addr  net.IP // 4 bytes for AF_INET sockets, 16 for AF_INET6 ones
	Port  int
	Inode uint64
}

func (s listenSocket) String() string {
	return net.JoinHostPort(s.Addr.String(), strconv.Itoa(s.Port))
}

// isV6Wildcard is an AF_INET6 socket bound to [::]: it serves IPv4 too
// unless it is IPv6-only.
func (s listenSocket) isV6Wildcard() bool {
	return len(s.Addr) == net.IPv6len && s.Addr.Equal(net.IPv6unspecified)
}

// servesDirect reports whether s receives traffic addressed to want without
// needing to know IPV6_V6ONLY. want 0.0.0.0 or :: asks for every address of
// its family, which only a wildcard socket provides.
func (s listenSocket) servesDirect(want net.IP) bool {
	a := s.Addr
	if a4 := a.To4(); a4 != nil {
		// An AF_INET socket, or an AF_INET6 one bound to a v4-mapped address
		// (To4 is nil for [::] itself).
		w4 := want.To4()
		return w4 != nil && (a4.Equal(net.IPv4zero) || a4.Equal(w4))
	}
	if want.To4() != nil {
		return false // [::] serving IPv4 needs the V6ONLY answer: see probeListen
	}
	return a.Equal(net.IPv6unspecified) || a.Equal(want)
}

// listenEnv is what probeListen needs from the system; tests replace it.
type listenEnv struct {
	sockets func(transport string, port int) ([]listenSocket, error)
	// v6only says, per inode, whether AF_INET6 sockets on the port are
	// IPv6-only (/proc does not show it).
	v6only func(transport string, port int) (map[uint64]bool, error)
	owners func(ctx context.Context, inodes []uint64) map[uint64]string
	local  func() []net.IP
}

func probeListen(ctx context.Context, t Target) Result {
	return probeListenWith(ctx, t, systemListenEnv())
}

func probeListenWith(ctx context.Context, t Target, env listenEnv) Result {
	r := newResult(t)
	r.Phase = PhaseConnect
	begin := time.Now()
	defer func() { r.addTiming(PhaseConnect, time.Since(begin)) }()

	transport := NetworkOf(t.Check.Transport)
	port := t.Check.Port
	want := t.Addr
	label := fmt.Sprintf("%s/%d", transport, port)
	if !want.IsUnspecified() && !want.IsLoopback() && !containsIP(env.local(), want) {
		r.Reason = ReasonInternalError
		r.Detail = fmt.Sprintf("%s is not an address of this host: a listen check sees only this host's sockets; "+
			"check %s:%d with a %s check from a peer instead", want, want, port, transport)
		return r
	}
	socks, err := env.sockets(transport, port)
	if err != nil {
		r.Reason, r.Detail = ReasonInternalError, fmt.Sprintf("reading this host's %s sockets: %v", transport, err)
		return r
	}
	facts := &ListenFacts{Listening: []string{}}
	r.Facts.ListenFacts = facts
	if len(socks) == 0 {
		r.Reason = ReasonRefused
		if transport == "udp" {
			r.Detail = fmt.Sprintf("no socket is bound to %s on this host: datagrams to %s are answered with ICMP port unreachable or dropped", label, want)
		} else {
			r.Detail = fmt.Sprintf("nothing listens on %s on this host: connections to %s are refused", label, want)
		}
		return r
	}

	var serving []listenSocket
	var v6onlyUnknown error
	var v6onlyWild []listenSocket
	for _, s := range socks {
		switch {
		case s.servesDirect(want):
			serving = append(serving, s)
		case s.isV6Wildcard() && want.To4() != nil:
			v6onlyWild = append(v6onlyWild, s)
		}
	}
	if len(serving) == 0 && len(v6onlyWild) > 0 {
		// Only [::] sockets could serve an IPv4 address: whether they do
		// depends on IPV6_V6ONLY, per socket, which only sock_diag shows.
		only, err := env.v6only(transport, port)
		for _, s := range v6onlyWild {
			v, known := only[s.Inode]
			switch {
			case err != nil || !known:
				v6onlyUnknown = err
				if v6onlyUnknown == nil {
					v6onlyUnknown = fmt.Errorf("socket inode %d not in the sock_diag dump", s.Inode)
				}
			case !v:
				serving = append(serving, s)
			}
		}
	}

	seen := map[string]bool{}
	inodes := make([]uint64, 0, len(socks))
	for _, s := range socks {
		if a := s.String(); !seen[a] && len(facts.Listening) < maxListenFacts {
			seen[a] = true
			facts.Listening = append(facts.Listening, a)
		}
		inodes = append(inodes, s.Inode)
	}
	sort.Strings(facts.Listening)
	owners := env.owners(ctx, inodes)
	ownerNames := func(ss []listenSocket) []string {
		var names []string
		have := map[string]bool{}
		for _, s := range ss {
			if o, ok := owners[s.Inode]; ok && !have[o] {
				have[o] = true
				names = append(names, o)
			}
		}
		sort.Strings(names)
		return names
	}
	ownerOf := func(ss []listenSocket) string {
		if names := ownerNames(ss); len(names) > 0 {
			return " (" + strings.Join(names, ", ") + ")"
		}
		return ""
	}
	facts.Processes = ownerNames(socks)
	if len(facts.Processes) > maxListenFacts {
		facts.Processes = facts.Processes[:maxListenFacts]
	}

	if len(serving) > 0 {
		r.Up, r.Reason = true, ReasonOK
		r.Detail = fmt.Sprintf("%s is listening on %s%s, which serves %s", label, joinSockets(serving), ownerOf(serving), want)
		return r
	}
	if v6onlyUnknown != nil {
		r.Reason = ReasonInternalError
		r.Detail = fmt.Sprintf("%s listens only on [::]:%d%s, which serves IPv4 %s only if it is not IPv6-only, "+
			"and that could not be read: %v", label, port, ownerOf(v6onlyWild), want, v6onlyUnknown)
		return r
	}
	r.Reason = ReasonLocal
	r.Detail = fmt.Sprintf("%s listens only on %s%s%s, not on %s: %s", label, joinSockets(socks), v6onlyNote(v6onlyWild),
		ownerOf(socks), want, notServingWhy(socks, want))
	return r
}

func joinSockets(ss []listenSocket) string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if a := s.String(); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func v6onlyNote(wild []listenSocket) string {
	if len(wild) == 0 {
		return ""
	}
	return " (IPv6-only)"
}

// notServingWhy says what the mismatch means for peers.
func notServingWhy(socks []listenSocket, want net.IP) string {
	allLoopback := true
	for _, s := range socks {
		if !s.Addr.IsLoopback() {
			allLoopback = false
		}
	}
	switch {
	case allLoopback && !want.IsLoopback():
		return "it accepts only this host's own connections; peers on the LAN cannot reach it"
	case want.IsUnspecified():
		return "it is not bound to every address, so peers using another address are refused"
	}
	return fmt.Sprintf("peers connecting to %s are refused; the service must bind to it or to a wildcard address", want)
}
