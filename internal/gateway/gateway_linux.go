//go:build linux

package gateway

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Read returns this host's default gateways (IPv4 and IPv6) from the main
// routing table, with their neighbour-table state.
//
// It uses netlink (github.com/vishvananda/netlink, the library Docker and
// Kubernetes CNI plugins use) rather than /proc/net/route: that file has no
// IPv6, no multipath next hops and no neighbour states, and parsing
// rtnetlink messages by hand is what the library already does well.
func Read() ([]Gateway, error) {
	var gws []Gateway
	for _, fam := range []struct {
		nl   int
		name string
	}{{netlink.FAMILY_V4, FamilyIPv4}, {netlink.FAMILY_V6, FamilyIPv6}} {
		routes, err := netlink.RouteListFiltered(fam.nl, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("reading the %s routing table: %w", fam.name, err)
		}
		neigh, err := netlink.NeighList(0, fam.nl)
		if err != nil {
			return nil, fmt.Errorf("reading the %s neighbour table: %w", fam.name, err)
		}
		for _, r := range routes {
			if !isDefault(r) {
				continue
			}
			hops := []nextHop{{r.Gw, r.LinkIndex}}
			if len(r.MultiPath) > 0 {
				hops = hops[:0]
				for _, nh := range r.MultiPath {
					hops = append(hops, nextHop{nh.Gw, nh.LinkIndex})
				}
			}
			for _, h := range hops {
				gws = append(gws, Gateway{
					Family:    fam.name,
					Address:   ipString(h.gw),
					Interface: linkName(h.link),
					Metric:    r.Priority,
					Neighbour: neighbourOf(neigh, h),
				})
			}
		}
	}
	sortGateways(gws)
	return gws, nil
}

type nextHop struct {
	gw   net.IP
	link int
}

// isDefault reports a unicast route to everything (0.0.0.0/0, ::/0); the
// library leaves Dst nil or all-zero for it depending on the kernel.
func isDefault(r netlink.Route) bool {
	if r.Type != unix.RTN_UNICAST {
		return false // blackhole, unreachable, prohibit: no gateway
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0 && r.Dst.IP.IsUnspecified()
}

func ipString(ip net.IP) string {
	if ip == nil || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

func linkName(index int) string {
	if index <= 0 {
		return ""
	}
	if l, err := netlink.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return ""
}

func neighbourOf(table []netlink.Neigh, h nextHop) Neighbour {
	if h.gw == nil {
		return NeighbourNone
	}
	for _, n := range table {
		if n.IP.Equal(h.gw) && (h.link == 0 || n.LinkIndex == h.link) {
			return foldState(n.State)
		}
	}
	return NeighbourNone
}

// foldState folds a kernel NUD state into a Neighbour.
func foldState(state int) Neighbour {
	switch {
	case state&netlink.NUD_REACHABLE != 0:
		return NeighbourReachable
	case state&(netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0:
		return NeighbourStale
	case state&netlink.NUD_FAILED != 0:
		return NeighbourFailed
	case state&netlink.NUD_INCOMPLETE != 0:
		return NeighbourIncomplete
	case state&(netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0:
		return NeighbourStatic
	}
	return NeighbourNone
}
