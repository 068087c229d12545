package uplink

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/probe"
)

const (
	gw4  = "192.168.1.1"
	gw6  = "fd00:1::1"
	isp4 = "198.51.100.9"
)

var gws = []gateway.Gateway{
	{Family: gateway.FamilyIPv4, Address: gw4, Interface: "eth0", Neighbour: gateway.NeighbourReachable},
	{Family: gateway.FamilyIPv6, Address: gw6, Interface: "eth0", Neighbour: gateway.NeighbourStale},
}

var host = gateway.Host{Gateways: gws}

// ok is a success with an answer from host.
func ok(host, addr string) Evidence {
	return Evidence{Host: host, Address: addr, Family: fam(addr), Answered: true, Up: true, Reason: probe.ReasonOK}
}

func fam(addr string) string {
	if strings.Contains(addr, ":") {
		return gateway.FamilyIPv6
	}
	return gateway.FamilyIPv4
}

// noRoute is a failure the gateway (hop 1, at gwAddr) answered with net unreachable.
func noRoute(host, addr, gwAddr string) Evidence {
	return Evidence{Host: host, Address: addr, Family: fam(addr), Reason: probe.ReasonRejected,
		Detail: "ICMP destination unreachable (net unreachable) from " + gwAddr + ", a device on the path",
		Path: &probe.Path{Location: probe.PathGateway, Hop: 1, Address: gwAddr, Hops: []probe.PathHop{
			{Hop: 1, Address: gwAddr, RTTSeconds: 0.001, ICMP: "net unreachable"},
		}}}
}

// silentAfter is a timeout whose trace saw hops 1..n answer time exceeded
// (hop n at last) and silence after.
func silentAfter(host, addr string, n int, last string) Evidence {
	loc := probe.PathUpstream
	if n == 1 {
		loc = probe.PathGateway
	}
	p := &probe.Path{Location: loc, Hop: n, Address: last}
	for h := 1; h <= n; h++ {
		a := "10.0.0." + string(rune('0'+h))
		if h == 1 {
			a = gw4
		}
		if h == n {
			a = last
		}
		p.Hops = append(p.Hops, probe.PathHop{Hop: h, Address: a, RTTSeconds: 0.002, ICMP: "time exceeded"})
	}
	p.Hops = append(p.Hops, probe.PathHop{Hop: n + 1}, probe.PathHop{Hop: n + 2})
	return Evidence{Host: host, Address: addr, Family: fam(addr), Reason: probe.ReasonTimeout, Path: p}
}

func nothingAnswered(host, addr string) Evidence {
	return Evidence{Host: host, Address: addr, Family: fam(addr), Reason: probe.ReasonTimeout,
		Path: &probe.Path{Location: probe.PathUnknown, Hops: []probe.PathHop{{Hop: 1}, {Hop: 2}, {Hop: 3}}}}
}

func failed(host, addr string, reason probe.Reason) Evidence {
	return Evidence{Host: host, Address: addr, Family: fam(addr), Reason: reason}
}

func TestInferNoEvidence(t *testing.T) {
	v := Infer(nil, host)
	if v.State != StateNone || v.Known() || v.Line() != "" {
		t.Fatalf("no evidence: %+v, want no verdict", v)
	}
	if v.Gateway != gw4 || len(v.Gateways) != 2 {
		t.Errorf("gateways are reported even without a verdict: %+v", v)
	}
}

func TestInferUp(t *testing.T) {
	ev := []Evidence{
		noRoute("a.example", "203.0.113.1", gw4),
		noRoute("b.example", "203.0.113.2", gw4),
		ok("c.example", "203.0.113.3"),
	}
	v := Infer(ev, host)
	if v.State != StateUp || !v.Known() || v.Destinations != 1 || v.Line() != "" {
		t.Fatalf("one success among gateway failures: %+v, want up on 1 destination", v)
	}
	if v.Location != "" || v.Hop != 0 || v.Address != "" {
		t.Errorf("an up verdict names no place: %+v", v)
	}
}

func TestInferDownAtGateway(t *testing.T) {
	ev := []Evidence{
		noRoute("a.example", "203.0.113.1", gw4),
		noRoute("a.example", "203.0.113.1", gw4), // a second port of a
		noRoute("b.example", "203.0.113.2", gw4),
		failed("c.example", "", probe.ReasonDNS),                // neutral
		failed("d.example", "203.0.113.4", probe.ReasonTimeout), // not traced: neutral
	}
	v := Infer(ev, host)
	want := Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2}
	assertPlace(t, v, want)
	if got, want := v.Line(), `uplink down: your gateway 192.168.1.1 has no route to the internet (it answers "net unreachable" for 2 destinations); the failures below are not port blocks`; got != want {
		t.Errorf("line:\n got %s\nwant %s", got, want)
	}
}

func TestInferDownUpstream(t *testing.T) {
	ev := []Evidence{
		silentAfter("a.example", "203.0.113.1", 2, isp4),
		silentAfter("b.example", "203.0.113.2", 2, isp4),
		silentAfter("c.example", "203.0.113.3", 2, isp4),
	}
	v := Infer(ev, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathUpstream, Hop: 2, Address: isp4, Gateway: gw4, Destinations: 3})
	for _, s := range []string{"beyond hop 2 (198.51.100.9)", "your gateway 192.168.1.1", "3 destinations"} {
		if !strings.Contains(v.Detail, s) {
			t.Errorf("detail %q lacks %q", v.Detail, s)
		}
	}
}

func TestInferDownUpstreamNoRoute(t *testing.T) {
	mk := func(host, addr string) Evidence {
		e := silentAfter(host, addr, 2, isp4)
		e.Reason = probe.ReasonRejected
		e.Path.Hops = e.Path.Hops[:2]
		e.Path.Hops[1].ICMP = "host unreachable"
		return e
	}
	v := Infer([]Evidence{mk("a.example", "203.0.113.1"), mk("b.example", "203.0.113.2")}, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathUpstream, Hop: 2, Address: isp4, Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, "hop 2 (198.51.100.9), beyond your gateway 192.168.1.1, has no route") {
		t.Errorf("detail %q", v.Detail)
	}
}

func TestInferDownGatewaySilent(t *testing.T) {
	ev := []Evidence{silentAfter("a.example", "203.0.113.1", 1, gw4), silentAfter("b.example", "203.0.113.2", 1, gw4)}
	v := Infer(ev, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, "answers, but nothing beyond it does") {
		t.Errorf("detail %q", v.Detail)
	}
}

func TestInferNothingAnswers(t *testing.T) {
	ev := []Evidence{nothingAnswered("a.example", "203.0.113.1"), nothingAnswered("b.example", "203.0.113.2")}

	v := Infer(ev, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathUnknown, Hop: 0, Address: "", Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, "not even your gateway 192.168.1.1") {
		t.Errorf("detail %q", v.Detail)
	}

	// The neighbour table shows the gateway not answering: that is where.
	dead := []gateway.Gateway{{Family: gateway.FamilyIPv4, Address: gw4, Interface: "eth0", Neighbour: gateway.NeighbourFailed}}
	v = Infer(ev, gateway.Host{Gateways: dead})
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, "does not answer (its ARP/NDP lookups fail)") {
		t.Errorf("detail %q", v.Detail)
	}

	// A stale entry proves nothing either way: still unknown.
	stale := []gateway.Gateway{{Family: gateway.FamilyIPv4, Address: gw4, Neighbour: gateway.NeighbourStale}}
	assertPlace(t, Infer(ev, gateway.Host{Gateways: stale}), Verdict{State: StateDown, Location: probe.PathUnknown, Gateway: gw4, Destinations: 2})
}

func TestInferNoDefaultRoute(t *testing.T) {
	ev := []Evidence{
		failed("a.example", "203.0.113.1", probe.ReasonUnreachable),
		failed("b.example", "203.0.113.2", probe.ReasonUnreachable),
		failed("c.example", "", probe.ReasonDNS),
	}
	v := Infer(ev, gateway.Host{})
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathThisHost, Destinations: 2})
	if !strings.Contains(v.Detail, "no default route") {
		t.Errorf("detail %q", v.Detail)
	}
	// Routing table not read: no place is inferred from its absence.
	if v := Infer(ev, gateway.Host{Err: gateway.ErrUnsupported}); v.State != StateUnknown || v.GatewayErr == "" {
		t.Errorf("gateways unknown: %+v, want unknown with the reason", v)
	}
}

func TestInferGatewaysUnknown(t *testing.T) {
	ev := []Evidence{noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4)}
	v := Infer(ev, gateway.Host{Err: errors.New("reading the routing table: permission denied")})
	// The paths still say where; the gateway is the device at hop 1.
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if v.GatewayErr == "" || v.Gateways != nil {
		t.Errorf("gateway error not reported: %+v", v)
	}
}

func TestInferDualStack(t *testing.T) {
	ev := []Evidence{
		noRoute("a.example", "203.0.113.1", gw4), noRoute("a.example", "2001:db8::1", gw6),
		noRoute("b.example", "203.0.113.2", gw4), noRoute("b.example", "2001:db8::2", gw6),
	}
	v := Infer(ev, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if strings.Contains(v.Detail, "over IPv6") {
		t.Errorf("the same place over IPv6 needs no mention: %q", v.Detail)
	}

	// IPv4 stops at the gateway, IPv6 beyond the ISP router: down, the
	// IPv4 place first, the IPv6 one in the detail.
	ev = []Evidence{
		noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4),
		silentAfter("a.example", "2001:db8::1", 2, "2001:db8:ffff::9"),
	}
	v = Infer(ev, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, "over IPv6: silence after hop 2 (2001:db8:ffff::9)") {
		t.Errorf("detail %q", v.Detail)
	}
}

// TestInferNotDown covers what must never read as a down uplink.
func TestInferNotDown(t *testing.T) {
	adminProhibited := func(host, addr string) Evidence {
		e := noRoute(host, addr, gw4)
		e.Path.Hops[0].ICMP = "admin prohibited"
		return e
	}
	cases := []struct {
		name string
		ev   []Evidence
		want string // in the detail
	}{
		{"one destination, two ports", []Evidence{
			noRoute("a.example", "203.0.113.1", gw4), noRoute("a.example", "203.0.113.1", gw4),
		}, "only one destination"},
		{"one destination, both families", []Evidence{
			noRoute("a.example", "203.0.113.1", gw4), noRoute("a.example", "2001:db8::1", gw6),
		}, "only one destination"},
		{"two names, one address", []Evidence{
			noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.1", gw4),
		}, "only one destination"},
		{"different places", []Evidence{
			noRoute("a.example", "203.0.113.1", gw4), silentAfter("b.example", "203.0.113.2", 2, isp4),
		}, "different places"},
		{"different devices at the same hop", []Evidence{
			silentAfter("a.example", "203.0.113.1", 2, isp4), silentAfter("b.example", "203.0.113.2", 2, "198.51.100.10"),
		}, "different places"},
		{"a failure saw farther", []Evidence{
			silentAfter("a.example", "203.0.113.1", 2, isp4), silentAfter("b.example", "203.0.113.2", 2, isp4),
			func() Evidence {
				e := silentAfter("c.example", "203.0.113.3", 3, "198.51.100.20")
				e.Path.Hops[1].Address = isp4
				e.Path.Hops[2].ICMP = "admin prohibited"
				return e
			}(),
		}, "hop 3 answering"},
		{"port blocks at the gateway", []Evidence{
			adminProhibited("a.example", "203.0.113.1"), adminProhibited("b.example", "203.0.113.2"),
		}, "no failure was traced"},
		{"a target answered", []Evidence{
			noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4),
			failed("c.example", "203.0.113.3", probe.ReasonRefused),
		}, "c.example (203.0.113.3) answered something (refused)"},
		{"TLS answered", []Evidence{
			noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4),
			failed("c.example", "203.0.113.3", probe.ReasonTLSUntrusted),
		}, "answered something"},
		{"nothing traced", []Evidence{
			failed("a.example", "203.0.113.1", probe.ReasonTimeout), failed("b.example", "203.0.113.2", probe.ReasonTimeout),
		}, "no failure was traced"},
		{"names only", []Evidence{
			failed("a.example", "", probe.ReasonDNS), failed("b.example", "", probe.ReasonDNS),
		}, "no failure was traced"},
		{"this host's firewall", []Evidence{
			{Host: "a.example", Address: "203.0.113.1", Family: "ipv4", Reason: probe.ReasonTimeout, Path: &probe.Path{Location: probe.PathThisHost}},
			{Host: "b.example", Address: "203.0.113.2", Family: "ipv4", Reason: probe.ReasonTimeout, Path: &probe.Path{Location: probe.PathThisHost}},
		}, "no failure was traced"},
		{"silence accepted only", []Evidence{
			{Host: "a.example", Address: "203.0.113.1", Family: "ipv4", Up: true, Reason: probe.ReasonOK},
		}, "UDP checks that accept silence"},
		{"nothing answered, and one destination at the gateway", []Evidence{
			nothingAnswered("a.example", "203.0.113.1"), noRoute("b.example", "203.0.113.2", gw4),
		}, "only one destination"},
		{"one nothing answered, one gateway rule", []Evidence{
			nothingAnswered("a.example", "203.0.113.1"), nothingAnswered("b.example", "203.0.113.2"),
			adminProhibited("c.example", "203.0.113.3"),
		}, "hop 1 answering"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := Infer(tc.ev, host)
			if v.State != StateUnknown || v.Known() || v.Line() != "" {
				t.Fatalf("%+v, want unknown", v)
			}
			if v.Location != "" || v.Hop != 0 || v.Address != "" {
				t.Errorf("an unknown verdict names no place: %+v", v)
			}
			if !strings.Contains(v.Detail, tc.want) {
				t.Errorf("detail %q lacks %q", v.Detail, tc.want)
			}
		})
	}
}

// TestInferSilenceAcceptedHidesNothing: a UDP check up on silence is no
// answer, so it does not keep a down line "up".
func TestInferSilenceAcceptedHidesNothing(t *testing.T) {
	ev := []Evidence{
		{Host: "voip.example", Address: "203.0.113.9", Family: "ipv4", Up: true, Reason: probe.ReasonOK},
		noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4),
	}
	assertPlace(t, Infer(ev, host), Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
}

// TestInferResolvers: traces towards the resolvers count as destinations.
func TestInferResolvers(t *testing.T) {
	ev := []Evidence{
		failed("a.example", "", probe.ReasonDNS), failed("b.example", "", probe.ReasonDNS),
		silentAfter("9.9.9.9", "9.9.9.9", 2, isp4), silentAfter("1.1.1.1", "1.1.1.1", 2, isp4),
	}
	assertPlace(t, Infer(ev, host), Verdict{State: StateDown, Location: probe.PathUpstream, Hop: 2, Address: isp4, Gateway: gw4, Destinations: 2})
}

// TestInferStopFromDetail: a trace that does not name the answer at the
// stopping hop leaves it to the check's own failure.
func TestInferStopFromDetail(t *testing.T) {
	mk := func(host, addr string) Evidence {
		e := noRoute(host, addr, gw4)
		e.Path.Hops[0].ICMP = ""
		return e
	}
	assertPlace(t, Infer([]Evidence{mk("a.example", "203.0.113.1"), mk("b.example", "203.0.113.2")}, host),
		Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})

	// Rejected by a rule, per the detail: a port block, no evidence.
	rule := func(host, addr string) Evidence {
		e := mk(host, addr)
		e.Detail = "ICMP destination unreachable (communication administratively prohibited) from " + gw4 + ", a device on the path"
		return e
	}
	if v := Infer([]Evidence{rule("a.example", "203.0.113.1"), rule("b.example", "203.0.113.2")}, host); v.State != StateUnknown {
		t.Errorf("admin prohibited per the detail: %+v, want unknown", v)
	}
}

func TestStopOf(t *testing.T) {
	for in, want := range map[string]stop{
		"":                     stopOther,
		"time exceeded":        stopSilent,
		"ICMPv6 time exceeded": stopSilent,
		"net unreachable":      stopNoRoute,
		"ICMP destination unreachable (host unreachable) from 10.0.0.1": stopNoRoute,
		"no route to destination":                     stopNoRoute,
		"address unreachable":                         stopNoRoute,
		"reject route to destination":                 stopNoRoute,
		"admin prohibited":                            stopRule,
		"communication administratively prohibited":   stopRule,
		"port unreachable":                            stopRule,
		"source address failed ingress/egress policy": stopRule,
		"echo reply":                                  stopOther,
	} {
		if got := stopOf(in); got != want {
			t.Errorf("stopOf(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestFromResults(t *testing.T) {
	tcp := &probe.Check{Name: "api", Kind: "tls", Host: "api.example", Port: 443}
	listen := &probe.Check{Name: "local", Kind: "listen", Host: "0.0.0.0", Port: 8080}
	bcast := &probe.Check{Name: "ksc", Kind: "broadcast", Port: 15000}
	silent := &probe.Check{Name: "rtp", Kind: "udp", Host: "voip.example", Port: 10000, UDP: &probe.UDPOptions{AcceptSilence: true}}
	bogus := &probe.Check{Name: "x", Kind: "nosuchkind", Host: "x.example"}
	path := &probe.Path{Location: probe.PathGateway, Hop: 1, Address: gw4}
	rs := []probe.Result{
		{Check: tcp, Address: "203.0.113.1", IPFamily: "ipv4", Reason: probe.ReasonTimeout, Detail: "d", Path: path},
		{Check: tcp, Address: "2001:db8::1", IPFamily: "ipv6", Up: true, Reason: probe.ReasonOK},
		{Check: listen, Reason: probe.ReasonRefused},
		{Check: bcast, Up: true, Reason: probe.ReasonOK},
		{Check: silent, Address: "203.0.113.9", IPFamily: "ipv4", Up: true, Reason: probe.ReasonOK},
		{Check: silent, Address: "203.0.113.9", IPFamily: "ipv4", Up: true, Reason: probe.ReasonOK,
			Facts: probe.Facts{UDPFacts: &probe.UDPFacts{ReplyBytes: 12}}},
		{Check: tcp, Reason: probe.ReasonSkipped},
		{Check: tcp, Reason: probe.ReasonInternalError},
		{Check: bogus, Reason: probe.ReasonTimeout},
		{Reason: probe.ReasonTimeout},
	}
	ev := FromResults(rs)
	want := []Evidence{
		{Host: "api.example", Address: "203.0.113.1", Family: "ipv4", Reason: probe.ReasonTimeout, Detail: "d", Path: path},
		{Host: "api.example", Address: "2001:db8::1", Family: "ipv6", Answered: true, Up: true, Reason: probe.ReasonOK},
		{Host: "voip.example", Address: "203.0.113.9", Family: "ipv4", Up: true, Reason: probe.ReasonOK},
		{Host: "voip.example", Address: "203.0.113.9", Family: "ipv4", Answered: true, Up: true, Reason: probe.ReasonOK},
	}
	if len(ev) != len(want) {
		t.Fatalf("got %d evidence, want %d: %+v", len(ev), len(want), ev)
	}
	for i := range want {
		if ev[i] != want[i] {
			t.Errorf("evidence %d:\n got %+v\nwant %+v", i, ev[i], want[i])
		}
	}
}

func assertPlace(t *testing.T, got, want Verdict) {
	t.Helper()
	if got.State != want.State || got.Location != want.Location || got.Hop != want.Hop || got.Address != want.Address ||
		got.Gateway != want.Gateway || got.Destinations != want.Destinations {
		t.Fatalf("verdict %+v\nwant state=%s location=%s hop=%d address=%q gateway=%q destinations=%d",
			got, want.State, want.Location, want.Hop, want.Address, want.Gateway, want.Destinations)
	}
	if got.Detail == "" {
		t.Errorf("verdict without a detail: %+v", got)
	}
}

// TestInferOnLink: destinations on this host's own subnets never cross the
// gateway; they neither prove the line up nor count against it.
func TestInferOnLink(t *testing.T) {
	lan := gateway.Host{Gateways: gws, Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}}
	ev := []Evidence{
		ok("nas.lan", "192.168.1.10"), // a LAN server answers: no proof
		ok("localhost", "127.0.0.1"),  // this host: no proof
		noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4),
		// The resolver on the gateway answered its trace: neutral.
		{Host: gw4, Address: gw4, Family: "ipv4", Reason: probe.ReasonNoReply,
			Path: &probe.Path{Location: probe.PathUnknown, Hops: []probe.PathHop{{Hop: 1, Address: gw4, ICMP: "the target answered"}}}},
	}
	assertPlace(t, Infer(ev, lan), Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if v := Infer(ev[:2], lan); v.State != StateNone {
		t.Errorf("only on-link evidence: %+v, want no verdict", v)
	}
}

// TestInferGatewayNoNeighbour: the tracer found this host's ARP/NDP for the
// gateway unanswered (location gateway, no address).
func TestInferGatewayNoNeighbour(t *testing.T) {
	mk := func(host, addr string) Evidence {
		return Evidence{Host: host, Address: addr, Family: "ipv4", Reason: probe.ReasonTimeout,
			Path: &probe.Path{Location: probe.PathGateway, Hop: 1, Hops: []probe.PathHop{{Hop: 1, ICMP: "ICMP destination unreachable (host unreachable), reported by this host: the next hop did not answer ARP/NDP"}}}}
	}
	v := Infer([]Evidence{mk("a.example", "203.0.113.1"), mk("b.example", "203.0.113.2")}, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: "", Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, "does not answer (this host's ARP/NDP lookups for it fail") {
		t.Errorf("detail %q", v.Detail)
	}
}

// TestInferSilentTraceFitsAnyPlace: a trace no hop answered (a router's ICMP
// rate limit, say) does not stand against the place the others show.
func TestInferSilentTraceFitsAnyPlace(t *testing.T) {
	ev := []Evidence{
		noRoute("a.example", "203.0.113.1", gw4), nothingAnswered("c.example", "203.0.113.3"),
		noRoute("b.example", "203.0.113.2", gw4),
	}
	assertPlace(t, Infer(ev, host), Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
}

// TestInferGatewayNamedInDetail: a failure the gateway answered with net
// unreachable counts at the gateway even when its trace saw nothing (the
// gateway's ICMP rate limit spent by the checks themselves).
func TestInferGatewayNamedInDetail(t *testing.T) {
	silentTrace := func(e Evidence) Evidence {
		e.Path = &probe.Path{Location: probe.PathUnknown, Hops: []probe.PathHop{{Hop: 1}, {Hop: 2}, {Hop: 3}}}
		return e
	}
	ev := []Evidence{
		silentTrace(noRoute("a.example", "203.0.113.1", gw4)),
		func() Evidence { e := noRoute("b.example", "203.0.113.2", gw4); e.Path = nil; return e }(),
		nothingAnswered("c.example", "203.0.113.3"),
	}
	v := Infer(ev, host)
	assertPlace(t, v, Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
	if !strings.Contains(v.Detail, `"ICMP destination unreachable (net unreachable)"`) {
		t.Errorf("detail %q", v.Detail)
	}
	// Another device named, or a rule: no place from the detail.
	other := noRoute("a.example", "203.0.113.1", "192.168.1.10")
	other.Path = nil
	rule := noRoute("b.example", "203.0.113.2", gw4)
	rule.Path, rule.Detail = nil, "ICMP destination unreachable (communication administratively prohibited) from "+gw4+", a device on the path"
	prefix := noRoute("c.example", "203.0.113.3", gw4+"0") // 192.168.1.10 is not 192.168.1.1
	prefix.Path = nil
	if v := Infer([]Evidence{other, rule, prefix}, host); v.State != StateUnknown {
		t.Errorf("%+v, want unknown", v)
	}
}

// TestInferThroughProxy: a success through a proxy (its result's address
// reads "via proxy host:port") reached the internet; a proxied failure has
// no path and counts neither way.
func TestInferThroughProxy(t *testing.T) {
	lan := gateway.Host{Gateways: gws, Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}}
	via := Evidence{Host: "login.datev.de", Address: "via proxy 192.168.1.5:3128", Family: "proxy", Answered: true, Up: true, Reason: probe.ReasonOK}
	if v := Infer([]Evidence{via, noRoute("a.example", "203.0.113.1", gw4)}, lan); v.State != StateUp {
		t.Errorf("proxied success: %+v, want up", v)
	}
	denied := Evidence{Host: "login.datev.de", Address: "via proxy 192.168.1.5:3128", Family: "proxy", Reason: probe.ReasonProxyDenied}
	ev := []Evidence{denied, noRoute("a.example", "203.0.113.1", gw4), noRoute("b.example", "203.0.113.2", gw4)}
	assertPlace(t, Infer(ev, lan), Verdict{State: StateDown, Location: probe.PathGateway, Hop: 1, Address: gw4, Gateway: gw4, Destinations: 2})
}
