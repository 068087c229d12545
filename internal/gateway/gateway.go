// Package gateway reads this host's default gateways from its routing table
// and what the neighbour table says of them. It only reads kernel tables: it
// sends no packet. On systems where it cannot read them it says so
// (ErrUnsupported) and never guesses.
package gateway

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrUnsupported is returned where this build cannot read the routing table.
var ErrUnsupported = errors.New("reading the default gateway is only supported on Linux")

// Families of a gateway, spelled as probe results spell them.
const (
	FamilyIPv4 = "ipv4"
	FamilyIPv6 = "ipv6"
)

// Neighbour is what the neighbour table (ARP for IPv4, NDP for IPv6) says
// of a gateway. It is a public interface (JSON): extend, never rename.
type Neighbour string

// Neighbour states, folded from the kernel's NUD states.
const (
	// NeighbourReachable: the gateway answered ARP/NDP, or sent traffic
	// that confirmed it, within the last seconds (REACHABLE).
	NeighbourReachable Neighbour = "reachable"
	// NeighbourStale: its link-layer address is known, but not confirmed
	// lately (STALE, DELAY, PROBE). Says nothing of now.
	NeighbourStale Neighbour = "stale"
	// NeighbourFailed: the last ARP/NDP lookups went unanswered (FAILED).
	NeighbourFailed Neighbour = "failed"
	// NeighbourIncomplete: a lookup is under way (INCOMPLETE); no answer yet.
	NeighbourIncomplete Neighbour = "incomplete"
	// NeighbourStatic: a configured entry (PERMANENT, NOARP); never probed.
	NeighbourStatic Neighbour = "static"
	// NeighbourNone: no entry (nothing has talked to it lately), or a
	// point-to-point route without a gateway address.
	NeighbourNone Neighbour = "none"
)

// Gateway is one default route's next hop.
type Gateway struct {
	Family string // FamilyIPv4 or FamilyIPv6
	// Address of the gateway; empty for a point-to-point default route
	// (a PPP or tunnel device) that names no gateway.
	Address string
	// Interface the route leaves by ("eth0"); empty when unknown.
	Interface string
	// Metric is the route's priority (lower wins).
	Metric int
	// Neighbour is the gateway's neighbour-table state.
	Neighbour Neighbour
}

// Answering says whether the neighbour table shows the gateway answering:
// yes (reachable), no (its lookups failed), or unknown (stale, a lookup
// under way, static, no entry): none of those is proof either way.
func (g Gateway) Answering() (answering, known bool) {
	switch g.Neighbour {
	case NeighbourReachable:
		return true, true
	case NeighbourFailed:
		return false, true
	}
	return false, false
}

// String is the gateway for people: "192.168.1.1 (eth0)".
func (g Gateway) String() string {
	switch {
	case g.Address == "" && g.Interface == "":
		return "-"
	case g.Address == "":
		return "via " + g.Interface
	case g.Interface == "":
		return g.Address
	}
	return g.Address + " (" + g.Interface + ")"
}

// Of returns the gateways of one family, best (lowest metric) first.
func Of(gws []Gateway, family string) []Gateway {
	var out []Gateway
	for _, g := range gws {
		if g.Family == family {
			out = append(out, g)
		}
	}
	return out
}

// sortGateways orders IPv4 before IPv6, then by metric, then by address, so
// that the first gateway of a family is the one the kernel prefers.
func sortGateways(gws []Gateway) {
	slices.SortStableFunc(gws, func(a, b Gateway) int {
		if a.Family != b.Family {
			return strings.Compare(a.Family, b.Family)
		}
		if a.Metric != b.Metric {
			return a.Metric - b.Metric
		}
		return strings.Compare(a.Address, b.Address)
	})
}

// Host is what this host's tables say that the uplink verdict needs.
type Host struct {
	// Gateways are the default gateways, best first (IPv4 before IPv6).
	Gateways []Gateway
	// Err says why the gateways are not known (nil when they are: then no
	// gateway means no default route).
	Err error
	// Subnets are the prefixes of this host's own interface addresses.
	Subnets []netip.Prefix
	// subnets indexes Subnets for OnLink (ReadHost builds it); nil: OnLink
	// tries every prefix.
	subnets *prefixSet
}

// ReadHost reads the gateways and this host's subnets.
func ReadHost() Host {
	gws, err := Read()
	sn := subnets()
	return Host{Gateways: gws, Err: err, Subnets: sn, subnets: newPrefixSet(sn)}
}

// OnLink reports whether addr is on this host itself or on one of its own
// subnets (loopback, link-local, a LAN neighbour): traffic to it never
// crosses the gateway, so it says nothing about the uplink.
func (h Host) OnLink(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return true
	}
	if h.subnets != nil {
		return h.subnets.contains(a)
	}
	for _, p := range h.Subnets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// prefixSet answers "is an address in one of these prefixes" with one map
// lookup per distinct prefix length rather than a test of every prefix:
// the uplink verdict asks for every result at every scrape, and a host with
// thousands of addresses (the side-by-side benchmark's 2,500 on lo, say)
// made that 38 ms per scrape of 10,000 checks.
type prefixSet struct {
	masked       map[netip.Prefix]struct{}
	bits4, bits6 []int // the distinct prefix lengths of each family
}

func newPrefixSet(ps []netip.Prefix) *prefixSet {
	s := &prefixSet{masked: make(map[netip.Prefix]struct{}, len(ps))}
	for _, p := range ps {
		if !p.IsValid() {
			continue // Contains matches nothing with it
		}
		s.masked[p.Masked()] = struct{}{}
		lens := &s.bits6
		if p.Addr().Is4() {
			lens = &s.bits4
		}
		if !slices.Contains(*lens, p.Bits()) {
			*lens = append(*lens, p.Bits())
		}
	}
	return s
}

// contains reports whether a (unzoned) is in one of the prefixes, as
// netip.Prefix.Contains would: an IPv4 address only in IPv4 prefixes.
func (s *prefixSet) contains(a netip.Addr) bool {
	lens := s.bits6
	if a.Is4() {
		lens = s.bits4
	}
	for _, b := range lens {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := s.masked[p]; ok {
			return true
		}
	}
	return false
}

// subnets lists the prefixes of this host's interface addresses; none when
// they cannot be read.
func subnets() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, bits := n.Mask.Size()
		ip = ip.Unmap()
		if bits == 128 && ip.Is4() {
			ones -= 96 // an IPv4 address with a 16-byte mask
		}
		if p, err := ip.Prefix(ones); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Cache reads the host's tables at most once per TTL, for callers that ask often
// (every scrape, every status page view). Safe for concurrent use.
type Cache struct {
	ttl  time.Duration
	read func() Host
	now  func() time.Time

	mu   sync.Mutex
	at   time.Time
	host Host
}

// NewCache returns a cache over ReadHost.
func NewCache(ttl time.Duration) *Cache {
	return &Cache{ttl: ttl, read: ReadHost, now: time.Now}
}

// Get returns what was read within the last TTL, reading again when it is
// older. The slices are shared: read them, never modify them.
func (c *Cache) Get() Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.at.IsZero() || now.Sub(c.at) >= c.ttl {
		c.host = c.read()
		c.at = now
	}
	return c.host
}
