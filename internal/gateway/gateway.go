// Package gateway reads this host's default gateways from its routing table
// and what the neighbour table says of them. It only reads kernel tables: it
// sends no packet. On systems where it cannot read them it says so
// (ErrUnsupported) and never guesses.
package gateway

import (
	"errors"
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

// Cache reads the gateways at most once per TTL, for callers that ask often
// (every scrape, every status page view). Safe for concurrent use.
type Cache struct {
	ttl  time.Duration
	read func() ([]Gateway, error)
	now  func() time.Time

	mu  sync.Mutex
	at  time.Time
	gws []Gateway
	err error
}

// NewCache returns a cache over Read.
func NewCache(ttl time.Duration) *Cache {
	return &Cache{ttl: ttl, read: Read, now: time.Now}
}

// Get returns the gateways read within the last TTL, reading them again
// when they are older. The slice is shared: read it, never modify it.
func (c *Cache) Get() ([]Gateway, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.at.IsZero() || now.Sub(c.at) >= c.ttl {
		c.gws, c.err = c.read()
		c.at = now
	}
	return c.gws, c.err
}
