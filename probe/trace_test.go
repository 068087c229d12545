package probe

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// fakeProber answers each TTL from a script; TTLs not in it stay silent.
type fakeProber struct {
	answers  map[int][]hopAnswer // per TTL, one answer per try (the last repeats)
	ctrl     hopAnswer
	isUDP    bool
	sent     map[int]int
	controls int
}

func (f *fakeProber) probe(_ context.Context, ttl int) hopAnswer {
	if f.sent == nil {
		f.sent = map[int]int{}
	}
	f.sent[ttl]++
	as := f.answers[ttl]
	if len(as) == 0 {
		return hopAnswer{kind: hopSilent}
	}
	return as[min(f.sent[ttl], len(as))-1]
}

func (f *fakeProber) control(context.Context) hopAnswer { f.controls++; return f.ctrl }
func (f *fakeProber) udp() bool                         { return f.isUDP }
func (f *fakeProber) localAddr() string                 { return "192.0.2.10" }

var (
	target = net.ParseIP("203.0.113.5")
	gw     = net.ParseIP("192.0.2.1")
	isp    = net.ParseIP("198.51.100.9")
)

func expired(from net.IP) hopAnswer {
	return hopAnswer{kind: hopExpired, from: from, what: "ICMP time exceeded", rtt: time.Millisecond}
}

func rejected(from net.IP) hopAnswer {
	return hopAnswer{kind: hopRejected, from: from, what: "ICMP destination unreachable (communication administratively prohibited)"}
}

var testLimits = traceLimits{maxHops: 8, tries: 2, silentHops: 3}

func TestRunTraceLocations(t *testing.T) {
	cases := []struct {
		name     string
		p        *fakeProber
		loc      PathLocation
		hop      int
		addr     string
		rejected bool
		reached  bool
		probes   int
		hops     int
	}{
		{
			// The rule: time exceeded at TTL 2, admin prohibited at
			// TTL 3 from the same device: hop 2.
			name: "reject after time exceeded is that device's hop",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {expired(isp)}, 3: {rejected(isp)}}},
			loc:  PathUpstream, hop: 2, addr: isp.String(), rejected: true, probes: 3, hops: 3,
		},
		{
			name: "gateway rejects",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {rejected(gw)}}},
			loc:  PathGateway, hop: 1, addr: gw.String(), rejected: true, probes: 2, hops: 2,
		},
		{
			// A device never seen before rejects: it is placed where it answered.
			name: "unseen device rejects at its TTL",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 3: {rejected(isp)}}},
			loc:  PathUpstream, hop: 3, addr: isp.String(), rejected: true, probes: 1 + 2 + 1, hops: 3,
		},
		{
			name: "the target itself rejects: upstream even at hop 1",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {rejected(target)}}},
			loc:  PathUpstream, hop: 1, addr: target.String(), rejected: true, probes: 1, hops: 1,
		},
		{
			name: "silent after the ISP router",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {expired(isp)}}},
			loc:  PathUpstream, hop: 2, addr: isp.String(), probes: 2 + 3*2, hops: 5,
		},
		{
			name: "silent after the gateway",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}}},
			loc:  PathGateway, hop: 1, addr: gw.String(), probes: 1 + 3*2, hops: 4,
		},
		{
			// A lost answer is retried once; a silent hop in the middle does
			// not end the trace.
			name: "retry and a silent router in the middle",
			p: &fakeProber{answers: map[int][]hopAnswer{
				1: {{kind: hopSilent}, expired(gw)}, 3: {expired(isp)},
			}},
			loc: PathUpstream, hop: 3, addr: isp.String(), probes: 2 + 2 + 1 + 3*2, hops: 6,
		},
		{
			name: "this host refuses to send",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {{kind: hopLocal, what: "EPERM"}}}},
			loc:  PathThisHost, hop: 0, addr: "192.0.2.10", rejected: true, probes: 1, hops: 1,
		},
		{
			name: "tcp: nothing answers, the control probe is answered: this host dropped the SYNs",
			p:    &fakeProber{ctrl: expired(gw)},
			loc:  PathThisHost, hop: 0, addr: "192.0.2.10", probes: 3*2 + 1, hops: 3,
		},
		{
			name: "tcp: nothing answers, nor the control probe: unknown",
			p:    &fakeProber{},
			loc:  PathUnknown, probes: 3*2 + 1, hops: 3,
		},
		{
			name: "udp: nothing answers: unknown, no control probe",
			p:    &fakeProber{isUDP: true, ctrl: expired(gw)},
			loc:  PathUnknown, probes: 3 * 2, hops: 3,
		},
		{
			name: "the target answers: reached, location unknown",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {{kind: hopReached, from: target}}}},
			loc:  PathUnknown, reached: true, probes: 2, hops: 2,
		},
		{
			name: "the next hop does not answer ARP",
			p:    &fakeProber{answers: map[int][]hopAnswer{1: {{kind: hopNoNeighbour, what: "host unreachable"}}}},
			loc:  PathGateway, hop: 1, addr: "", probes: 1, hops: 1,
		},
		{
			// Every hop answers: the trace ends at maxHops.
			name: "maxHops bounds a path that never ends",
			p: &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {expired(isp)}, 3: {expired(isp)}, 4: {expired(isp)},
				5: {expired(isp)}, 6: {expired(isp)}, 7: {expired(isp)}, 8: {expired(isp)}, 9: {expired(isp)}}},
			loc: PathUpstream, hop: 8, addr: isp.String(), probes: 8, hops: 8,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := runTrace(context.Background(), tc.p, testLimits, target)
			if p == nil {
				t.Fatal("no path")
			}
			if p.Location != tc.loc || p.Hop != tc.hop || p.Address != tc.addr || p.Rejected != tc.rejected || p.Reached != tc.reached {
				t.Errorf("got %s hop %d %q rejected=%v reached=%v, want %s hop %d %q rejected=%v reached=%v",
					p.Location, p.Hop, p.Address, p.Rejected, p.Reached, tc.loc, tc.hop, tc.addr, tc.rejected, tc.reached)
			}
			if p.Probes != tc.probes || len(p.Hops) != tc.hops {
				t.Errorf("probes %d hops %d, want %d and %d: %+v", p.Probes, len(p.Hops), tc.probes, tc.hops, p.Hops)
			}
			if p.Probes > testLimits.maxHops*testLimits.tries+1 {
				t.Errorf("%d probes over the bound", p.Probes)
			}
		})
	}
}

func TestRunTraceFailedProbeGivesNoPath(t *testing.T) {
	p := &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {{kind: hopFailed, what: "socket: too many open files"}}}}
	if got := runTrace(context.Background(), p, testLimits, target); got != nil {
		t.Errorf("got %+v, want no path when a probe cannot run", got)
	}
}

// A trace whose budget is spent stops at once and does not count the
// unfinished wait as a silent hop.
func TestRunTraceBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &cancellingProber{fakeProber: fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}}}, cancel: cancel, at: 2}
	got := runTrace(ctx, p, testLimits, target)
	if got == nil || got.Location != PathGateway || got.Hop != 1 || len(got.Hops) != 1 || got.Probes != 2 {
		t.Fatalf("got %+v, want gateway hop 1 with one hop after the budget ended during TTL 2", got)
	}
	if p.controls != 0 {
		t.Errorf("sent a control probe after the budget ended")
	}
}

type cancellingProber struct {
	fakeProber
	cancel func()
	at     int
}

func (c *cancellingProber) probe(ctx context.Context, ttl int) hopAnswer {
	if ttl == c.at {
		c.cancel()
	}
	return c.fakeProber.probe(ctx, ttl)
}

func TestAnswerOf(t *testing.T) {
	local := []net.IP{net.ParseIP("192.0.2.10")}
	icmp := func(typ, code uint8, from string) error {
		return &dialError{Op: "connect", Err: syscall.EHOSTUNREACH, ICMP: &icmpError{Origin: originICMP, Type: typ, Code: code, Offender: net.ParseIP(from)}}
	}
	cases := []struct {
		name string
		err  error
		want hopKind
	}{
		{"connected", nil, hopReached},
		{"time exceeded", icmp(11, 0, "192.0.2.1"), hopExpired},
		{"admin prohibited from a router", icmp(3, 13, "192.0.2.1"), hopRejected},
		{"admin prohibited from the target", icmp(3, 13, target.String()), hopRejected},
		{"port unreachable from the target", icmp(3, 3, target.String()), hopReached},
		{"own firewall's ICMP", icmp(3, 13, "192.0.2.10"), hopLocal},
		{"own ARP failure", icmp(3, 1, "192.0.2.10"), hopNoNeighbour},
		{"no sender", icmp(3, 13, "0.0.0.0"), hopSilent},
		{"silence", &noReplyError{Waited: time.Second}, hopSilent},
		{"connect timeout", &dialError{Op: "connect", Err: context.DeadlineExceeded, Timeout: true}, hopSilent},
		{"EPERM", &dialError{Op: "send", Err: syscall.EPERM}, hopLocal},
		{"no route", &dialError{Op: "connect", Err: syscall.ENETUNREACH}, hopLocal},
		{"reset", &dialError{Op: "connect", Err: syscall.ECONNREFUSED}, hopReached},
		{"source port taken", &dialError{Op: "connect", Err: syscall.EADDRINUSE}, hopFailed},
		{"other", errors.New("boom"), hopFailed},
	}
	for _, tc := range cases {
		if got := answerOf(tc.err, target, local, time.Millisecond); got.kind != tc.want {
			t.Errorf("%s: kind %d, want %d (%+v)", tc.name, got.kind, tc.want, got)
		}
	}
}

func TestTraceable(t *testing.T) {
	tcp := &Check{Kind: "tcp", Host: "203.0.113.5", Port: 443, Network: "tcp"}
	ntp := &Check{Kind: "ntp", Host: "203.0.113.5", Port: 123, Network: "udp"}
	sipTCP := &Check{Kind: "sip", Host: "203.0.113.5", Port: 5060, Transport: "tcp", Network: "tcp"}
	proxied := &Check{Kind: "https", Host: "example.test", Port: 443, Network: "tcp", Proxy: "http://192.0.2.3:3128"}
	listen := &Check{Kind: "listen", Host: "0.0.0.0", Port: 8080, Network: "tcp"}
	res := func(c *Check, reason Reason, phase Phase) Result {
		return Result{Check: c, Address: "203.0.113.5", IPFamily: FamilyIPv4, Reason: reason, Phase: phase}
	}
	cases := []struct {
		name string
		r    Result
		want bool
	}{
		{"tcp connect timeout", res(tcp, ReasonTimeout, PhaseConnect), true},
		{"tcp rejected", res(tcp, ReasonRejected, PhaseConnect), true},
		{"tcp unreachable", res(tcp, ReasonUnreachable, PhaseConnect), true},
		{"tcp local (own firewall)", res(tcp, ReasonLocal, PhaseConnect), true},
		{"tcp refused: the target answered", res(tcp, ReasonRefused, PhaseConnect), false},
		{"timeout after the handshake", res(tcp, ReasonTimeout, PhaseTLS), false},
		{"tls reason", res(tcp, ReasonTLSHandshake, PhaseTLS), false},
		{"protocol", res(tcp, ReasonProtocol, PhaseBanner), false},
		{"dns", res(tcp, ReasonDNS, PhaseDNS), false},
		{"ntp no reply", res(ntp, ReasonNoReply, PhaseResponse), true},
		{"ntp rejected", res(ntp, ReasonRejected, PhaseResponse), true},
		{"sip over tcp, timeout in connect", res(sipTCP, ReasonTimeout, PhaseConnect), true},
		{"through a proxy", Result{Check: proxied, Address: "via proxy", IPFamily: FamilyProxy, Reason: ReasonTimeout, Phase: PhaseConnect}, false},
		{"listen", res(listen, ReasonTimeout, PhaseConnect), false},
		{"up", Result{Check: tcp, Address: "203.0.113.5", Up: true, Reason: ReasonOK, Phase: PhaseConnect}, false},
		{"no address", Result{Check: tcp, Reason: ReasonTimeout, Phase: PhaseConnect}, false},
	}
	for _, tc := range cases {
		if got := Traceable(tc.r); got != tc.want {
			t.Errorf("%s: Traceable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPathPhrase(t *testing.T) {
	hops := []PathHop{{Hop: 1, Address: "192.168.1.1"}, {Hop: 2, Address: "198.51.100.9"}, {Hop: 3}}
	cases := []struct {
		p    *Path
		want string
	}{
		{&Path{Location: PathUpstream, Hop: 2, Address: "198.51.100.9", Hops: hops}, "stopped after hop 2 (198.51.100.9), beyond your gateway 192.168.1.1"},
		{&Path{Location: PathUpstream, Hop: 2, Address: "198.51.100.9", Hops: hops, Rejected: true}, "rejected at hop 2 (198.51.100.9), beyond your gateway 192.168.1.1"},
		{&Path{Location: PathGateway, Hop: 1, Address: "192.168.1.1", Hops: hops[:1]}, "stopped after hop 1, your gateway 192.168.1.1"},
		{&Path{Location: PathThisHost}, "blocked on this host (its own firewall or routing)"},
		{&Path{Location: PathUnknown, Hops: []PathHop{{Hop: 1}}}, "path unknown: no hop answered the trace"},
		{nil, ""},
	}
	for _, tc := range cases {
		if got := tc.p.Phrase(); got != tc.want {
			t.Errorf("Phrase() = %q, want %q", got, tc.want)
		}
	}
}

// A SYN the kernel sent again (this host stalled past TCP's 1s timeout) is
// a packet like any other: counted in Probes and in Retransmits.
func TestRunTraceCountsRetransmittedSYNs(t *testing.T) {
	silentResent := hopAnswer{kind: hopSilent, resent: 1}
	p := &fakeProber{answers: map[int][]hopAnswer{1: {expired(gw)}, 2: {silentResent}}}
	got := runTrace(context.Background(), p, testLimits, target)
	// TTL 1: 1 probe; TTL 2: 2 tries, each resent once; TTL 3, 4: 2 each.
	if got.Probes != 1+2*2+2+2 || got.Retransmits != 2 {
		t.Errorf("probes %d retransmits %d, want 9 and 2", got.Probes, got.Retransmits)
	}
	a := answerOf(&dialError{Op: "connect", Err: context.DeadlineExceeded, Timeout: true, Resent: 1}, target, nil, time.Second)
	if a.kind != hopSilent || a.resent != 1 {
		t.Errorf("answerOf kept %+v", a)
	}
}
