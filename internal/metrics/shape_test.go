package metrics

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/connprobe/connprobe/probe"
)

// textSeries returns the text-format sample lines of the check named check.
func textSeries(t *testing.T, reg prometheus.Gatherer, check string) []string {
	t.Helper()
	var out []string
	for _, l := range textLines(t, reg) {
		if strings.Contains(l, `check="`+check+`"`) {
			out = append(out, l)
		}
	}
	return out
}

// textLines returns every sample line of a text-format scrape of reg.
func textLines(t *testing.T, reg prometheus.Gatherer) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(registryText(t, reg), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func okTCPResult(c *probe.Check) []probe.Result {
	return []probe.Result{{Check: c, Address: "192.0.2.5", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Phase: probe.PhaseConnect, Start: start, Duration: 3 * time.Millisecond,
		Timings: []probe.Timing{{Phase: probe.PhaseDNS, Duration: time.Millisecond}, {Phase: probe.PhaseConnect, Duration: 2 * time.Millisecond}}}}
}

// TestSeriesPerCheck pins the series budget the README states: in the text
// format a TCP check by name that succeeds exports 10 series by default, a
// TLS check 11 (issue 10: at most 12; the native histogram's text form is
// _sum, _count and one +Inf bucket, which a Prometheus with native
// histograms stores as one series); the options add what they say.
func TestSeriesPerCheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []Option
		tcp, tls int
	}{
		{"default", nil, 10, 11},
		{"all reasons", []Option{WithAllReasons()}, 10 + 16, 11 + 16},
		{"classic buckets", []Option{WithLatencyBuckets()}, 10 + 13, 11 + 13},
		{"phases", []Option{WithPhases()}, 10 + 2, 11 + 3},
		{"tls details", []Option{WithTLSDetails()}, 10, 11 + 2},
		{"ntp details", []Option{WithNTPDetails()}, 10, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, store, m := newTestMetrics(t, func(string) uint64 { return 0 }, tc.opts...)
			tcp, tls := tcpCheck(), tlsCheck()
			store.SetChecks([]*probe.Check{tcp, tls})
			for c, rs := range map[*probe.Check][]probe.Result{tcp: okTCPResult(tcp), tls: {okTLSResult(tls)}} {
				store.Put(c, rs)
				m.Record(c, rs)
			}
			if got := textSeries(t, reg, "db"); len(got) != tc.tcp {
				t.Errorf("tcp check: %d series, want %d:\n%s", len(got), tc.tcp, strings.Join(got, "\n"))
			}
			if got := textSeries(t, reg, "outlook"); len(got) != tc.tls {
				t.Errorf("tls check: %d series, want %d:\n%s", len(got), tc.tls, strings.Join(got, "\n"))
			}
		})
	}
}

// maxSeriesPerCheck is issue 10's budget for one check in the default shape.
const maxSeriesPerCheck = 12

// everyPhase is every phase a prober records; a result holding them all is
// more than any kind's run records.
var everyPhase = []probe.Phase{probe.PhaseDNS, probe.PhaseConnect, probe.PhaseTLS, probe.PhaseBanner,
	probe.PhaseLogin, probe.PhaseStartTLS, probe.PhaseData, probe.PhaseRequest, probe.PhaseResponse}

// worstResult is an ok result of c with more than any run of its kind
// records: every phase, TLS facts if the kind takes tls: (with every TLS
// fact), NTP facts if it takes ntp: (reachable and usable, every measurement).
func worstResult(c *probe.Check, spec probe.KindSpec) probe.Result {
	r := probe.Result{Check: c, Address: "192.0.2.1", IPFamily: probe.FamilyIPv4, Up: true, Reason: probe.ReasonOK,
		Phase: probe.PhaseConnect, Start: start, Duration: 20 * time.Millisecond}
	for _, p := range everyPhase {
		r.Timings = append(r.Timings, probe.Timing{Phase: p, Duration: time.Millisecond})
	}
	if spec.Takes(probe.OptionsTLS) {
		r.Facts.TLSFacts = &probe.TLSFacts{Version: "TLS 1.3", Cipher: "TLS_AES_128_GCM_SHA256",
			NotAfter: start.Add(time.Hour), HandshakeSeconds: 0.01}
	}
	if spec.Takes(probe.OptionsNTP) {
		r.Facts.NTPFacts = &probe.NTPFacts{Reachable: true, Usable: true, OffsetSeconds: 0.001, RTTSeconds: 0.01,
			Stratum: 2, RootDistanceSeconds: 0.02}
	}
	return r
}

// kindSeries is the text-format series of one check of kind over transport
// ("" for the default), host by name, up over one address family, with the
// throttling state normal, and every family's name once.
func kindSeries(t *testing.T, kind, transport string, opts ...Option) (lines []string, families map[string]bool) {
	t.Helper()
	spec, err := probe.LookupKind(kind)
	if err != nil {
		t.Fatal(err)
	}
	reg, store, m := newTestMetrics(t, func(string) uint64 { return 0 },
		append(opts, WithThrottled(func(string) (int, bool) { return 1, false }))...)
	c := &probe.Check{Name: "svc", Kind: kind, Host: "svc.example", Port: 1000, Transport: transport,
		Network: spec.NetworkOf(transport), Interval: time.Minute}
	rs := []probe.Result{worstResult(c, spec)}
	store.SetChecks([]*probe.Check{c})
	store.Put(c, rs)
	m.Record(c, rs)
	lines = textSeries(t, reg, "svc")
	families = map[string]bool{}
	for _, l := range lines {
		name := l[:strings.IndexAny(l, "{ ")]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && strings.HasSuffix(base, "_latency_seconds") {
				name = base
			}
		}
		families[name] = true
	}
	return lines, families
}

// TestSeriesPerKind: every registered kind (and transport), so a new kind is
// covered without a change here, exports at most 12 series per check in the
// default shape, even with every phase and fact a run could record; the
// opt-in options bring back the families they name.
func TestSeriesPerKind(t *testing.T) {
	all := []Option{WithPhases(), WithTLSDetails(), WithNTPDetails()}
	for _, kind := range probe.KindNames() {
		spec := probe.Kinds()[kind]
		transports := spec.Transports
		if len(transports) == 0 {
			transports = []string{""}
		}
		for _, tr := range transports {
			lines, fams := kindSeries(t, kind, tr)
			t.Logf("%-9s %-3s %2d series", kind, tr, len(lines))
			if len(lines) > maxSeriesPerCheck {
				t.Errorf("kind %s %s: %d series in the default shape, want at most %d:\n%s",
					kind, tr, len(lines), maxSeriesPerCheck, strings.Join(lines, "\n"))
			}
			for _, f := range optInFamilies {
				if fams[f] {
					t.Errorf("kind %s %s: %s in the default shape", kind, tr, f)
				}
			}
			_, withAll := kindSeries(t, kind, tr, all...)
			want := []string{"connprobe_check_phase_duration_seconds"}
			if spec.Takes(probe.OptionsTLS) {
				want = append(want, "connprobe_tls_version_info", "connprobe_tls_handshake_seconds")
			}
			if spec.Takes(probe.OptionsNTP) {
				want = append(want, "connprobe_ntp_reachable", "connprobe_ntp_rtt_seconds", "connprobe_ntp_stratum",
					"connprobe_ntp_root_distance_seconds", "connprobe_ntp_leap", "connprobe_ntp_kiss_code_info",
					"connprobe_check_throttled")
			}
			for _, f := range want {
				if !withAll[f] {
					t.Errorf("kind %s %s: no %s with the opt-in options", kind, tr, f)
				}
			}
		}
	}
}

// optInFamilies are exported only with an option (kiss code and throttled
// are in the default shape too, but only when not in their normal state).
var optInFamilies = []string{"connprobe_check_phase_duration_seconds", "connprobe_tls_version_info",
	"connprobe_tls_handshake_seconds", "connprobe_ntp_reachable", "connprobe_ntp_rtt_seconds", "connprobe_ntp_stratum",
	"connprobe_ntp_root_distance_seconds", "connprobe_ntp_leap", "connprobe_ntp_kiss_code_info", "connprobe_check_throttled"}

// TestLatencyIsNativeHistogram: one native histogram per result, with no
// classic buckets unless asked for.
func TestLatencyIsNativeHistogram(t *testing.T) {
	for _, classic := range []bool{false, true} {
		var opts []Option
		if classic {
			opts = append(opts, WithLatencyBuckets())
		}
		reg, store, m := newTestMetrics(t, nil, opts...)
		c := tcpCheck()
		store.SetChecks([]*probe.Check{c})
		for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 40 * time.Millisecond} {
			rs := okTCPResult(c)
			rs[0].Duration = d
			store.Put(c, rs)
			m.Record(c, rs)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != "connprobe_check_latency_seconds" {
				continue
			}
			found = true
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 3 || h.GetSchema() != 3 || len(h.GetPositiveSpan()) == 0 {
				t.Errorf("classic=%v: count %d, schema %d, spans %v: want a native histogram of 3 samples, schema 3",
					classic, h.GetSampleCount(), h.GetSchema(), h.GetPositiveSpan())
			}
			if want := map[bool]int{false: 0, true: len(latencyBuckets)}[classic]; len(h.GetBucket()) != want {
				t.Errorf("classic=%v: %d classic buckets, want %d", classic, len(h.GetBucket()), want)
			}
		}
		if !found {
			t.Fatal("no latency histogram")
		}
	}
}

// TestThrottledOnlyForThrottlingKinds: only NTP servers ask to be probed
// less, so only ntp checks carry connprobe_check_throttled.
func TestThrottledOnlyForThrottlingKinds(t *testing.T) {
	reg, store, m := newTestMetrics(t, nil, WithThrottled(func(string) (int, bool) { return 2, false }))
	tcp := tcpCheck()
	ntp := &probe.Check{Name: "clock", Kind: "ntp", Host: "ntp.example", Port: 123, Network: "udp", Interval: time.Minute}
	store.SetChecks([]*probe.Check{tcp, ntp})
	for _, c := range []*probe.Check{tcp, ntp} {
		rs := okTCPResult(c)
		store.Put(c, rs)
		m.Record(c, rs)
	}
	mustValue(t, reg, "connprobe_check_throttled", map[string]string{"check": "clock"}, 1)
	if _, ok := value(t, reg, "connprobe_check_throttled", map[string]string{"check": "db"}); ok {
		t.Error("a tcp check exports connprobe_check_throttled")
	}
}

// TestGathererMatchesCollect: the families Gatherer builds directly are the
// series Collect gives through the registry, line for line, and gathering
// the registry alone no longer has them.
func TestGathererMatchesCollect(t *testing.T) {
	site := func(opts ...Option) (*prometheus.Registry, *Metrics) {
		reg, store, m := newTestMetrics(t, func(string) uint64 { return 3 }, append(opts,
			WithThrottled(func(string) (int, bool) { return 2, false }))...)
		tcp, tls := tcpCheck(), tlsCheck()
		ntp := &probe.Check{Name: "clock", Kind: "ntp", Host: "ntp.example", Port: 123, Network: "udp", Interval: time.Minute}
		// A name with the bytes the text format escapes.
		down := &probe.Check{Name: "down \"quoted\" back\\slash", Kind: "tcp", Host: "192.0.2.7", Port: 22, Network: "tcp", Essential: true}
		rng := &probe.Check{Name: "rtp", Kind: "udp", Host: "192.0.2.8", Port: 10000, Network: "udp", Range: "10000-10001"}
		store.SetChecks([]*probe.Check{tcp, tls, ntp, down, rng})
		put := func(c *probe.Check, rs []probe.Result) { store.Put(c, rs); m.Record(c, rs) }
		put(tcp, okTCPResult(tcp))
		put(tls, []probe.Result{okTLSResult(tls), {Check: tls, IPFamily: probe.FamilyIPv6, Reason: probe.ReasonTimeout, Phase: probe.PhaseConnect, Start: start}})
		nr := okTCPResult(ntp)
		nr[0].Facts.NTPFacts = &probe.NTPFacts{Reachable: true, Usable: true, Stratum: 2, KissCode: "RATE"}
		put(ntp, nr)
		put(down, []probe.Result{{Check: down, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRefused, Phase: probe.PhaseConnect, Start: start}})
		put(down, []probe.Result{{Check: down, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonTimeout, Phase: probe.PhaseConnect, Start: start}})
		put(rng, okTCPResult(rng))
		return reg, m
	}
	for _, opts := range [][]Option{nil, {WithAllReasons(), WithLatencyBuckets(), WithPhases(), WithTLSDetails(), WithNTPDetails()}} {
		regC, _ := site(opts...)
		regG, mG := site(opts...)
		g := mG.Gatherer(regG)
		want, got := textLines(t, regC), textLines(t, g)
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			t.Errorf("Gatherer and Collect differ:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
		}
		// The handler /metrics serves: the same lines, plain and gzip.
		regH, mH := site(opts...)
		h := mH.Handler(regH, nil)
		for _, gz := range []bool{false, true} {
			if got := handlerLines(t, h, gz); !slices.Equal(want, got) {
				t.Errorf("Handler (gzip %v) and Collect differ:\n got  %s\n want %s", gz, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		}
		if len(textSeries(t, regG, "db")) != 0 {
			t.Error("the registry alone still has per-check series after Gatherer")
		}
		if problems, err := testutil.GatherAndLint(g); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", err, problems)
		}
	}
}

// handlerLines scrapes h in the text format and returns its sample lines,
// sorted.
func handlerLines(t *testing.T, h http.Handler, gz bool) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(scrapeText(t, h, gz), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}
