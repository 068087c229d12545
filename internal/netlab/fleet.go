//go:build linux

package netlab

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// Fleet is a lab of many sites and one centre, as an MSP or a chain sees
// them: every site is a LAN behind a NAT router, all sites use the same
// private subnet (as real shops do), and the centre cannot reach any site.
//
//	site i host eth0 192.168.1.2/24 ── eth0 192.168.1.1 router i eth1 10.N.(100+i).2 ── 10.N.(100+i).1 centre
//
// The centre (the "internet" and the central store in one namespace) has one
// link per site and two service addresses on its loopback, CentreIP(0) and
// CentreIP(1) (10.N.0.1, 10.N.0.2), reachable from every site. A site router
// masquerades what leaves its WAN link; the centre has no route to
// 192.168.1.0/24. IPv4 only.
//
// The embedded Lab's methods that take a namespace name (Exec, IPTables,
// Start, Do, ListenTCP, StartChronyd, ...) work on the fleet's namespaces.
type Fleet struct {
	*Lab
	centre  string
	sites   []string
	routers []string
}

// Interface names of a fleet lab.
const (
	// FleetSiteIf is a site host's interface, and its router's LAN side.
	FleetSiteIf = "eth0"
	// FleetWANIf is a site router's interface towards the centre.
	FleetWANIf = "eth1"
)

// NewFleet builds a fleet lab with n sites (1 to 50) and registers its
// teardown with t.Cleanup; it skips like New.
func NewFleet(t testing.TB, n int) *Fleet {
	t.Helper()
	if n < 1 || n > 50 {
		t.Fatalf("netlab: NewFleet with %d sites; 1 to 50", n)
	}
	f := &Fleet{Lab: newBareLab(t)}
	id := f.id
	f.centre = "nl" + id + "x"
	for i := 1; i <= n; i++ {
		f.sites = append(f.sites, fmt.Sprintf("nl%s%dh", id, i))
		f.routers = append(f.routers, fmt.Sprintf("nl%s%dr", id, i))
	}
	addNamespaces(t, append(append([]string{f.centre}, f.sites...), f.routers...))
	for _, ns := range f.routers {
		f.mustDo(ns, func() error { return writeSysctl("net/ipv4/ip_forward", "1") })
	}
	nn := f.net
	steps := [][]string{
		{"-n", f.centre, "link", "set", "lo", "up"},
		{"-n", f.centre, "addr", "add", f.CentreIP(0).String() + "/32", "dev", "lo"},
		{"-n", f.centre, "addr", "add", f.CentreIP(1).String() + "/32", "dev", "lo"},
	}
	for i := range n {
		site, router := f.sites[i], f.routers[i]
		cif := fmt.Sprintf("site%d", i+1)
		steps = append(steps,
			[]string{"-n", site, "link", "add", FleetSiteIf, "type", "veth", "peer", "name", FleetSiteIf, "netns", router},
			[]string{"-n", router, "link", "add", FleetWANIf, "type", "veth", "peer", "name", cif, "netns", f.centre},
			[]string{"-n", site, "addr", "add", "192.168.1.2/24", "dev", FleetSiteIf},
			[]string{"-n", router, "addr", "add", "192.168.1.1/24", "dev", FleetSiteIf},
			[]string{"-n", router, "addr", "add", fmt.Sprintf("10.%d.%d.2/24", nn, 100+i+1), "dev", FleetWANIf},
			[]string{"-n", f.centre, "addr", "add", fmt.Sprintf("10.%d.%d.1/24", nn, 100+i+1), "dev", cif},
			[]string{"-n", site, "link", "set", "lo", "up"},
			[]string{"-n", router, "link", "set", "lo", "up"},
			[]string{"-n", site, "link", "set", FleetSiteIf, "up"},
			[]string{"-n", router, "link", "set", FleetSiteIf, "up"},
			[]string{"-n", router, "link", "set", FleetWANIf, "up"},
			[]string{"-n", f.centre, "link", "set", cif, "up"},
			[]string{"-n", site, "route", "add", "default", "via", "192.168.1.1"},
			[]string{"-n", router, "route", "add", "default", "via", fmt.Sprintf("10.%d.%d.1", nn, 100+i+1)},
		)
	}
	for _, s := range steps {
		if out, err := runCmd(nil, "ip", s...); err != nil {
			t.Fatalf("netlab: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	for _, r := range f.routers {
		f.IPTables(r, "-t", "nat", "-A", "POSTROUTING", "-o", FleetWANIf, "-j", "MASQUERADE")
	}
	return f
}

// Centre names the centre's namespace.
func (f *Fleet) Centre() string { return f.centre }

// Sites is the number of sites.
func (f *Fleet) Sites() int { return len(f.sites) }

// Site names site i's host namespace (0-based).
func (f *Fleet) Site(i int) string { return f.sites[i] }

// SiteRouter names site i's NAT router namespace (0-based).
func (f *Fleet) SiteRouter(i int) string { return f.routers[i] }

// CentreIP is one of the centre's two service addresses (k 0 or 1).
func (f *Fleet) CentreIP(k int) net.IP {
	return net.IPv4(10, f.net, 0, byte(k+1)).To4()
}

// SiteIP is every site host's own (private) address.
func (f *Fleet) SiteIP() net.IP { return net.IPv4(192, 168, 1, 2).To4() }

// SiteWANIP is the address site i's router masquerades to (0-based).
func (f *Fleet) SiteWANIP(i int) net.IP {
	return net.IPv4(10, f.net, byte(100+i+1), 2).To4()
}
