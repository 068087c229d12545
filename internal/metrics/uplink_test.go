package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/gateway"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/probe"
)

// TestUplinkMetrics follows the verdict the agent computes from the store
// through a scrape: absent before any outbound result and without a
// verdict, 1 while a target answers, 0 and the info series while down.
func TestUplinkMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := results.New()
	gws := []gateway.Gateway{{Family: gateway.FamilyIPv4, Address: "192.168.1.1", Interface: "eth0"}}
	src := uplink.Source{Store: store, Host: func() gateway.Host { return gateway.Host{Gateways: gws} }}
	if _, err := New(reg, store, nil, buildinfo.Info{}, WithUplink(src.Verdict)); err != nil {
		t.Fatal(err)
	}
	a := &probe.Check{Name: "a", Kind: "tls", Host: "a.example", Port: 443, Network: "tcp"}
	b := &probe.Check{Name: "b", Kind: "tcp", Host: "b.example", Port: 22, Network: "tcp"}
	local := &probe.Check{Name: "web", Kind: "listen", Host: "0.0.0.0", Port: 8080, Network: "tcp"}

	// Only a local check configured and run: no outbound check, no series.
	store.SetChecks([]*probe.Check{local})
	store.Put(local, []probe.Result{{Check: local, Up: true, Reason: probe.ReasonOK}})
	assertUplink(t, reg, -1, "")

	// Outbound checks configured but not run yet: still none.
	store.SetChecks([]*probe.Check{local, a, b})
	assertUplink(t, reg, -1, "")

	up := func(c *probe.Check, addr string) []probe.Result {
		return []probe.Result{{Check: c, Address: addr, IPFamily: "ipv4", Up: true, Reason: probe.ReasonOK}}
	}
	noRoute := func(c *probe.Check, addr string) []probe.Result {
		return []probe.Result{{Check: c, Address: addr, IPFamily: "ipv4", Reason: probe.ReasonRejected,
			Path: &probe.Path{Location: probe.PathGateway, Hop: 1, Address: "192.168.1.1",
				Hops: []probe.PathHop{{Hop: 1, Address: "192.168.1.1", ICMP: "net unreachable"}}}}}
	}
	store.Put(a, up(a, "203.0.113.1"))
	store.Put(b, noRoute(b, "203.0.113.2"))
	assertUplink(t, reg, 1, "")

	// One destination failing at the gateway: no verdict, no series.
	store.Put(a, []probe.Result{{Check: a, Address: "203.0.113.1", IPFamily: "ipv4", Reason: probe.ReasonTimeout}})
	assertUplink(t, reg, -1, "")

	// Two destinations stopping at the gateway: down.
	store.Put(a, noRoute(a, "203.0.113.1"))
	assertUplink(t, reg, 0, "gateway")
	if v, ok := value(t, reg, "connprobe_uplink_info", map[string]string{"location": "gateway", "gateway": "192.168.1.1"}); !ok || v != 1 {
		t.Errorf("connprobe_uplink_info{location=gateway,gateway=192.168.1.1} = %v (present %v), want 1", v, ok)
	}

	// Back up: the info series goes.
	store.Put(b, up(b, "203.0.113.2"))
	assertUplink(t, reg, 1, "")
}

// assertUplink checks connprobe_uplink_up (want -1: absent) and that
// connprobe_uplink_info exists exactly when location is set.
func assertUplink(t *testing.T, reg prometheus.Gatherer, want float64, location string) {
	t.Helper()
	v, ok := value(t, reg, "connprobe_uplink_up", nil)
	switch {
	case want < 0 && ok:
		t.Errorf("connprobe_uplink_up = %v, want absent", v)
	case want >= 0 && (!ok || v != want):
		t.Errorf("connprobe_uplink_up = %v (present %v), want %v", v, ok, want)
	}
	n := 0
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "connprobe_uplink_info" {
			for _, m := range mf.GetMetric() {
				n++
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "location" && lp.GetValue() != location {
						t.Errorf("connprobe_uplink_info location %q, want %q", lp.GetValue(), location)
					}
				}
			}
		}
	}
	if (location != "") != (n == 1) || n > 1 {
		t.Errorf("%d connprobe_uplink_info series, want %v", n, location != "")
	}
}
