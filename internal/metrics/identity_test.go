package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connprobe/connprobe/probe"
)

func sipCheck(transport string) *probe.Check {
	return &probe.Check{Profile: "voip", Name: "trunk", Kind: "sip", Host: "sip.example", Port: 5060,
		Network: probe.NetworkOf(transport), Transport: transport, IPFamily: probe.FamilyIPv4,
		Essential: true, Interval: time.Minute}
}

func sipResult(c *probe.Check) []probe.Result {
	return []probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Up: true,
		Reason: probe.ReasonOK, Start: start, Duration: 20 * time.Millisecond}}
}

// sipSeries counts the series of the sip check in name by protocol label.
func sipSeries(t *testing.T, g prometheus.Gatherer, name string) map[string]int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range s.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["check"] == "trunk" {
				out[labels["protocol"]]++
			}
		}
	}
	return out
}

// TestTransportChangeLeavesNoStaleSeries is issue 11's stale-series defect:
// a sip check changed from udp to tcp kept its udp counters while it existed
// and its tcp counters after it was removed, because its identity left out
// the transport and pruning matched on ip_family only.
func TestTransportChangeLeavesNoStaleSeries(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil)
	other := tcpCheck()
	apply := func(cs ...*probe.Check) {
		store.SetChecks(cs)
		for _, c := range cs {
			store.Put(c, sipResult(c))
			m.Record(c, sipResult(c))
		}
	}

	apply(sipCheck("udp"), other)
	for _, name := range []string{"connprobe_check_runs_total", "connprobe_check_latency_seconds"} {
		if got := sipSeries(t, reg, name); got["udp"] == 0 || got["tcp"] != 0 {
			t.Fatalf("over udp, %s series by protocol: %v", name, got)
		}
	}

	apply(sipCheck("tcp"), other)
	for _, name := range []string{"connprobe_check_runs_total", "connprobe_check_latency_seconds"} {
		if got := sipSeries(t, reg, name); got["udp"] != 0 || got["tcp"] == 0 {
			t.Errorf("after the change to tcp, %s series by protocol: %v (want tcp only)", name, got)
		}
	}

	apply(other)
	for _, name := range []string{"connprobe_check_runs_total", "connprobe_check_latency_seconds"} {
		if got := sipSeries(t, reg, name); len(got) != 0 {
			t.Errorf("after removal, %s still has series of the sip check: %v", name, got)
		}
	}
	mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "db", "reason": "ok"}, 3)
}

// TestPruneSparesSharedLabels: sip over tls and over tcp are different checks
// with the same labels (protocol="tcp"); replacing one by the other must not
// reset the counters the new one has already recorded.
func TestPruneSparesSharedLabels(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil)
	tls := sipCheck("tls")
	store.SetChecks([]*probe.Check{tls})
	m.Record(tls, sipResult(tls))

	tcp := sipCheck("tcp")
	store.SetChecks([]*probe.Check{tcp})
	m.Record(tcp, sipResult(tcp))
	m.Record(tcp, sipResult(tcp))
	// The first scrape prunes the tls identity, whose series the tcp check
	// shares: the series stays, and so does every run counted in it.
	for range 2 {
		mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "trunk", "reason": "ok"}, 3)
		mustValue(t, reg, "connprobe_check_latency_seconds", map[string]string{"check": "trunk"}, 3)
	}
}
