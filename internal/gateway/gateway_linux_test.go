//go:build linux

package gateway_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/netlab"
)

// readIn reads the gateways of namespace ns.
func readIn(t *testing.T, lab *netlab.Lab, ns string) []gateway.Gateway {
	t.Helper()
	var gws []gateway.Gateway
	if err := lab.Do(ns, func() error {
		var err error
		gws, err = gateway.Read()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return gws
}

// send sends one datagram from the client towards the server, which makes
// the client resolve its gateway's link-layer address.
func send(t *testing.T, lab *netlab.Lab, to net.IP) {
	t.Helper()
	if err := lab.Do(lab.Client(), func() error {
		c, err := net.Dial("udp", net.JoinHostPort(to.String(), "9"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// waitNeighbour reads until the family's first gateway has state want, for
// at most 10s (a failing ARP lookup takes about 3s).
func waitNeighbour(t *testing.T, lab *netlab.Lab, family string, want gateway.Neighbour) gateway.Gateway {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		gws := gateway.Of(readIn(t, lab, lab.Client()), family)
		if len(gws) == 0 {
			t.Fatalf("no %s gateway", family)
		}
		if gws[0].Neighbour == want {
			return gws[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s gateway %+v: neighbour state never became %q", family, gws[0], want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReadLab(t *testing.T) {
	lab := netlab.New(t)

	gws := readIn(t, lab, lab.Client())
	if len(gws) != 2 {
		t.Fatalf("client gateways %+v, want one IPv4 and one IPv6", gws)
	}
	if g := gws[0]; g.Family != gateway.FamilyIPv4 || g.Address != lab.RouterClientSideIP().String() || g.Interface != netlab.ClientIf {
		t.Errorf("IPv4 gateway %+v, want %s on %s", g, lab.RouterClientSideIP(), netlab.ClientIf)
	}
	if g := gws[1]; g.Family != gateway.FamilyIPv6 || g.Address != lab.RouterClientSideIP6().String() || g.Interface != netlab.ClientIf {
		t.Errorf("IPv6 gateway %+v, want %s on %s", g, lab.RouterClientSideIP6(), netlab.ClientIf)
	}

	// Traffic through the gateway makes it reachable in the neighbour table.
	send(t, lab, lab.ServerIP())
	send(t, lab, lab.ServerIP6())
	waitNeighbour(t, lab, gateway.FamilyIPv4, gateway.NeighbourReachable)
	waitNeighbour(t, lab, gateway.FamilyIPv6, gateway.NeighbourReachable)

	// The gateway stops answering ARP: its lookups fail.
	lab.Exec(lab.Router(), "ip", "link", "set", netlab.RouterClientIf, "arp", "off")
	lab.Exec(lab.Client(), "ip", "neigh", "flush", "dev", netlab.ClientIf)
	send(t, lab, lab.ServerIP())
	g := waitNeighbour(t, lab, gateway.FamilyIPv4, gateway.NeighbourFailed)
	if ans, known := g.Answering(); ans || !known {
		t.Errorf("failed gateway: answering=%v known=%v", ans, known)
	}
}

func TestReadLabRoutes(t *testing.T) {
	lab := netlab.New(t)
	second := strings.Replace(lab.RouterClientSideIP().String(), ".1.1", ".1.3", 1)
	lab.Exec(lab.Router(), "ip", "addr", "add", second+"/24", "dev", netlab.RouterClientIf)

	// Multipath: both next hops are gateways.
	lab.Exec(lab.Client(), "ip", "route", "replace", "default",
		"nexthop", "via", lab.RouterClientSideIP().String(), "nexthop", "via", second)
	v4 := gateway.Of(readIn(t, lab, lab.Client()), gateway.FamilyIPv4)
	if len(v4) != 2 || v4[0].Address != lab.RouterClientSideIP().String() || v4[1].Address != second {
		t.Errorf("multipath gateways %+v, want %s and %s", v4, lab.RouterClientSideIP(), second)
	}

	// A blackhole default is no gateway; nor is a default route elsewhere
	// than in the main table.
	lab.Exec(lab.Client(), "ip", "route", "del", "default")
	lab.Exec(lab.Client(), "ip", "-6", "route", "del", "default")
	lab.Exec(lab.Client(), "ip", "route", "add", "blackhole", "default")
	lab.Exec(lab.Client(), "ip", "route", "add", "default", "via", lab.RouterClientSideIP().String(), "table", "100")
	if gws := readIn(t, lab, lab.Client()); len(gws) != 0 {
		t.Errorf("gateways %+v, want none", gws)
	}

	// A point-to-point default route names an interface and no address.
	lab.Exec(lab.Client(), "ip", "route", "del", "blackhole", "default")
	lab.Exec(lab.Client(), "ip", "route", "add", "default", "dev", netlab.ClientIf)
	gws := readIn(t, lab, lab.Client())
	if len(gws) != 1 || gws[0].Address != "" || gws[0].Interface != netlab.ClientIf || gws[0].Neighbour != gateway.NeighbourNone {
		t.Errorf("device route gateways %+v, want one via %s without address", gws, netlab.ClientIf)
	}
}
