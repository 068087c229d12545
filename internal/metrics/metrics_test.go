package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

func newTestMetrics(t *testing.T, overruns func(string) uint64, opts ...Option) (*prometheus.Registry, *results.Store, *Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	store := results.New()
	m, err := New(reg, store, overruns, buildinfo.Info{Version: "1.2.3", Revision: "abc", GoVersion: "go1.26"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return reg, store, m
}

func tlsCheck() *probe.Check {
	return &probe.Check{Profile: "m365", Name: "outlook", Kind: "tls", Host: "outlook.example", Port: 443,
		Network: "tcp", IPFamily: probe.FamilyBoth, Essential: true, Interval: time.Minute}
}

func tcpCheck() *probe.Check {
	return &probe.Check{Name: "db", Kind: "tcp", Host: "db.example", Port: 5432, Network: "tcp", Interval: time.Minute}
}

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func okTLSResult(c *probe.Check) probe.Result {
	return probe.Result{
		Check: c, Address: "192.0.2.10", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Phase: probe.PhaseTLS, Start: start, Duration: 120 * time.Millisecond,
		Timings: []probe.Timing{
			{Phase: probe.PhaseDNS, Duration: 10 * time.Millisecond, Seconds: 0.01},
			{Phase: probe.PhaseConnect, Duration: 30 * time.Millisecond, Seconds: 0.03},
			{Phase: probe.PhaseTLS, Duration: 80 * time.Millisecond, Seconds: 0.08},
		},
		Facts: probe.Facts{TLSFacts: &probe.TLSFacts{
			Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256",
			NotAfter: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), HandshakeSeconds: 0.08,
		}},
	}
}

// value returns the value of the one series of name whose labels include want.
func value(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			return metricValue(m), true
		}
	}
	return 0, false
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func mustValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(t, reg, name, labels)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestResultGaugesFromStore(t *testing.T) {
	reg, store, m := newTestMetrics(t, func(id string) uint64 { return 7 }, WithPhases(), WithTLSDetails())
	c := tlsCheck()
	store.SetChecks([]*probe.Check{c})
	rs := []probe.Result{okTLSResult(c)}
	store.Put(c, rs)
	m.Record(c, rs)

	v4 := map[string]string{"profile": "m365", "check": "outlook", "kind": "tls", "host": "outlook.example",
		"port": "443", "protocol": "tcp", "ip_family": "ipv4"}
	with := func(k, v string) map[string]string {
		out := map[string]string{k: v}
		for kk, vv := range v4 {
			out[kk] = vv
		}
		return out
	}
	mustValue(t, reg, "connprobe_check_up", v4, 1)
	mustValue(t, reg, "connprobe_check_reason", with("reason", "ok"), 1)
	mustValue(t, reg, "connprobe_check_duration_seconds", v4, 0.12)
	mustValue(t, reg, "connprobe_check_last_run_timestamp_seconds", v4, float64(start.Unix()))
	mustValue(t, reg, "connprobe_check_phase_duration_seconds", with("phase", "connect"), 0.03)
	mustValue(t, reg, "connprobe_check_phase_duration_seconds", with("phase", "tls"), 0.08)
	mustValue(t, reg, "connprobe_check_runs_total", with("reason", "ok"), 1)
	mustValue(t, reg, "connprobe_check_latency_seconds", v4, 1)
	mustValue(t, reg, "connprobe_tls_cert_not_after_timestamp_seconds", v4, float64(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Unix()))
	mustValue(t, reg, "connprobe_tls_version_info", map[string]string{"version": "TLS 1.3", "cipher": "TLS_AES_128_GCM_SHA256"}, 1)
	mustValue(t, reg, "connprobe_tls_handshake_seconds", v4, 0.08)
	mustValue(t, reg, "connprobe_check_essential", map[string]string{"check": "outlook"}, 1)
	mustValue(t, reg, "connprobe_check_overruns_total", map[string]string{"check": "outlook"}, 7)
	mustValue(t, reg, "connprobe_checks_configured", nil, 1)
	mustValue(t, reg, "connprobe_build_info", map[string]string{"version": "1.2.3", "revision": "abc", "goversion": "go1.26"}, 1)

	if n := testutil.CollectAndCount(m, "connprobe_check_reason"); n != 1 {
		t.Errorf("%d reason series for one result, want only the current one", n)
	}
	if _, ok := value(t, reg, "connprobe_check_essential", map[string]string{"ip_family": "ipv4"}); ok {
		t.Error("connprobe_check_essential carries ip_family; it describes the check, not a result")
	}
}

// TestTLSDefaultShape: by default a TLS check exports its certificate's
// expiry and its run's duration, not the phases, version or handshake time
// (WithPhases, WithTLSDetails).
func TestTLSDefaultShape(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil)
	c := tlsCheck()
	store.SetChecks([]*probe.Check{c})
	rs := []probe.Result{okTLSResult(c)}
	store.Put(c, rs)
	m.Record(c, rs)
	v4 := map[string]string{"check": "outlook", "ip_family": "ipv4"}
	mustValue(t, reg, "connprobe_check_duration_seconds", v4, 0.12)
	mustValue(t, reg, "connprobe_tls_cert_not_after_timestamp_seconds", v4, float64(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC).Unix()))
	for _, name := range []string{"connprobe_check_phase_duration_seconds", "connprobe_tls_version_info", "connprobe_tls_handshake_seconds"} {
		if _, ok := value(t, reg, name, v4); ok {
			t.Errorf("%s exported in the default shape", name)
		}
	}
}

// TestReasonFollowsTheVerdict: by default only the current reason is
// exported (value 1); with WithAllReasons every reason is, the former
// reason going to 0. Counters keep every reason either way.
func TestReasonFollowsTheVerdict(t *testing.T) {
	for _, all := range []bool{false, true} {
		var opts []Option
		if all {
			opts = append(opts, WithAllReasons())
		}
		reg, store, m := newTestMetrics(t, nil, opts...)
		c := tcpCheck()
		store.SetChecks([]*probe.Check{c})
		fail := []probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused,
			Phase: probe.PhaseConnect, Start: start, Duration: time.Millisecond}}
		store.Put(c, fail)
		m.Record(c, fail)
		mustValue(t, reg, "connprobe_check_up", map[string]string{"check": "db"}, 0)
		mustValue(t, reg, "connprobe_check_reason", map[string]string{"check": "db", "reason": "refused"}, 1)
		mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "db", "reason": "refused"}, 1)
		mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "db", "reason": "ok"}, 0)
		mustValue(t, reg, "connprobe_check_latency_seconds", map[string]string{"check": "db"}, 0)

		ok := []probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
			Phase: probe.PhaseConnect, Start: start.Add(time.Minute), Duration: 2 * time.Millisecond}}
		store.Put(c, ok)
		m.Record(c, ok)
		mustValue(t, reg, "connprobe_check_up", map[string]string{"check": "db"}, 1)
		mustValue(t, reg, "connprobe_check_reason", map[string]string{"check": "db", "reason": "ok"}, 1)
		mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "db", "reason": "refused"}, 1)
		mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "db", "reason": "ok"}, 1)
		n := testutil.CollectAndCount(m, "connprobe_check_reason")
		if all {
			mustValue(t, reg, "connprobe_check_reason", map[string]string{"check": "db", "reason": "refused"}, 0)
			if n != len(probe.Reasons()) {
				t.Errorf("all reasons: %d reason series, want one per reason (%d)", n, len(probe.Reasons()))
			}
		} else {
			if _, found := value(t, reg, "connprobe_check_reason", map[string]string{"check": "db", "reason": "refused"}); found {
				t.Error("the former reason is still exported")
			}
			if n != 1 {
				t.Errorf("%d reason series, want only the current one", n)
			}
		}
	}
}

func TestDNSFailureHasFamilyButNoAddress(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil)
	c := tcpCheck()
	store.SetChecks([]*probe.Check{c})
	rs := []probe.Result{
		{Check: c, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonDNS, Phase: probe.PhaseDNS, Start: start},
		{Check: c, IPFamily: probe.FamilyIPv6, Reason: probe.ReasonDNS, Phase: probe.PhaseDNS, Start: start},
	}
	store.Put(c, rs)
	m.Record(c, rs)
	for _, fam := range []string{"ipv4", "ipv6"} {
		mustValue(t, reg, "connprobe_check_up", map[string]string{"check": "db", "ip_family": fam}, 0)
		mustValue(t, reg, "connprobe_check_reason", map[string]string{"ip_family": fam, "reason": "dns"}, 1)
	}
}

func TestPendingCheckExposesOnlyEssential(t *testing.T) {
	reg, store, _ := newTestMetrics(t, func(string) uint64 { return 0 })
	store.SetChecks([]*probe.Check{tcpCheck()})
	mustValue(t, reg, "connprobe_check_essential", map[string]string{"check": "db"}, 0)
	mustValue(t, reg, "connprobe_checks_configured", nil, 1)
	for _, name := range []string{"connprobe_check_up", "connprobe_check_reason", "connprobe_check_runs_total"} {
		if _, ok := value(t, reg, name, map[string]string{"check": "db"}); ok {
			t.Errorf("%s exported for a check that has not run", name)
		}
	}
}

func TestRemovedCheckVanishes(t *testing.T) {
	reg, store, m := newTestMetrics(t, func(string) uint64 { return 1 })
	a, b := tlsCheck(), tcpCheck()
	store.SetChecks([]*probe.Check{a, b})
	for _, c := range []*probe.Check{a, b} {
		rs := []probe.Result{okTLSResult(c)}
		store.Put(c, rs)
		m.Record(c, rs)
	}
	mustValue(t, reg, "connprobe_check_runs_total", map[string]string{"check": "db", "reason": "ok"}, 1)

	store.SetChecks([]*probe.Check{a})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "check" && lp.GetValue() == "db" {
					t.Errorf("%s still has a series of the removed check", mf.GetName())
				}
			}
		}
	}
	mustValue(t, reg, "connprobe_check_up", map[string]string{"check": "outlook"}, 1)
	mustValue(t, reg, "connprobe_checks_configured", nil, 1)
}

func TestReloadResult(t *testing.T) {
	reg, _, m := newTestMetrics(t, nil)
	m.ReloadResult(true)
	mustValue(t, reg, "connprobe_config_last_reload_successful", nil, 1)
	ts, _ := value(t, reg, "connprobe_config_last_reload_success_timestamp_seconds", nil)
	if ts < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("reload success timestamp %v is not recent", ts)
	}
	m.ReloadResult(false)
	mustValue(t, reg, "connprobe_config_last_reload_successful", nil, 0)
	mustValue(t, reg, "connprobe_config_last_reload_success_timestamp_seconds", nil, ts)
}

func TestSetSkipped(t *testing.T) {
	reg, _, m := newTestMetrics(t, nil)
	mustValue(t, reg, "connprobe_checks_skipped", nil, 0)
	m.SetSkipped(3)
	mustValue(t, reg, "connprobe_checks_skipped", nil, 3)
}

func TestLint(t *testing.T) {
	reg, store, m := newTestMetrics(t, func(string) uint64 { return 0 })
	a, b := tlsCheck(), tcpCheck()
	store.SetChecks([]*probe.Check{a, b})
	rs := []probe.Result{okTLSResult(a), {Check: a, IPFamily: probe.FamilyIPv6, Reason: probe.ReasonTimeout,
		Phase: probe.PhaseConnect, Start: start, Duration: 5 * time.Second}}
	store.Put(a, rs)
	m.Record(a, rs)
	m.ReloadResult(true)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	// Every metric name is in our namespace.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "connprobe_") {
			t.Errorf("metric %s outside the connprobe_ namespace", mf.GetName())
		}
	}
}

func TestNewRegistryHasRuntimeCollectors(t *testing.T) {
	reg := NewRegistry()
	if _, err := New(reg, results.New(), nil, buildinfo.Get()); err != nil {
		t.Fatal(err)
	}
	if _, ok := value(t, reg, "go_goroutines", nil); !ok {
		t.Error("go collector missing")
	}
}

// A failing, traced check exports where its traffic stopped; once it is up
// (or failing without a path), the path series are gone.
func TestPathSeriesOnlyWhileFailingAndTraced(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil)
	c := tcpCheck()
	store.SetChecks([]*probe.Check{c})
	put := func(rs []probe.Result) {
		store.Put(c, rs)
		m.Record(c, rs)
	}
	path := &probe.Path{Location: probe.PathUpstream, Hop: 2, Address: "198.51.100.9",
		Hops: []probe.PathHop{{Hop: 1, Address: "192.168.1.1"}, {Hop: 2, Address: "198.51.100.9"}, {Hop: 3}}}
	put([]probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTimeout,
		Phase: probe.PhaseConnect, Start: start, Path: path}})
	mustValue(t, reg, "connprobe_check_path_hop", map[string]string{"check": "db", "ip_family": "ipv4"}, 2)
	mustValue(t, reg, "connprobe_check_path_info", map[string]string{"check": "db", "location": "upstream", "address": "198.51.100.9"}, 1)
	if n := testutil.CollectAndCount(m, "connprobe_check_path_info"); n != 1 {
		t.Errorf("%d path_info series, want 1", n)
	}

	thisHost := &probe.Path{Location: probe.PathThisHost, Hop: 0, Address: "192.0.2.100"}
	put([]probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonLocal,
		Phase: probe.PhaseConnect, Start: start, Path: thisHost}})
	mustValue(t, reg, "connprobe_check_path_hop", map[string]string{"check": "db"}, 0)
	mustValue(t, reg, "connprobe_check_path_info", map[string]string{"check": "db", "location": "this_host"}, 1)
	if n := testutil.CollectAndCount(m, "connprobe_check_path_info"); n != 1 {
		t.Errorf("%d path_info series after the location changed, want 1", n)
	}

	put([]probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Phase: probe.PhaseConnect, Start: start}})
	for _, name := range []string{"connprobe_check_path_hop", "connprobe_check_path_info"} {
		if n := testutil.CollectAndCount(m, name); n != 0 {
			t.Errorf("%d %s series while up, want none", n, name)
		}
	}
	put([]probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused,
		Phase: probe.PhaseConnect, Start: start}})
	if n := testutil.CollectAndCount(m, "connprobe_check_path_hop"); n != 0 {
		t.Errorf("%d path_hop series for an untraced failure, want none", n)
	}
}
