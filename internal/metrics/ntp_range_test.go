package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

func ntpCheck() *probe.Check {
	return &probe.Check{Name: "time", Kind: "ntp", Host: "ntp.example", Port: 123, Network: "udp",
		IPFamily: probe.FamilyBoth, Interval: 64 * time.Second}
}

func lintClean(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestNTPFactsAreSeparateSeries(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil, WithNTPDetails())
	c := ntpCheck()
	store.SetChecks([]*probe.Check{c})
	rs := []probe.Result{
		{Check: c, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
			Phase: probe.PhaseResponse, Start: start, Duration: 20 * time.Millisecond,
			Facts: probe.Facts{NTPFacts: &probe.NTPFacts{Reachable: true, Usable: true, OffsetSeconds: -0.0042,
				RTTSeconds: 0.018, Stratum: 2, RootDistanceSeconds: 0.03}}},
		// Reachable, not usable: a kiss-o'-death the server chose freely.
		{Check: c, Address: "2001:db8::1", IPFamily: probe.FamilyIPv6, Reason: probe.ReasonProtocol,
			Phase: probe.PhaseResponse, Start: start,
			Facts: probe.Facts{NTPFacts: &probe.NTPFacts{Reachable: true, KissCode: "XY\x00Z", Leap: 3}}},
	}
	store.Put(c, rs)
	m.Record(c, rs)
	v4 := map[string]string{"check": "time", "ip_family": "ipv4"}
	v6 := map[string]string{"check": "time", "ip_family": "ipv6"}
	mustValue(t, reg, "connprobe_ntp_reachable", v4, 1)
	mustValue(t, reg, "connprobe_ntp_usable", v4, 1)
	mustValue(t, reg, "connprobe_ntp_offset_seconds", v4, -0.0042)
	mustValue(t, reg, "connprobe_ntp_rtt_seconds", v4, 0.018)
	mustValue(t, reg, "connprobe_ntp_stratum", v4, 2)
	mustValue(t, reg, "connprobe_ntp_root_distance_seconds", v4, 0.03)
	mustValue(t, reg, "connprobe_ntp_leap", v4, 0)
	mustValue(t, reg, "connprobe_ntp_kiss_code_info", map[string]string{"ip_family": "ipv4", "kiss_code": "none"}, 1)
	mustValue(t, reg, "connprobe_ntp_reachable", v6, 1)
	mustValue(t, reg, "connprobe_ntp_usable", v6, 0)
	mustValue(t, reg, "connprobe_ntp_leap", v6, 3)
	mustValue(t, reg, "connprobe_ntp_kiss_code_info", map[string]string{"ip_family": "ipv6", "kiss_code": "other"}, 1)

	// Known codes keep their name; a reply that never came has no measurements.
	deny := []probe.Result{
		{Check: c, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonProtocol, Start: start,
			Facts: probe.Facts{NTPFacts: &probe.NTPFacts{Reachable: true, KissCode: "DENY"}}},
		{Check: c, IPFamily: probe.FamilyIPv6, Reason: probe.ReasonNoReply, Start: start,
			Facts: probe.Facts{NTPFacts: &probe.NTPFacts{SourcePort: 40000}}},
	}
	store.Put(c, deny)
	mustValue(t, reg, "connprobe_ntp_kiss_code_info", map[string]string{"ip_family": "ipv4", "kiss_code": "DENY"}, 1)
	mustValue(t, reg, "connprobe_ntp_reachable", v6, 0)
	mustValue(t, reg, "connprobe_ntp_usable", v6, 0)
	for _, name := range []string{"connprobe_ntp_offset_seconds", "connprobe_ntp_rtt_seconds",
		"connprobe_ntp_stratum", "connprobe_ntp_leap", "connprobe_ntp_kiss_code_info"} {
		if _, ok := value(t, reg, name, v6); ok {
			t.Errorf("%s exported for a server that did not reply", name)
		}
	}
	if n := testutil.CollectAndCount(m, "connprobe_ntp_kiss_code_info"); n != 1 {
		t.Errorf("%d kiss code series, want 1 (only the reachable family)", n)
	}
	lintClean(t, reg)
}

// TestNTPDefaultShape: by default an ntp check exports usable and the
// offset, the kiss code only when the reply was a kiss-o'-death, and none of
// the details WithNTPDetails adds.
func TestNTPDefaultShape(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil)
	c := ntpCheck()
	store.SetChecks([]*probe.Check{c})
	rs := []probe.Result{
		{Check: c, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
			Phase: probe.PhaseResponse, Start: start, Duration: 20 * time.Millisecond,
			Facts: probe.Facts{NTPFacts: &probe.NTPFacts{Reachable: true, Usable: true, OffsetSeconds: -0.0042,
				RTTSeconds: 0.018, Stratum: 2, RootDistanceSeconds: 0.03}}},
		{Check: c, Address: "2001:db8::1", IPFamily: probe.FamilyIPv6, Reason: probe.ReasonProtocol,
			Phase: probe.PhaseResponse, Start: start,
			Facts: probe.Facts{NTPFacts: &probe.NTPFacts{Reachable: true, KissCode: "RATE", OffsetSeconds: 0.5}}},
	}
	store.Put(c, rs)
	m.Record(c, rs)
	v4 := map[string]string{"check": "time", "ip_family": "ipv4"}
	v6 := map[string]string{"check": "time", "ip_family": "ipv6"}
	mustValue(t, reg, "connprobe_ntp_usable", v4, 1)
	mustValue(t, reg, "connprobe_ntp_offset_seconds", v4, -0.0042)
	mustValue(t, reg, "connprobe_ntp_usable", v6, 0)
	mustValue(t, reg, "connprobe_ntp_offset_seconds", v6, 0.5)
	mustValue(t, reg, "connprobe_ntp_kiss_code_info", map[string]string{"ip_family": "ipv6", "kiss_code": "RATE"}, 1)
	if n := testutil.CollectAndCount(m, "connprobe_ntp_kiss_code_info"); n != 1 {
		t.Errorf("%d kiss code series, want 1 (none is left out by default)", n)
	}
	for _, name := range []string{"connprobe_ntp_reachable", "connprobe_ntp_rtt_seconds", "connprobe_ntp_stratum",
		"connprobe_ntp_root_distance_seconds", "connprobe_ntp_leap"} {
		if n := testutil.CollectAndCount(m, name); n != 0 {
			t.Errorf("%s: %d series in the default shape", name, n)
		}
	}
	lintClean(t, reg)
}

// TestThrottledGauge: 1 backing off, 2 stopped; the normal state 0 only
// with WithNTPDetails (absent by default: alerts select > 0).
func TestThrottledGauge(t *testing.T) {
	for _, details := range []bool{false, true} {
		testThrottledGauge(t, details)
	}
}

func testThrottledGauge(t *testing.T, details bool) {
	reg := prometheus.NewRegistry()
	store := results.New()
	state := map[string][2]int{} // factor, stopped
	opts := []Option{WithThrottled(func(id string) (int, bool) {
		s := state[id]
		return s[0], s[1] == 1
	})}
	if details {
		opts = append(opts, WithNTPDetails())
	}
	_, err := New(reg, store, nil, buildinfo.Info{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := ntpCheck()
	store.SetChecks([]*probe.Check{c})
	for _, tc := range []struct {
		factor, stopped int
		want            float64
	}{{1, 0, 0}, {4, 0, 1}, {16, 1, 2}} {
		state[c.ID()] = [2]int{tc.factor, tc.stopped}
		if tc.want == 0 && !details {
			if _, ok := value(t, reg, "connprobe_check_throttled", map[string]string{"check": "time"}); ok {
				t.Error("connprobe_check_throttled 0 exported without WithNTPDetails")
			}
			continue
		}
		mustValue(t, reg, "connprobe_check_throttled", map[string]string{"check": "time"}, tc.want)
	}
	lintClean(t, reg)
}

// rangeGroup100 is a 100-port UDP range as the targets package expands it.
func rangeGroup100() []*probe.Check {
	var out []*probe.Check
	for i := range 100 {
		out = append(out, &probe.Check{Profile: "teams", Name: "media", Kind: "udp", Host: "media.example",
			Port: 3478 + i, Network: "udp", Essential: true, Interval: time.Minute, Range: "3478-3577"})
	}
	return out
}

func portResult(c *probe.Check, fam string, reason probe.Reason, at time.Time) probe.Result {
	return probe.Result{Check: c, IPFamily: fam, Up: reason == probe.ReasonOK, Reason: reason, Start: at}
}

func TestRangeExportsOnlyAggregates(t *testing.T) {
	reg, store, m := newTestMetrics(t, func(string) uint64 { return 0 })
	checks := rangeGroup100()
	single := tcpCheck()
	store.SetChecks(append(checks, single))

	rl := map[string]string{"profile": "teams", "check": "media", "kind": "udp", "host": "media.example",
		"range": "3478-3577", "protocol": "udp"}
	status := func(s string) map[string]string {
		out := map[string]string{"status": s}
		for k, v := range rl {
			out[k] = v
		}
		return out
	}
	// Before any probe: every port unknown, no verdict.
	mustValue(t, reg, "connprobe_range_ports", status("unknown"), 100)
	mustValue(t, reg, "connprobe_range_ports", status("ok"), 0)
	mustValue(t, reg, "connprobe_range_coverage_ratio", rl, 0)
	mustValue(t, reg, "connprobe_range_essential", rl, 1)
	mustValue(t, reg, "connprobe_range_overruns_total", rl, 0)
	if _, ok := value(t, reg, "connprobe_range_up", rl); ok {
		t.Error("connprobe_range_up exported before any port was probed")
	}

	// Sweep in samples of 8, as the scheduler does: 13 cycles cover 100 ports.
	// Ports 0-59 ok, 60-79 refused, 80-89 no_reply, 90-94 rejected, 95-98
	// timeout, 99 dns (other); port 5 is ok on IPv4 but times out on IPv6.
	reasonOf := func(i int) probe.Reason {
		switch {
		case i < 60:
			return probe.ReasonOK
		case i < 80:
			return probe.ReasonRefused
		case i < 90:
			return probe.ReasonNoReply
		case i < 95:
			return probe.ReasonRejected
		case i < 99:
			return probe.ReasonTimeout
		}
		return probe.ReasonDNS
	}
	for cycle := range 13 {
		now := start.Add(time.Duration(cycle) * time.Minute)
		for k := range 8 {
			i := (cycle*8 + k) % 100
			c := checks[i]
			rs := []probe.Result{portResult(c, probe.FamilyIPv4, reasonOf(i), now)}
			if i == 5 {
				rs = append(rs, portResult(c, probe.FamilyIPv6, probe.ReasonTimeout, now))
			}
			store.Put(c, rs)
			m.Record(c, rs)
		}
		if cycle == 5 {
			mustValue(t, reg, "connprobe_range_coverage_ratio", rl, 0.48)
			mustValue(t, reg, "connprobe_range_ports", status("unknown"), 52)
			if _, ok := value(t, reg, "connprobe_range_last_full_sweep_timestamp_seconds", rl); ok {
				t.Error("a full sweep reported at 48% coverage")
			}
		}
	}
	mustValue(t, reg, "connprobe_range_coverage_ratio", rl, 1)
	for st, want := range map[string]float64{"ok": 59, "refused": 20, "no_reply": 10, "rejected": 5,
		"timeout": 5, "other": 1, "unknown": 0} {
		mustValue(t, reg, "connprobe_range_ports", status(st), want)
	}
	mustValue(t, reg, "connprobe_range_ports_up", rl, 59)
	mustValue(t, reg, "connprobe_range_up", rl, 0)
	// Cycle 12 probed ports 96-99 and wrapped to 0-3; ports 4-7 keep their
	// probe of cycle 0, the oldest.
	mustValue(t, reg, "connprobe_range_last_full_sweep_timestamp_seconds", rl, float64(start.Unix()))
	// One more cycle (4-11) moves it to cycle 1 (ports 12-15).
	for i := 4; i < 12; i++ {
		store.Put(checks[i], []probe.Result{portResult(checks[i], probe.FamilyIPv4, reasonOf(i), start.Add(13*time.Minute))})
	}
	mustValue(t, reg, "connprobe_range_last_full_sweep_timestamp_seconds", rl, float64(start.Add(time.Minute).Unix()))

	// Only aggregates: no per-port series of any kind for the range.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				if lp.GetName() == "check" && lp.GetValue() == "media" && !strings.HasPrefix(mf.GetName(), "connprobe_range_") {
					t.Errorf("%s has a per-port series of the range", mf.GetName())
				}
			}
		}
	}
	if n := testutil.CollectAndCount(m, "connprobe_range_ports"); n != len(rangeStatuses) {
		t.Errorf("%d connprobe_range_ports series, want %d", n, len(rangeStatuses))
	}
	mustValue(t, reg, "connprobe_check_essential", map[string]string{"check": "db"}, 0)

	// Every port up: the range is up.
	for _, c := range checks {
		store.Put(c, []probe.Result{portResult(c, probe.FamilyIPv4, probe.ReasonOK, start)})
	}
	mustValue(t, reg, "connprobe_range_up", rl, 1)
	mustValue(t, reg, "connprobe_range_ports_up", rl, 100)
	lintClean(t, reg)
}

func TestRangeUpCountsOnlyProbedPorts(t *testing.T) {
	reg, store, _ := newTestMetrics(t, nil)
	checks := rangeGroup100()[:10]
	store.SetChecks(checks)
	for _, c := range checks[:3] {
		store.Put(c, []probe.Result{portResult(c, probe.FamilyIPv4, probe.ReasonOK, start)})
	}
	rl := map[string]string{"check": "media", "range": "3478-3577"}
	mustValue(t, reg, "connprobe_range_up", rl, 1)
	mustValue(t, reg, "connprobe_range_coverage_ratio", rl, 0.3)
	mustValue(t, reg, "connprobe_range_ports", map[string]string{"check": "media", "status": "unknown"}, 7)

	// expect_reply: false makes silence up; it is still counted as no_reply.
	silent := probe.Result{Check: checks[3], IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonNoReply}
	store.Put(checks[3], []probe.Result{silent})
	mustValue(t, reg, "connprobe_range_up", rl, 1)
	mustValue(t, reg, "connprobe_range_ports", map[string]string{"check": "media", "status": "no_reply"}, 1)
	mustValue(t, reg, "connprobe_range_ports_up", rl, 4)

	// Two ranges of one check are separate groups.
	other := &probe.Check{Profile: "teams", Name: "media", Kind: "udp", Host: "media.example", Port: 50000,
		Network: "udp", Range: "50000-50019"}
	store.SetChecks(append(checks, other))
	if n := seriesCount(t, reg, "connprobe_range_coverage_ratio"); n != 2 {
		t.Errorf("%d coverage series for two ranges", n)
	}
}

// seriesCount counts the series of name in a scrape.
func seriesCount(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
