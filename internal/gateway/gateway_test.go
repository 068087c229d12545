package gateway

import (
	"fmt"
	"math/rand/v2"
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
	sn := []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24"), netip.MustParsePrefix("fd00:1::5/64")}
	// As a literal (every prefix tried) and as ReadHost builds it (indexed).
	for _, h := range []Host{{Subnets: sn}, {Subnets: sn, subnets: newPrefixSet(sn)}} {
		for addr, want := range map[string]bool{
			"192.168.1.10": true, "192.168.2.10": false, "203.0.113.1": false, "::ffff:192.168.1.10": true,
			"fd00:1::99": true, "fd00:2::1": false, "127.0.0.1": true, "::1": true, "fe80::1": true, "fe80::1%eth0": true,
			"": false, "not-an-ip": false, "2001:db8::1": false,
		} {
			if got := h.OnLink(addr); got != want {
				t.Errorf("OnLink(%q) = %v, want %v (indexed %v)", addr, got, want, h.subnets != nil)
			}
		}
	}
}

// TestPrefixSetAsContains: the index answers as netip.Prefix.Contains over
// every prefix, for prefixes of every length of both families (host routes,
// a default route, an IPv4-mapped IPv6 prefix, an unmasked one, the zero
// Prefix) and addresses in, next to and far from them.
func TestPrefixSetAsContains(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var ps []netip.Prefix
		var addrs []netip.Addr
		for range 1 + rnd.IntN(20) {
			var a netip.Addr
			if rnd.IntN(2) == 0 {
				a = netip.AddrFrom4([4]byte{10, byte(rnd.IntN(4)), byte(rnd.IntN(4)), byte(rnd.IntN(256))})
			} else {
				a = netip.AddrFrom16([16]byte{0xfd, 0, 0, byte(rnd.IntN(4)), 8: byte(rnd.IntN(4)), 15: byte(rnd.IntN(256))})
			}
			p, err := a.Prefix(rnd.IntN(a.BitLen() + 1))
			if err != nil {
				t.Fatal(err)
			}
			if rnd.IntN(2) == 0 {
				p = netip.PrefixFrom(a, p.Bits()) // not masked, as an interface address
			}
			ps = append(ps, p)
			addrs = append(addrs, a, a.Next(), a.Prev())
		}
		if round%10 == 0 {
			ps = append(ps, netip.Prefix{}, netip.MustParsePrefix("::ffff:10.0.0.0/104"))
		}
		if round%50 == 0 {
			ps = append(ps, netip.MustParsePrefix("0.0.0.0/0"))
		}
		addrs = append(addrs, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:10.0.0.1"))
		set := newPrefixSet(ps)
		for _, a := range addrs {
			want := slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
			if got := set.contains(a); got != want {
				t.Fatalf("round %d: %v in %v: %v, Contains says %v", round, a, ps, got, want)
			}
		}
	}
}

func TestSubnetsOfThisHost(t *testing.T) {
	// Every host has loopback: its prefix is read like any other.
	if !slices.ContainsFunc(subnets(), func(p netip.Prefix) bool { return p.Contains(netip.MustParseAddr("127.0.0.1")) }) {
		t.Errorf("subnets() = %v, want 127.0.0.0/8 among them", subnets())
	}
}

// BenchmarkOnLinkManyAddresses asks OnLink for 10,000 results' addresses on
// a host with 2,500 addresses on lo, as the side-by-side benchmark's scale
// phase: once per scrape, for the uplink verdict (38 ms every prefix tried).
//
//	go test ./internal/gateway/ -run '^$' -bench OnLinkMany
func BenchmarkOnLinkManyAddresses(b *testing.B) {
	sn := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}
	for i := 1; i <= 2500; i++ {
		sn = append(sn, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 201, byte(i / 256), byte(i)}), 32))
	}
	addrs := make([]string, 10000)
	for i := range addrs {
		h := i/4 + 1
		addrs[i] = fmt.Sprintf("10.201.%d.%d", h/256, h%256)
	}
	h := Host{Subnets: sn, subnets: newPrefixSet(sn)}
	for b.Loop() {
		for _, a := range addrs {
			if !h.OnLink(a) {
				b.Fatalf("%s not on link", a)
			}
		}
	}
}
