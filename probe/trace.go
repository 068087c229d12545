package probe

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// A trace finds where the traffic of a failed check stops: TTL-limited (IPv6:
// hop-limit) probes with the check's own transport, destination address and
// port (and source port when the check binds one), each router's ICMP answer
// read from the socket's error queue. No raw socket, no capability: it runs
// as any user (Linux; elsewhere there is no error queue and no trace).
//
// Bounds, stated in the README ("Where is it blocked"): one probe in flight
// at a time; at most TraceTries probes per TTL, each waiting TraceProbeWait;
// the trace stops after TraceSilentHops silent TTLs in a row, at TraceMaxHops,
// or when TraceBudget is spent, whichever comes first. So it sends at most
// MaxTraceProbes packets, and far fewer in practice (the lab measures them).
const (
	TraceMaxHops    = 20
	TraceTries      = 2
	TraceSilentHops = 3
	// TraceProbeWait is well under TCP's initial retransmission timeout
	// (1s), so each TCP probe is one SYN: the socket is closed before the
	// kernel sends a second (should this host stall past it, the copy is
	// counted in Path.Probes and Path.Retransmits).
	TraceProbeWait = 700 * time.Millisecond
	TraceBudget    = 10 * time.Second
	// MaxTraceProbes is the most probes one trace can make: TraceTries per
	// TTL and one control probe.
	MaxTraceProbes = TraceMaxHops*TraceTries + 1
)

// Traceable reports whether a result gets a path trace: a failed attempt
// whose reason can hide where the traffic stopped (timeout, no_reply,
// rejected, unreachable, and local, which a trace turns into this_host when
// this host's firewall is the cause), by a kind that connects out to an
// address of its own (not listen or broadcast, not through a proxy). For a
// TCP transport only a failed connect qualifies: once the handshake
// completed, the path carried the check's packets and the target (or what
// answers for it) is what failed.
func Traceable(r Result) bool {
	if r.Up || r.Check == nil || r.IPFamily == FamilyProxy || net.ParseIP(r.Address) == nil {
		return false
	}
	if spec, err := LookupKind(r.Check.Kind); err != nil || !spec.Outbound() {
		return false
	}
	if pu, err := proxyFor(r.Check); pu != nil || err != nil {
		return false
	}
	switch r.Reason {
	case ReasonTimeout, ReasonNoReply, ReasonRejected, ReasonUnreachable, ReasonLocal:
	default:
		return false
	}
	if traceTransport(r.Check) == "udp" {
		return r.Phase != PhaseDNS
	}
	return r.Phase == PhaseConnect
}

// traceTransport is the check's own transport, "tcp" or "udp".
func traceTransport(c *Check) string {
	switch {
	case c.Transport != "":
		return NetworkOf(c.Transport)
	case c.Network != "":
		return NetworkOf(c.Network)
	}
	if spec, err := LookupKind(c.Kind); err == nil {
		return NetworkOf(spec.Network)
	}
	return "tcp"
}

// Trace traces the path of a failed result (see Traceable) within
// TraceBudget and ctx. It returns nil when r is not traceable or when the
// trace could not observe anything (no socket error queue on this system, a
// local error other than a firewall's). It never changes r.
func Trace(ctx context.Context, r Result) *Path {
	if !Traceable(r) {
		return nil
	}
	ip := net.ParseIP(r.Address)
	t := Target{Check: r.Check, Addr: ip, Family: familyOf(ip)}
	p := newHopProber(t, traceTransport(r.Check) == "udp")
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, TraceBudget)
	defer cancel()
	return runTrace(ctx, p, defaultTraceLimits, ip)
}

// traceLimits are the bounds runTrace keeps; tests shorten them.
type traceLimits struct {
	maxHops, tries, silentHops int
}

var defaultTraceLimits = traceLimits{maxHops: TraceMaxHops, tries: TraceTries, silentHops: TraceSilentHops}

// hopKind is what one probe of a trace saw.
type hopKind int

const (
	hopSilent      hopKind = iota // nothing within the wait
	hopExpired                    // ICMP time exceeded from a router at this TTL
	hopRejected                   // ICMP destination unreachable from a device (or the target) other than a closed port
	hopReached                    // the target answered: connected, reset, replied, or port unreachable
	hopLocal                      // this host did not send it: its firewall (EPERM, own ICMP) or no route
	hopNoNeighbour                // this host's ARP/NDP for the next hop went unanswered
	hopFailed                     // the probe could not run (a socket error): the trace ends without a path
)

// hopAnswer is one probe's outcome.
type hopAnswer struct {
	kind hopKind
	from net.IP // who answered; nil for silence and local outcomes
	what string // for people: the ICMP message or the local error
	rtt  time.Duration
	// resent is how many times the kernel sent a TCP probe's SYN again.
	resent int
}

// hopProber sends the probes of one trace.
type hopProber interface {
	// probe sends one probe with the given TTL and waits for its outcome,
	// at most TraceProbeWait.
	probe(ctx context.Context, ttl int) hopAnswer
	// control sends one TTL-1 probe of the other transport (a UDP datagram
	// to the same address and port number) and waits for its outcome. TTL 1
	// expires at the first router, so it never reaches the target's port.
	control(ctx context.Context) hopAnswer
	// udp reports whether probes are UDP datagrams (TCP SYNs otherwise).
	udp() bool
	// localAddr is this host's source address towards the target, "" when
	// unknown.
	localAddr() string
}

// runTrace probes TTL 1, 2, ... until a device rejects the probe, the target
// answers, this host refuses to send, or silentHops TTLs in a row stay silent,
// and says where the traffic stopped. A device is placed at the first TTL its
// address answered: a router answering TTL 2 with time exceeded and TTL 3
// with admin prohibited is hop 2.
func runTrace(ctx context.Context, p hopProber, lim traceLimits, target net.IP) *Path {
	begin := time.Now()
	path := &Path{Location: PathUnknown, Hops: []PathHop{}}
	done := func() *Path {
		path.DurationSeconds = time.Since(begin).Seconds()
		return path
	}
	firstSeen := map[string]int{}
	lastHop, lastAddr := 0, ""
	silent := 0
	for ttl := 1; ttl <= lim.maxHops && silent < lim.silentHops; ttl++ {
		a := hopAnswer{kind: hopSilent}
		for try := 0; try < lim.tries && a.kind == hopSilent && ctx.Err() == nil; try++ {
			a = p.probe(ctx, ttl)
			path.Probes += 1 + a.resent
			path.Retransmits += a.resent
		}
		if a.kind == hopSilent && ctx.Err() != nil {
			break // the budget ended during this TTL: an unfinished wait is not silence
		}
		hop := PathHop{Hop: ttl, ICMP: a.what}
		if a.from != nil {
			hop.Address = a.from.String()
		}
		if a.kind != hopSilent {
			hop.RTTSeconds = a.rtt.Seconds()
		}
		switch a.kind {
		case hopFailed:
			return nil
		case hopSilent:
			silent++
			path.Hops = append(path.Hops, hop)
			continue
		}
		path.Hops = append(path.Hops, hop)
		switch a.kind {
		case hopExpired:
			silent = 0
			lastHop, lastAddr = ttl, hop.Address
			if _, ok := firstSeen[hop.Address]; !ok {
				firstSeen[hop.Address] = ttl
			}
		case hopLocal:
			path.Location, path.Hop, path.Address = PathThisHost, 0, p.localAddr()
			path.Rejected = true
			return done()
		case hopNoNeighbour:
			// The traffic could not be handed to the first hop at all.
			path.Location, path.Hop, path.Address = PathGateway, 1, ""
			return done()
		case hopRejected:
			at := ttl
			if first, ok := firstSeen[hop.Address]; ok {
				at = first
			}
			path.Hop, path.Address, path.Rejected = at, hop.Address, true
			path.Location = PathUpstream
			if at == 1 && !a.from.Equal(target) {
				path.Location = PathGateway
			}
			return done()
		case hopReached:
			path.Reached = true
			return done()
		}
	}
	switch {
	case lastHop > 0:
		path.Hop, path.Address = lastHop, lastAddr
		path.Location = PathUpstream
		if lastHop == 1 {
			path.Location = PathGateway
		}
	case !p.udp() && len(path.Hops) > 0 && ctx.Err() == nil:
		// No router answered a TCP probe. This host's own OUTPUT drop of a
		// SYN is silent to the socket (TCP ignores the EPERM and retransmits),
		// so ask the first router with another kind of probe: if it answers
		// that but never answered this port, the SYNs did not leave this host.
		a := p.control(ctx)
		path.Probes++
		if a.kind == hopExpired && a.from != nil {
			path.Location, path.Hop, path.Address = PathThisHost, 0, p.localAddr()
			path.Control = fmt.Sprintf("a TTL-1 UDP datagram was answered by %s (%s) while no TCP probe was: the SYNs did not leave this host", a.from, a.what)
		} else {
			path.Control = "a TTL-1 UDP datagram was not answered either: no router on this path sends time exceeded"
		}
	}
	return done()
}

// answerOf turns the outcome of one probe into a hopAnswer. local lists this
// host's addresses (an ICMP error from one of them is this host's doing).
func answerOf(err error, target net.IP, local []net.IP, rtt time.Duration) hopAnswer {
	a := answerKind(err, target, local, rtt)
	var de *dialError
	if errors.As(err, &de) {
		a.resent = de.Resent
	}
	return a
}

func answerKind(err error, target net.IP, local []net.IP, rtt time.Duration) hopAnswer {
	if err == nil {
		return hopAnswer{kind: hopReached, from: target, what: "the target answered", rtt: rtt}
	}
	var de *dialError
	if errors.As(err, &de) && de.ICMP != nil && (de.ICMP.Origin == originICMP || de.ICMP.Origin == originICMP6) {
		return icmpAnswer(de.ICMP, target, local, rtt)
	}
	var nr *noReplyError
	if errors.As(err, &nr) || isTimeout(err) {
		return hopAnswer{kind: hopSilent}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EPERM, syscall.EACCES:
			return hopAnswer{kind: hopLocal, what: "this host refused to send (" + errno.Error() + "): its own firewall"}
		case syscall.ENETUNREACH, syscall.EHOSTUNREACH:
			return hopAnswer{kind: hopLocal, what: "this host has no route to the target (" + errno.Error() + ")"}
		case syscall.ECONNREFUSED:
			return hopAnswer{kind: hopReached, from: target, what: "the target reset the connection", rtt: rtt}
		}
	}
	return hopAnswer{kind: hopFailed, what: err.Error()}
}

func icmpAnswer(e *icmpError, target net.IP, local []net.IP, rtt time.Duration) hopAnswer {
	a := hopAnswer{from: e.Offender, what: e.Describe(), rtt: rtt}
	switch {
	case e.Offender == nil || e.Offender.IsUnspecified():
		// A message without a sender places nothing; count it as silence.
		return hopAnswer{kind: hopSilent}
	case containsIP(local, e.Offender):
		a.kind = hopLocal
		if e.isNoRoute() {
			a.kind = hopNoNeighbour
			a.what += ", reported by this host: the next hop did not answer ARP/NDP"
		}
		a.from = nil
	case e.isTimeExceeded():
		a.kind = hopExpired
	case e.Offender.Equal(target) && e.isPortUnreachable():
		a.kind = hopReached
	default:
		a.kind = hopRejected
	}
	return a
}

// tracePayload is the datagram a UDP trace sends: the kind's own request
// where it is fixed (udp payloads, an NTP client query), so that a firewall
// filtering on content treats it like the check's; empty otherwise.
func tracePayload(c *Check) []byte {
	switch c.Kind {
	case "udp":
		if req, _, _, err := udpRequest(c.GetUDP()); err == nil {
			return req
		}
	case "ntp":
		req := make([]byte, ntpHeaderLen)
		req[0] = 0x23 // LI 0, version 4, mode 3 (client)
		_, _ = rand.Read(req[40:48])
		return req
	}
	return nil
}

// Phrase says in a few words where the traffic stopped, for the end of a
// table row: "stopped after hop 2 (198.51.100.9), beyond your gateway
// 192.168.1.1".
func (p *Path) Phrase() string {
	if p == nil {
		return ""
	}
	gw := ""
	if len(p.Hops) > 0 && p.Hops[0].Address != "" && p.Hops[0].Hop == 1 {
		gw = p.Hops[0].Address
	}
	verb := "stopped after"
	if p.Rejected {
		verb = "rejected at"
	}
	switch p.Location {
	case PathThisHost:
		return "blocked on this host (its own firewall or routing)"
	case PathGateway:
		if p.Address == "" {
			return "stopped at the first hop: your gateway did not answer ARP/NDP"
		}
		return fmt.Sprintf("%s hop 1, your gateway %s", verb, p.Address)
	case PathUpstream:
		s := fmt.Sprintf("%s hop %d (%s)", verb, p.Hop, p.Address)
		if gw != "" && gw != p.Address {
			s += ", beyond your gateway " + gw
		}
		return s
	}
	if p.Reached {
		return "path unknown: the trace reached the target, nothing blocked it then"
	}
	return "path unknown: no hop answered the trace"
}
