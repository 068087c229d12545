// Package uplink infers the site-wide verdict "is it the uplink?" from the
// results of the outbound checks and the paths traced for their failures.
//
// It is a pure function of what was observed (Infer): it sends nothing and
// never changes a check's verdict. The rule (README, "Where is it blocked"):
//
//   - up: at least one outbound check succeeded with an answer from its target;
//   - down: no outbound check succeeded, and checks to at least two different
//     destinations stopped at the same place (the same device at the same hop
//     said "no route", or was the last to answer before silence; or nothing
//     answered at all), while no failure shows an answer from beyond that place;
//   - unknown: everything else. A place is never guessed.
package uplink

import (
	"fmt"
	"slices"
	"strings"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/probe"
)

// State is the uplink verdict. It is a public interface (JSON): extend,
// never rename.
type State string

// The uplink states.
const (
	// StateNone: no outbound check has a result (none configured, or none
	// has run yet): there is no verdict at all.
	StateNone State = ""
	// StateUp: an outbound check got an answer from its target.
	StateUp State = "up"
	// StateDown: outbound checks to two or more destinations stopped at the
	// same place and none succeeded.
	StateDown State = "down"
	// StateUnknown: no outbound check succeeded, but the failures do not
	// show one place where everything stops.
	StateUnknown State = "unknown"
)

// Evidence is one outbound observation: a check's result against one
// destination, or a trace towards a DNS resolver when names did not resolve.
type Evidence struct {
	Host    string // the destination's name (or the resolver's address)
	Address string // the address probed; empty when the name did not resolve
	Family  string // "ipv4" or "ipv6"; empty when unknown
	// Answered: the check succeeded on an answer from its target. A UDP
	// check that accepts silence is up without one, and proves nothing.
	Answered bool
	Up       bool
	Reason   probe.Reason
	Detail   string
	Path     *probe.Path
}

// Verdict is the site-wide uplink verdict.
type Verdict struct {
	State State
	// Where the traffic of every failing destination stops; set when down.
	Location probe.PathLocation
	Hop      int
	Address  string // the device at Hop; empty when none answered
	// Gateway is this host's default gateway for the family concerned (the
	// IPv4 one first); empty when there is none or it is not known.
	Gateway string
	Detail  string // for people
	// Gateways is what the routing table says (nil when GatewayErr is set).
	Gateways   []gateway.Gateway
	GatewayErr string // why the gateways are not known; empty when they are
	// Destinations is how many different destinations the verdict rests on:
	// for down, those stopping at the place; for up, those that answered.
	Destinations int
}

// Known reports whether there is an up or down verdict.
func (v Verdict) Known() bool { return v.State == StateUp || v.State == StateDown }

// Line is the one line `probe check` prints above its table while the
// uplink is down; empty otherwise.
func (v Verdict) Line() string {
	if v.State != StateDown {
		return ""
	}
	return "uplink down: " + v.Detail + "; the failures below are not port blocks"
}

// FromResults turns the results of checks into evidence, keeping only the
// kinds that connect out (not listen or broadcast) and results that ran.
func FromResults(rs []probe.Result) []Evidence {
	var out []Evidence
	for i := range rs {
		if e, ok := evidenceOf(&rs[i]); ok {
			out = append(out, e)
		}
	}
	return out
}

// evidenceOf is the evidence of r; ok is false when it is none (see
// FromResults).
func evidenceOf(r *probe.Result) (e Evidence, ok bool) {
	c := r.Check
	if c == nil || r.Reason == probe.ReasonSkipped || r.Reason == probe.ReasonInternalError {
		return Evidence{}, false
	}
	spec, err := probe.LookupKind(c.Kind)
	if err != nil || !spec.Outbound() {
		return Evidence{}, false
	}
	return Evidence{
		Host: c.Host, Address: r.Address, Family: r.IPFamily,
		Answered: r.Up && !silenceAccepted(r),
		Up:       r.Up, Reason: r.Reason, Detail: r.Detail, Path: r.Path,
	}, true
}

// silenceAccepted reports a UDP result that is up without any reply.
func silenceAccepted(r *probe.Result) bool {
	if !r.Check.GetUDP().AcceptSilence {
		return false
	}
	return r.Facts.UDPFacts == nil || r.Facts.UDPFacts.ReplyBytes == 0
}

// stop is how the traffic ended at a place.
type stop int

const (
	// stopSilent: the device at the place was the last to answer (time
	// exceeded), nothing beyond it did; or nothing answered at all.
	stopSilent stop = iota
	// stopNoRoute: the device said net/host unreachable (no route).
	stopNoRoute
	// stopRule: the device rejected this traffic by a rule (admin
	// prohibited, port unreachable): a port block, no uplink evidence.
	stopRule
	// stopOther: the path does not say how the traffic ended.
	stopOther
	// stopNoNeighbour: this host's ARP/NDP for the gateway went unanswered;
	// the traffic never reached it.
	stopNoNeighbour
)

// place is where one destination's traffic stopped.
type place struct {
	location probe.PathLocation
	hop      int
	address  string
	stop     stop
	icmp     string // what the device answered, for the detail
}

func (p place) key() string {
	return fmt.Sprintf("%s/%d/%s/%d", p.location, p.hop, p.address, p.stop)
}

// placeOf reads where a failed result's traffic stopped from its path; ok
// is false when the path is no uplink evidence (none, or this host).
func placeOf(e Evidence) (place, bool) {
	p := e.Path
	if p == nil {
		return place{}, false
	}
	switch p.Location {
	case probe.PathUnknown:
		return place{location: probe.PathUnknown, stop: stopSilent}, true
	case probe.PathGateway, probe.PathUpstream:
	default:
		return place{}, false // this_host, or a location this build does not know
	}
	pl := place{location: p.Location, hop: p.Hop, address: p.Address}
	if p.Location == probe.PathGateway && p.Address == "" {
		pl.stop = stopNoNeighbour
		return pl, true
	}
	for _, h := range p.Hops {
		if h.Hop == p.Hop && h.Address != "" {
			pl.icmp = h.ICMP
		}
	}
	pl.stop = stopOf(pl.icmp)
	if pl.stop == stopOther {
		// The trace did not name the answer: the check's own failure says
		// how it ended (a silent drop, or the device's ICMP in the detail).
		switch e.Reason {
		case probe.ReasonTimeout, probe.ReasonNoReply:
			pl.stop = stopSilent
		case probe.ReasonRejected, probe.ReasonUnreachable:
			if p.Address != "" && strings.Contains(e.Detail, p.Address) {
				pl.stop = stopOf(e.Detail)
			}
		}
	}
	return pl, true
}

// gatewaySaidNoRoute reports a failure whose own detail names this host's
// default gateway (of the result's family) answering net or host
// unreachable: the gateway, hop 1, has no route for it.
func gatewaySaidNoRoute(e Evidence, f *family) (place, bool) {
	if !f.hasGw || f.gateway.Address == "" || (e.Reason != probe.ReasonRejected && e.Reason != probe.ReasonUnreachable) {
		return place{}, false
	}
	if !strings.Contains(e.Detail, " from "+f.gateway.Address+",") || stopOf(e.Detail) != stopNoRoute {
		return place{}, false
	}
	return place{location: probe.PathGateway, hop: 1, address: f.gateway.Address, stop: stopNoRoute,
		icmp: icmpOf(e.Detail)}, true
}

// icmpOf is the ICMP message named in a probe's detail ("ICMP destination
// unreachable (net unreachable) from ..."), or the detail itself.
func icmpOf(detail string) string {
	if i := strings.Index(detail, " from "); i > 0 {
		return detail[:i]
	}
	return detail
}

// stopOf classifies an ICMP description (the trace's or the probe's).
func stopOf(icmp string) stop {
	s := strings.ToLower(icmp)
	switch {
	case s == "":
		return stopOther
	case strings.Contains(s, "time exceeded"):
		return stopSilent
	case strings.Contains(s, "prohibited"), strings.Contains(s, "port unreachable"),
		strings.Contains(s, "policy"), strings.Contains(s, "protocol unreachable"):
		return stopRule
	case strings.Contains(s, "net unreachable"), strings.Contains(s, "network unreachable"),
		strings.Contains(s, "host unreachable"), strings.Contains(s, "no route"),
		strings.Contains(s, "address unreachable"), strings.Contains(s, "reject route"),
		strings.Contains(s, "network unknown"), strings.Contains(s, "host unknown"):
		return stopNoRoute
	}
	return stopOther
}

// farthest is the highest hop of the path at which a device answered; 0
// when none did.
func farthest(p *probe.Path) int {
	if p == nil {
		return 0
	}
	n := 0
	if p.Address != "" {
		n = p.Hop
	}
	for _, h := range p.Hops {
		if h.Address != "" && h.Hop > n {
			n = h.Hop
		}
	}
	return n
}

// answeredBeyond lists reasons whose answer may have come from the target
// or another device beyond any place on the way: they are no sign of a line
// that stops before the target.
var answeredBeyond = []probe.Reason{
	probe.ReasonRefused, probe.ReasonProtocol, probe.ReasonTLSUntrusted, probe.ReasonTLSHostname,
	probe.ReasonTLSExpired, probe.ReasonTLSHandshake, probe.ReasonIntercepted,
}

// family is what the evidence of one address family shows.
type family struct {
	name      string
	places    map[string]place
	byPlace   map[string][]Evidence
	farthest  int      // highest hop any failure of the family saw answer
	farWhy    Evidence // the failure that saw it
	gateway   gateway.Gateway
	hasGw     bool
	evidences int
}

// Infer is the uplink verdict from the outbound evidence and what this
// host's tables say (its gateways, or why they are not known, and its own
// subnets). It is a pure function. Destinations on this host's own subnets
// never cross the gateway and are left out.
func Infer(all []Evidence, host gateway.Host) Verdict {
	// all, or the part of it before the first evidence on link, unless
	// evidence off link follows that: ev is only read, and a copy at every
	// scrape of 10,000 checks was 1 MB of garbage (issue 10).
	ev := all
	if i := slices.IndexFunc(all, func(e Evidence) bool { return onLink(e, host) }); i >= 0 {
		ev = all[:i]
		copied := false
		for _, e := range all[i+1:] {
			if onLink(e, host) {
				continue
			}
			if !copied {
				ev, copied = append(make([]Evidence, 0, len(all)-1), all[:i]...), true
			}
			ev = append(ev, e)
		}
	}
	return inferOffLink(ev, host)
}

// onLink reports evidence whose destination is on this host or its own
// subnets (see Infer).
func onLink(e Evidence, host gateway.Host) bool {
	return e.Address != "" && host.OnLink(e.Address)
}

// hostVerdict is the verdict before any evidence: what host says of the
// gateways.
func hostVerdict(host gateway.Host) Verdict {
	gws, gwErr := host.Gateways, host.Err
	v := Verdict{Gateways: slices.Clone(gws)}
	if gwErr != nil {
		v.Gateways, v.GatewayErr = nil, gwErr.Error()
	}
	if len(gws) > 0 && gwErr == nil {
		v.Gateway = gws[0].Address
	}
	return v
}

// upVerdict is v, up on answers from n destinations.
func upVerdict(v Verdict, n int) Verdict {
	v.State, v.Destinations = StateUp, n
	v.Detail = fmt.Sprintf("%d destination(s) answered", n)
	return v
}

// inferOffLink is Infer of evidence none of which is on link.
func inferOffLink(ev []Evidence, host gateway.Host) Verdict {
	gws, gwErr := host.Gateways, host.Err
	v := hostVerdict(host)
	if len(ev) == 0 {
		return v
	}

	// Up: an answer from any target.
	answered := map[string]bool{}
	for _, e := range ev {
		if e.Answered {
			answered[destKey(e)] = true
		}
	}
	if len(answered) > 0 {
		return upVerdict(v, len(answered))
	}
	if !slices.ContainsFunc(ev, func(e Evidence) bool { return !e.Up }) {
		v.State = StateUnknown
		v.Detail = "no outbound check failed, but none got an answer either: UDP checks that accept silence prove nothing of the line"
		return v
	}

	var beyond []Evidence
	fams := map[string]*family{}
	var order []string
	for _, e := range ev {
		if e.Up {
			continue
		}
		if slices.Contains(answeredBeyond, e.Reason) {
			beyond = append(beyond, e)
			continue
		}
		f := fams[e.Family]
		if f == nil {
			f = &family{name: e.Family, places: map[string]place{}, byPlace: map[string][]Evidence{}}
			if gwErr == nil {
				if g := gateway.Of(gws, e.Family); len(g) > 0 {
					f.gateway, f.hasGw = g[0], true
				}
			}
			fams[e.Family] = f
			order = append(order, e.Family)
		}
		if n := farthest(e.Path); n > f.farthest {
			f.farthest, f.farWhy = n, e
		}
		pl, ok := placeOf(e)
		if gp, byGw := gatewaySaidNoRoute(e, f); byGw && (!ok || pl.location == probe.PathUnknown) {
			// The trace saw nothing (the gateway's ICMP rate limit, say),
			// but the check's own failure names the gateway saying no route.
			pl, ok = gp, true
		}
		if !ok || pl.stop == stopRule || pl.stop == stopOther {
			continue // neutral: no path, this host, or a port block
		}
		f.evidences++
		f.places[pl.key()] = pl
		f.byPlace[pl.key()] = append(f.byPlace[pl.key()], e)
	}
	// IPv4 first, so that the verdict names the IPv4 place and gateway.
	slices.Sort(order)

	if len(beyond) > 0 {
		e := beyond[0]
		v.State = StateUnknown
		v.Detail = fmt.Sprintf("no outbound check succeeded, but %s answered something (%s): the line reaches beyond this site",
			destName(e), e.Reason)
		return v
	}

	if d, ok := noDefaultRoute(ev, gws, gwErr); ok {
		v.State, v.Location, v.Destinations = StateDown, probe.PathThisHost, d
		v.Detail = fmt.Sprintf("this host has no default route (no gateway): nothing can leave it (%d destinations unreachable)", d)
		return v
	}

	var downFams []*family
	for _, name := range order {
		f := fams[name]
		if f.evidences == 0 {
			continue // only failures without a path: neither way
		}
		if len(f.places) > 1 {
			// A trace that no hop answered at all saw nothing beyond any
			// place (routers also rate-limit their ICMP): it fits every
			// other place and decides nothing when there is one.
			for k, p := range f.places {
				if p.location == probe.PathUnknown {
					f.evidences -= len(f.byPlace[k])
					delete(f.places, k)
					delete(f.byPlace, k)
				}
			}
		}
		if len(f.places) > 1 {
			v.State = StateUnknown
			v.Detail = fmt.Sprintf("no outbound check succeeded, but over %s the failures stop at different places (%s): port blocks, not one line",
				familyName(name), describePlaces(f))
			return v
		}
		var pl place
		for _, p := range f.places {
			pl = p
		}
		if f.farthest > pl.hop {
			v.State = StateUnknown
			v.Detail = fmt.Sprintf("no outbound check succeeded, but the path to %s shows hop %d answering, beyond where the others stop (hop %d)",
				destName(f.farWhy), f.farthest, pl.hop)
			return v
		}
		downFams = append(downFams, f)
	}
	if len(downFams) == 0 {
		v.State = StateUnknown
		v.Detail = "no outbound check succeeded, but no failure was traced to a place on the way: nothing says where the traffic stops"
		return v
	}
	hosts, addrs := map[string]bool{}, map[string]bool{}
	for _, f := range downFams {
		for _, es := range f.byPlace {
			for _, e := range es {
				hosts[strings.ToLower(e.Host)] = true
				addrs[destKey(e)] = true
			}
		}
	}
	dests := min(len(hosts), len(addrs))
	first := downFams[0]
	var pl place
	for _, p := range first.places {
		pl = p
	}
	if dests < 2 {
		v.State = StateUnknown
		v.Detail = fmt.Sprintf("no outbound check succeeded, but only one destination (%s) was traced, to %s: one destination cannot tell the line from that destination",
			destName(first.byPlace[pl.key()][0]), describePlace(pl))
		return v
	}
	v.State, v.Destinations = StateDown, dests
	v.Location, v.Hop, v.Address = pl.location, pl.hop, pl.address
	if first.hasGw {
		v.Gateway = first.gateway.Address
		if ans, known := first.gateway.Answering(); pl.location == probe.PathUnknown && known && !ans && v.Gateway != "" {
			// No hop answered, and the neighbour table shows the gateway
			// not answering ARP/NDP either: observed, not guessed.
			v.Location, v.Hop, v.Address = probe.PathGateway, 1, v.Gateway
		}
	}
	if v.Gateway == "" && pl.location == probe.PathGateway {
		v.Gateway = pl.address
	}
	v.Detail = detailDown(v, pl, first)
	for _, f := range downFams[1:] {
		for _, p := range f.places {
			if p.location != pl.location || p.hop != pl.hop || p.stop != pl.stop {
				v.Detail += fmt.Sprintf("; over %s: %s", familyName(f.name), describePlace(p))
			}
		}
	}
	return v
}

// noDefaultRoute reports a host with no default route at all (the routing
// table was read) whose outbound checks to two or more destinations all
// failed as unreachable: its uplink is down on this host.
func noDefaultRoute(ev []Evidence, gws []gateway.Gateway, gwErr error) (int, bool) {
	if gwErr != nil || len(gws) > 0 {
		return 0, false
	}
	hosts, addrs := map[string]bool{}, map[string]bool{}
	for _, e := range ev {
		if e.Reason == probe.ReasonDNS {
			continue // no resolver reachable either, but a name says nothing of routes
		}
		if e.Reason != probe.ReasonUnreachable {
			return 0, false
		}
		hosts[strings.ToLower(e.Host)] = true
		addrs[destKey(e)] = true
	}
	d := min(len(hosts), len(addrs))
	return d, d >= 2
}

func detailDown(v Verdict, pl place, f *family) string {
	gw := v.Gateway
	if gw == "" {
		gw = "(not known)"
	}
	n := v.Destinations
	switch {
	case pl.location == probe.PathUnknown:
		if f.hasGw {
			if ans, known := f.gateway.Answering(); known && !ans {
				return fmt.Sprintf("your gateway %s does not answer (its ARP/NDP lookups fail); nothing answers on the way to %d destinations", gw, n)
			}
		}
		return fmt.Sprintf("nothing answers on the way to %d destinations, not even your gateway %s (no hop sent time exceeded)", n, gw)
	case pl.stop == stopNoNeighbour:
		return fmt.Sprintf("your gateway %s does not answer (this host's ARP/NDP lookups for it fail; %d destinations)", gw, n)
	case pl.location == probe.PathGateway && pl.stop == stopNoRoute:
		return fmt.Sprintf("your gateway %s has no route to the internet (it answers %s for %d destinations)", gw, quoteICMP(pl.icmp), n)
	case pl.location == probe.PathGateway:
		return fmt.Sprintf("your gateway %s answers, but nothing beyond it does (%d destinations)", gw, n)
	case pl.stop == stopNoRoute:
		return fmt.Sprintf("hop %d (%s), beyond your gateway %s, has no route to the internet (it answers %s for %d destinations)",
			pl.hop, pl.address, gw, quoteICMP(pl.icmp), n)
	}
	return fmt.Sprintf("nothing answers beyond hop %d (%s), beyond your gateway %s: the line or the provider's router (%d destinations)",
		pl.hop, pl.address, gw, n)
}

func quoteICMP(s string) string {
	if s == "" {
		return "unreachable"
	}
	return fmt.Sprintf("%q", s)
}

func describePlace(p place) string {
	switch {
	case p.location == probe.PathUnknown:
		return "no hop answering"
	case p.stop == stopNoNeighbour:
		return "the gateway not answering ARP/NDP"
	case p.stop == stopNoRoute:
		return fmt.Sprintf("hop %d (%s) answering %s", p.hop, p.address, quoteICMP(p.icmp))
	}
	return fmt.Sprintf("silence after hop %d (%s)", p.hop, p.address)
}

func describePlaces(f *family) string {
	var parts []string
	for k, p := range f.places {
		parts = append(parts, fmt.Sprintf("%s: %s", destName(f.byPlace[k][0]), describePlace(p)))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

func familyName(f string) string {
	switch f {
	case gateway.FamilyIPv4:
		return "IPv4"
	case gateway.FamilyIPv6:
		return "IPv6"
	}
	return "an unknown family"
}

// destKey identifies a destination: its address, else its name.
func destKey(e Evidence) string {
	if e.Address != "" {
		return e.Address
	}
	return strings.ToLower(e.Host)
}

func destName(e Evidence) string {
	if e.Address != "" && e.Address != e.Host {
		return e.Host + " (" + e.Address + ")"
	}
	return e.Host
}
