package gateway

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestAnswering(t *testing.T) {
	for n, want := range map[Neighbour][2]bool{
		NeighbourReachable:  {true, true},
		NeighbourFailed:     {false, true},
		NeighbourStale:      {false, false},
		NeighbourIncomplete: {false, false},
		NeighbourStatic:     {false, false},
		NeighbourNone:       {false, false},
		"":                  {false, false},
	} {
		ans, known := Gateway{Neighbour: n}.Answering()
		if ans != want[0] || known != want[1] {
			t.Errorf("%q: answering=%v known=%v, want %v", n, ans, known, want)
		}
	}
}

func TestStringAndOf(t *testing.T) {
	gws := []Gateway{
		{Family: FamilyIPv6, Address: "fe80::1", Interface: "eth0", Metric: 100},
		{Family: FamilyIPv4, Address: "192.168.1.254", Interface: "wlan0", Metric: 600},
		{Family: FamilyIPv4, Address: "192.168.1.1", Interface: "eth0", Metric: 100},
		{Family: FamilyIPv4, Interface: "ppp0", Metric: 100},
	}
	sortGateways(gws)
	var got []string
	for _, g := range gws {
		got = append(got, g.String())
	}
	want := []string{"via ppp0", "192.168.1.1 (eth0)", "192.168.1.254 (wlan0)", "fe80::1 (eth0)"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted: %q, want %q", got, want)
	}
	if v6 := Of(gws, FamilyIPv6); len(v6) != 1 || v6[0].Address != "fe80::1" {
		t.Errorf("Of ipv6: %+v", v6)
	}
	if (Gateway{}).String() != "-" || (Gateway{Address: "10.0.0.1"}).String() != "10.0.0.1" {
		t.Error("String of partial gateways")
	}
}

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	reads := 0
	c := &Cache{ttl: 10 * time.Second, now: func() time.Time { return now }, read: func() Host {
		reads++
		return Host{Gateways: []Gateway{{Family: FamilyIPv4, Address: fmt.Sprint("10.0.0.", reads)}}}
	}}
	for i := 0; i < 3; i++ {
		if h := c.Get(); h.Err != nil || h.Gateways[0].Address != "10.0.0.1" {
			t.Fatalf("get %d: %+v", i, h)
		}
		now = now.Add(3 * time.Second)
	}
	now = now.Add(time.Second) // 10s after the first read
	if h := c.Get(); h.Gateways[0].Address != "10.0.0.2" || reads != 2 {
		t.Errorf("after the TTL: %+v after %d reads, want a second read", h, reads)
	}
}

func TestOnLink(t *testing.T) {
	h := Host{Subnets: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24"), netip.MustParsePrefix("fd00:1::5/64")}}
	for addr, want := range map[string]bool{
		"192.168.1.10": true, "192.168.2.10": false, "203.0.113.1": false, "::ffff:192.168.1.10": true,
		"fd00:1::99": true, "fd00:2::1": false, "127.0.0.1": true, "::1": true, "fe80::1": true, "fe80::1%eth0": true,
		"": false, "not-an-ip": false, "2001:db8::1": false,
	} {
		if got := h.OnLink(addr); got != want {
			t.Errorf("OnLink(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestSubnetsOfThisHost(t *testing.T) {
	// Every host has loopback: its prefix is read like any other.
	if !slices.ContainsFunc(subnets(), func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr("127.0.0.1")) }) {
		t.Errorf("subnets() = %v, want 127.0.0.0/8 among them", subnets())
	}
}
