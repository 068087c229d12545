package web

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// The demo site of the page tests and of docs/status-page.png: a shop whose
// line is down at the gateway (Clover fails), a LAN server that works
// (timeSensor), custom checks one of which has not run yet, a range with a
// few silent ports, a skipped essential check and a failed reload.
var (
	demoZone = time.FixedZone("CET", 3600)
	demoNow  = time.Date(2026, 12, 5, 14, 37, 0, 0, demoZone)
)

const demoReloadError = `connprobe.yml:12: unknown key "intervl" in check "printer" (did you mean "interval"?)`

// demoClock is a settable time source for the store.
type demoClock struct{ t time.Time }

func (c *demoClock) now() time.Time { return c.t }

type demoSite struct {
	store  *results.Store
	status AgentStatus
}

// Names of the demo checks, for order assertions.
const (
	demoFailHTTPS = "cloud-https"
	demoFailNTP   = "ntp"
	demoWarnHTTP  = "cloud-http"
	demoWarnRange = "pbx-rtp"
	demoPending   = "printer"
	demoSkipped   = "emv-udp"
	demoOK        = "nas-backup"
)

func newDemoSite(t *testing.T) *demoSite {
	t.Helper()
	clk := &demoClock{}
	store := results.NewWithClock(clk.now)

	gw := "192.168.1.1"
	https := &probe.Check{Profile: "clover", Name: demoFailHTTPS, Kind: "tls", Host: "api.clover.com", Port: 443,
		Network: "tcp", IPFamily: probe.FamilyIPv4, Essential: true,
		Meta: &probe.CheckMeta{Purpose: "the Clover cloud answers a TLS handshake on 443 with a trusted certificate"}}
	http := &probe.Check{Profile: "clover", Name: demoWarnHTTP, Kind: "tcp", Host: "api.clover.com", Port: 80,
		Network: "tcp", IPFamily: probe.FamilyIPv4}
	ntp := &probe.Check{Profile: "clover", Name: demoFailNTP, Kind: "ntp", Host: "time.clover.com", Port: 123,
		Network: "udp", IPFamily: probe.FamilyIPv4, Essential: true,
		Meta: &probe.CheckMeta{Purpose: "an NTP server answers with usable time"}}
	ts := &probe.Check{Profile: "timesensor-legal-365-client", Name: "server", Kind: "tcp", Host: "192.168.1.20", Port: 9050,
		Network: "tcp", IPFamily: probe.FamilyIPv4, Essential: true}
	nas := &probe.Check{Name: demoOK, Kind: "tcp", Host: "192.168.1.20", Port: 445, Network: "tcp",
		IPFamily: probe.FamilyIPv4, Essential: true}
	printer := &probe.Check{Name: demoPending, Kind: "tcp", Host: "192.168.1.30", Port: 9100, Network: "tcp",
		IPFamily: probe.FamilyIPv4, Essential: true}
	var rtp []*probe.Check
	for p := 10000; p < 10100; p++ {
		rtp = append(rtp, &probe.Check{Name: demoWarnRange, Kind: "udp", Host: "pbx.lan", Port: p, Network: "udp",
			IPFamily: probe.FamilyIPv4, Range: "10000-10099"})
	}
	checks := append([]*probe.Check{https, http, ntp, ts, nas, printer}, rtp...)
	store.SetChecks(checks)

	ok := func(c *probe.Check, addr string) []probe.Result {
		return []probe.Result{{Check: c, Address: addr, IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK, Phase: probe.PhaseConnect}}
	}
	gatewayPath := &probe.Path{Location: probe.PathGateway, Hop: 1, Address: gw, Rejected: true,
		Hops: []probe.PathHop{{Hop: 1, Address: gw, RTTSeconds: 0.0004, ICMP: "net unreachable"}}}
	rejected := []probe.Result{{Check: https, Address: "203.0.113.7", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRejected,
		Phase: probe.PhaseConnect, Detail: "ICMP destination unreachable (net unreachable) from " + gw + ", a device on the path",
		Path: gatewayPath}}
	noReply := []probe.Result{{Check: ntp, Address: "198.51.100.123", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonNoReply,
		Phase: probe.PhaseResponse, Detail: "no answer within 5s and no ICMP error",
		Path: &probe.Path{Location: probe.PathGateway, Hop: 1, Address: gw, Hops: []probe.PathHop{
			{Hop: 1, Address: gw, RTTSeconds: 0.0005, ICMP: "time exceeded"}, {Hop: 2}, {Hop: 3}}}}}
	timeout := []probe.Result{{Check: http, Address: "203.0.113.7", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTimeout,
		Phase: probe.PhaseConnect, Detail: "no answer to the connection attempt (packets dropped)"}}

	// Twenty minutes of history, one run a minute: the line went down at
	// 14:23.
	start := demoNow.Add(-20 * time.Minute)
	down := demoNow.Add(-14 * time.Minute)
	for i := range 20 {
		clk.t = start.Add(time.Duration(i)*time.Minute + time.Duration(i%7)*time.Second)
		if clk.t.Before(down) {
			store.Put(https, ok(https, "203.0.113.7"))
			store.Put(http, ok(http, "203.0.113.7"))
			store.Put(ntp, ok(ntp, "198.51.100.123"))
		} else {
			store.Put(https, rejected)
			store.Put(http, timeout)
			store.Put(ntp, noReply)
		}
		store.Put(ts, ok(ts, "192.168.1.20"))
		store.Put(nas, ok(nas, "192.168.1.20"))
		// A range is sampled: 5 ports a run.
		for j := range 5 {
			c := rtp[(i*5+j)%len(rtp)]
			if c.Port%40 == 7 || c.Port%40 == 8 {
				store.Put(c, []probe.Result{{Check: c, Address: "192.168.1.40", IPFamily: probe.FamilyIPv4,
					Reason: probe.ReasonNoReply, Phase: probe.PhaseResponse, Detail: "no answer within 2s and no ICMP error"}})
			} else {
				store.Put(c, ok(c, "192.168.1.40"))
			}
		}
	}
	return &demoSite{store: store, status: AgentStatus{
		ReloadError: demoReloadError,
		ReloadAt:    demoNow.Add(-3 * time.Minute),
		Skipped: []Skipped{{Profile: "clover", Check: demoSkipped, Essential: true,
			Detail: "set --param clover.emv_host=... (the payment processor's EMV endpoint)"}},
		Uplink: &Uplink{Up: false, Location: probe.PathGateway, Gateway: gw, Hop: 1, Address: gw,
			Detail: fmt.Sprintf("your gateway %s has no route to the internet (it answers \"net unreachable\" for 2 destinations)", gw)},
	}}
}

func (d *demoSite) handlerOptions() Options {
	return Options{
		Gatherer: prometheus.NewRegistry(), Store: d.store, Version: "1.4.0",
		Status: func() AgentStatus { return d.status }, Location: demoZone,
		Clock: func() time.Time { return demoNow },
	}
}

func (d *demoSite) server(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(d.handlerOptions()))
	t.Cleanup(srv.Close)
	return srv
}
