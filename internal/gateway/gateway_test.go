package gateway

import (
	"fmt"
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
	c := &Cache{ttl: 10 * time.Second, now: func() time.Time { return now }, read: func() ([]Gateway, error) {
		reads++
		return []Gateway{{Family: FamilyIPv4, Address: fmt.Sprint("10.0.0.", reads)}}, nil
	}}
	for i := 0; i < 3; i++ {
		if gws, err := c.Get(); err != nil || gws[0].Address != "10.0.0.1" {
			t.Fatalf("get %d: %+v %v", i, gws, err)
		}
		now = now.Add(3 * time.Second)
	}
	now = now.Add(time.Second) // 10s after the first read
	if gws, _ := c.Get(); gws[0].Address != "10.0.0.2" || reads != 2 {
		t.Errorf("after the TTL: %+v after %d reads, want a second read", gws, reads)
	}
}
