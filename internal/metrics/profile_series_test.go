package metrics

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
	"github.com/connprobe/connprobe/targets"
)

// modelResult is an ok result of c as its kind reports one: DNS and
// connect phases, TLS facts for the kinds that speak TLS, NTP facts for ntp.
func modelResult(c *probe.Check) probe.Result {
	r := probe.Result{Check: c, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Phase: probe.PhaseConnect, Start: start, Duration: 20 * time.Millisecond}
	if net.ParseIP(c.Host) == nil {
		r.Timings = append(r.Timings, probe.Timing{Phase: probe.PhaseDNS, Duration: time.Millisecond})
	}
	r.Timings = append(r.Timings, probe.Timing{Phase: probe.PhaseConnect, Duration: 5 * time.Millisecond})
	switch {
	case c.Kind == "ntp":
		r.Facts.NTPFacts = &probe.NTPFacts{Reachable: true, Usable: true, Stratum: 2}
	case c.Kind == "tls" || c.Kind == "https" || c.Kind == "smtps" || c.Kind == "imaps" || c.Kind == "pop3s" || c.Transport == "tls":
		r.Timings = append(r.Timings, probe.Timing{Phase: probe.PhaseTLS, Duration: 10 * time.Millisecond})
		r.Facts.TLSFacts = &probe.TLSFacts{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", NotAfter: start.Add(time.Hour), HandshakeSeconds: 0.01}
	}
	return r
}

// TestSeriesPerProfile computes what each built-in profile costs a central
// Prometheus in the default shape, every bool param on and every required
// param set, with every check up over IPv4: the figures of the README's
// Performance section (run with -v to print them). It fails when a profile
// averages more than 12 series per check (issue 10's budget).
func TestSeriesPerProfile(t *testing.T) {
	cat, err := targets.Catalogue("")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	var allParams []string
	t.Logf("%-40s %6s %7s %7s %10s", "profile", "checks", "series", "/check", "samples/s")
	for _, p := range cat {
		var params []string
		for _, pa := range p.Params {
			switch {
			case pa.Type == targets.ParamBool:
				params = append(params, p.Name+"."+pa.Name+"=true")
			case pa.Required || pa.Default == "":
				v := pa.Example
				if v == "" {
					v = pa.Name + ".example.com"
				}
				params = append(params, p.Name+"."+pa.Name+"="+v)
			}
		}
		all = append(all, p.Name)
		allParams = append(allParams, params...)
		checks, series := profileSeries(t, []string{p.Name}, params)
		t.Logf("%-40s %6d %7d %7.1f %10.2f", p.Name, checks, series, float64(series)/float64(checks), float64(series)/30)
		if float64(series)/float64(checks) > maxSeriesPerCheck {
			t.Errorf("%s: %d series for %d checks", p.Name, series, checks)
		}
	}
	checks, series := profileSeries(t, all, allParams)
	t.Logf("%-40s %6d %7d %7.1f %10.2f", "all "+fmt.Sprint(len(cat))+" profiles", checks, series, float64(series)/float64(checks), float64(series)/30)
	own := ownSeries(t)
	t.Logf("plus the agent's own series (go_*, process_*, connprobe_build_info, ...): %d", own)
}

// profileSeries is the number of checks of the plan (a port range counts
// once: it is exported as one set of aggregates) and their series.
func profileSeries(t *testing.T, profiles, params []string) (checks, series int) {
	t.Helper()
	plan, err := targets.BuildPlan("", targets.Options{Profiles: profiles, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	store := results.New()
	m, err := New(reg, store, func(string) uint64 { return 0 }, buildinfo.Info{},
		WithThrottled(func(string) (int, bool) { return 1, false }))
	if err != nil {
		t.Fatal(err)
	}
	store.SetChecks(plan.Checks)
	for _, c := range plan.Checks {
		rs := []probe.Result{modelResult(c)}
		store.Put(c, rs)
		m.Record(c, rs)
	}
	for _, l := range textLines(t, reg) {
		if strings.Contains(l, `check="`) {
			series++
		}
	}
	groups := map[string]bool{}
	for _, c := range plan.Checks {
		groups[c.GroupID()] = true
	}
	return len(groups), series
}

func ownSeries(t *testing.T) int {
	t.Helper()
	reg := NewRegistry()
	if _, err := New(reg, results.New(), nil, buildinfo.Info{}); err != nil {
		t.Fatal(err)
	}
	return len(textLines(t, reg))
}
