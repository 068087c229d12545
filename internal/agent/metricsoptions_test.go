package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/metrics"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// TestMetricsOptions: each field of MetricsOptions (the --metrics.* flags)
// brings back the families it names, and only those.
func TestMetricsOptions(t *testing.T) {
	phases := []string{"connprobe_check_phase_duration_seconds{"}
	tls := []string{"connprobe_tls_version_info{", "connprobe_tls_handshake_seconds{"}
	ntp := []string{"connprobe_ntp_reachable{", "connprobe_ntp_rtt_seconds{", "connprobe_ntp_stratum{",
		"connprobe_ntp_root_distance_seconds{", "connprobe_ntp_leap{", `kiss_code="none"`, "connprobe_check_throttled{"}
	for _, tc := range []struct {
		name string
		opts MetricsOptions
		want []string
	}{
		{"default", MetricsOptions{}, nil},
		{"phases", MetricsOptions{Phases: true}, phases},
		{"tls details", MetricsOptions{TLSDetails: true}, tls},
		{"ntp details", MetricsOptions{NTPDetails: true}, ntp},
		{"all", MetricsOptions{Phases: true, TLSDetails: true, NTPDetails: true}, append(append(append([]string{}, phases...), tls...), ntp...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := scrapeWith(t, tc.opts)
			for _, s := range append(append(append([]string{}, phases...), tls...), ntp...) {
				want := strings.Contains(strings.Join(tc.want, " "), s)
				if got := strings.Contains(text, s); got != want {
					t.Errorf("%s: exported %v, want %v", s, got, want)
				}
			}
			// The default families are there whatever the options.
			for _, s := range []string{"connprobe_check_duration_seconds{", "connprobe_tls_cert_not_after_timestamp_seconds{",
				"connprobe_ntp_usable{", "connprobe_ntp_offset_seconds{"} {
				if !strings.Contains(text, s) {
					t.Errorf("no %s", s)
				}
			}
		})
	}
}

// scrapeWith is the text exposition of an ok tls check and an ok ntp check
// under the metrics options of o.
func scrapeWith(t *testing.T, o MetricsOptions) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	store := results.New()
	m, err := metrics.New(reg, store, nil, buildinfo.Info{},
		append(o.options(), metrics.WithThrottled(func(string) (int, bool) { return 1, false }))...)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tlsC := &probe.Check{Name: "web", Kind: "tls", Host: "web.example", Port: 443, Network: "tcp", Interval: time.Minute}
	ntpC := &probe.Check{Name: "time", Kind: "ntp", Host: "ntp.example", Port: 123, Network: "udp", Interval: time.Minute}
	store.SetChecks([]*probe.Check{tlsC, ntpC})
	timings := []probe.Timing{{Phase: probe.PhaseDNS, Duration: time.Millisecond}, {Phase: probe.PhaseConnect, Duration: time.Millisecond}}
	for c, facts := range map[*probe.Check]probe.Facts{
		tlsC: {TLSFacts: &probe.TLSFacts{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256", NotAfter: now.Add(time.Hour), HandshakeSeconds: 0.01}},
		ntpC: {NTPFacts: &probe.NTPFacts{Reachable: true, Usable: true, Stratum: 2, RTTSeconds: 0.01}},
	} {
		rs := []probe.Result{{Check: c, IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK, Start: now,
			Duration: 5 * time.Millisecond, Timings: timings, Facts: facts}}
		store.Put(c, rs)
		m.Record(c, rs)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}
