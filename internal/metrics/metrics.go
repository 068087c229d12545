// Package metrics is the one place where connprobe's metrics are defined.
//
// Gauges of last values (up, reason, durations, TLS facts) are built from the
// results store at scrape time, so a scrape never runs a probe and a check
// removed by a reload disappears at the next scrape. Counters and the latency
// histogram accumulate as results arrive (Record); their series of removed
// checks are deleted at the next scrape.
//
// A check that has not run yet exposes only connprobe_check_essential (and
// counts in connprobe_checks_configured): it has no verdict to report, and a
// made-up "down" would fire alerts during start-up.
//
// Metrics describing a check rather than one result (essential, overruns,
// throttled) carry the check labels without ip_family.
//
// Checks expanded from a port range are exported only as aggregates of the
// range (connprobe_range_*), never per port: a 100-port vendor range must not
// become hundreds of series that each fire an alert. Their per-port results
// stay in the store for the status page.
package metrics

import (
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/internal/uplink"
	"github.com/connprobe/connprobe/probe"
)

const namespace = "connprobe"

// checkLabelNames are checkLabels, with their number known to the compiler
// (labelText).
var checkLabelNames = [...]string{"profile", "check", "kind", "host", "port", "protocol"}

// checkLabels identify a check; resultLabels add the family of one result.
var (
	checkLabels  = checkLabelNames[:]
	resultLabels = slices.Concat(checkLabels, []string{"ip_family"})
	// rangeLabels identify a range group: the range's spelling replaces the port.
	rangeLabels = []string{"profile", "check", "kind", "host", "range", "protocol"}
)

// Range port statuses: the reasons that matter when sweeping a range, the
// rest folded into "other" so the label stays bounded, and "unknown" for a
// port not probed yet.
const (
	statusOther   = "other"
	statusUnknown = "unknown"
)

var rangeStatuses = []string{
	string(probe.ReasonOK), string(probe.ReasonRefused), string(probe.ReasonRejected),
	string(probe.ReasonNoReply), string(probe.ReasonTimeout), statusOther, statusUnknown,
}

// Kiss codes exported as label values; any other code a server sends is
// "other" (a server chooses the four bytes, so they cannot be a label as is),
// and a reply that is no kiss-o'-death is "none".
var knownKissCodes = []string{"RATE", "DENY", "RSTR"}

const (
	kissNone  = "none"
	kissOther = "other"
)

// latencyBuckets span 1ms to 10s: the classic buckets, with
// WithLatencyBuckets.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// unknownFamily labels a result that carries no address family (an internal
// error before resolution).
const unknownFamily = "unknown"

// Metrics is a prometheus.Collector over the results store plus the counters
// fed by Record. Safe for concurrent use.
type Metrics struct {
	store     *results.Store
	overruns  func(id string) uint64
	throttled func(id string) (factor int, stopped bool)
	uplink    func() uplink.Verdict

	up, reason, duration, lastRun, phaseDuration *prometheus.Desc
	essential, overrunsTotal, configured         *prometheus.Desc
	certNotAfter, tlsVersion, tlsHandshake       *prometheus.Desc
	throttledState                               *prometheus.Desc
	uplinkUp, uplinkInfo                         *prometheus.Desc
	pathHop, pathInfo                            *prometheus.Desc

	ntpReachable, ntpUsable, ntpOffset, ntpRTT, ntpStratum *prometheus.Desc
	ntpRootDistance, ntpLeap, ntpKissCode                  *prometheus.Desc

	rangePorts, rangePortsUp, rangeUp, rangeCoverage *prometheus.Desc
	rangeFullSweep, rangeEssential, rangeOverruns    *prometheus.Desc

	buildInfo          prometheus.Gauge
	reloadOK           prometheus.Gauge
	reloadOKTime       prometheus.Gauge
	skipped            prometheus.Gauge
	runsTotal, latency *prometheus.Desc
	mu                 sync.Mutex
	series             map[seriesKey]*series // what Record accumulated, by label set
	interner           pairInterner          // label pairs of the current configuration
	reasons            []probe.Reason
	reasonPairs        map[probe.Reason]*dto.LabelPair
	phasePairs         map[probe.Phase]*dto.LabelPair
	now                func() time.Time
	// seriesOrder is m.series in the order Record made them, so that a
	// scrape can walk them a chunk at a time, releasing mu in between.
	// A pruned series stays in it (marked) while a text scrape walks it
	// (scraping > 0): removing it would shift the ones not yet written.
	seriesOrder []*series
	scraping    int
	compact     bool // seriesOrder holds pruned series

	allReasons     bool // export every reason (0 or 1), not only the current one
	classicBuckets bool // the latency histogram has classic buckets too
	phases         bool // export connprobe_check_phase_duration_seconds
	tlsDetails     bool // export connprobe_tls_version_info and connprobe_tls_handshake_seconds
	ntpDetails     bool // export the NTP detail families, and the normal states (kiss code none, throttled 0)

	// labels caches the label values of every configured check for the
	// store generation gen: built once per configuration, not per scrape.
	gen    uint64
	labels map[*probe.Check]*checkLabelSet
	// meta names the descs, for families built without the registry.
	meta map[*prometheus.Desc]familyMeta
	// direct: Gatherer was called, so the per-check families are built by
	// it and Collect leaves them out.
	direct atomic.Bool

	// stale: Record saw a check that is not in labels (a run that began
	// before a reload), so the next scrape rebuilds and prunes again.
	stale bool
	// ranges: the configuration of gen has port ranges, whose aggregates
	// Collect builds from the store's entries.
	ranges bool
}

// checkLabelSet is a check's label values, built once per configuration
// load: the text /metrics writes, and the label pairs of the sinks that
// build metric objects (the registry, protobuf), built at their first use.
// The text format needs no pairs: built for every check up front, the
// pairs, their interned values and their slices were about 300 bytes per
// check (issue 10).
type checkLabelSet struct {
	id    string
	key   string       // the label values, joined
	check *probe.Check // what the values are read from; guarded by Metrics.mu
	// pairs is nil until pairsLocked builds it: sorted by name, as a
	// metric writes them.
	pairs    []*dto.LabelPair
	families []*resultLabelSet // by ip_family, as results arrive
	text     labelText         // pairs in the text format, for /metrics
}

// resultLabelSet adds one ip_family to a check's labels.
type resultLabelSet struct {
	check  *checkLabelSet
	family string
	pairs  []*dto.LabelPair // nil until pairsLocked builds it
}

// seriesKey is a series' identity: its check's label values (joined) and
// its ip_family. Two strings the label set already holds, not a third
// joining them (about 50 bytes per check, issue 10).
type seriesKey struct{ check, family string }

func (rl *resultLabelSet) key() seriesKey { return seriesKey{rl.check.key, rl.family} }

func newCheckLabels(c *probe.Check) *checkLabelSet {
	values := checkLabelValues(c)
	return &checkLabelSet{id: c.ID(), key: strings.Join(values, "\x00"), check: c, text: renderLabels(values)}
}

// family returns the labels of the check's results of family, built at the
// first result of that family.
func (cl *checkLabelSet) family(f string) *resultLabelSet {
	for _, rl := range cl.families {
		if rl.family == f {
			return rl
		}
	}
	rl := &resultLabelSet{check: cl, family: f}
	cl.families = append(cl.families, rl)
	return rl
}

// pairsLocked builds the label pairs of ls's check (and result) where they
// are not built yet, from the interner, for a sink that builds metric
// objects; the text sink reads the rendered text alone.
func (m *Metrics) pairsLocked(out sink, ls *seriesLabels) {
	if _, text := out.(*textSink); text {
		return
	}
	cl := ls.cl
	if ls.rl != nil {
		cl = ls.rl.check
	}
	if cl.pairs == nil {
		values := checkLabelValues(cl.check)
		pairs := make([]*dto.LabelPair, len(checkLabels))
		for i, n := range checkLabels {
			pairs[i] = m.interner.pair(n, values[i])
		}
		slices.SortFunc(pairs, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
		cl.pairs = pairs
	}
	if rl := ls.rl; rl != nil && rl.pairs == nil {
		rl.pairs = withPair(cl.pairs, m.interner.pair("ip_family", rl.family))
	}
}

func labelPair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// withPair returns pairs plus p, in name order; pairs is not changed.
func withPair(pairs []*dto.LabelPair, p *dto.LabelPair) []*dto.LabelPair {
	i, _ := slices.BinarySearchFunc(pairs, p.GetName(), func(e *dto.LabelPair, n string) int { return strings.Compare(e.GetName(), n) })
	out := make([]*dto.LabelPair, 0, len(pairs)+1)
	out = append(out, pairs[:i]...)
	out = append(out, p)
	return append(out, pairs[i:]...)
}

// cheapMetric is a gauge or counter whose label pairs were built once: a
// scrape of thousands of checks would spend most of its time building and
// sorting the same pairs again (prometheus.MustNewConstMetric does).
type cheapMetric struct {
	desc    *prometheus.Desc
	pairs   []*dto.LabelPair
	value   float64
	counter bool
}

func (c *cheapMetric) Desc() *prometheus.Desc { return c.desc }

func (c *cheapMetric) Write(out *dto.Metric) error {
	out.Label = c.pairs
	v := c.value
	if c.counter {
		out.Counter = &dto.Counter{Value: &v}
	} else {
		out.Gauge = &dto.Gauge{Value: &v}
	}
	return nil
}

// Option adds an optional source of state to Metrics.
type Option func(*Metrics)

// WithAllReasons exports connprobe_check_reason for every reason, 1 for the
// current one and 0 for the others (17 series per result, the shape before
// 0.x); by default only the current reason is exported, with the value 1.
func WithAllReasons() Option { return func(m *Metrics) { m.allReasons = true } }

// WithLatencyBuckets gives connprobe_check_latency_seconds its classic
// buckets (14 series per result) besides the native histogram, for a
// Prometheus without native histograms that wants latency quantiles.
func WithLatencyBuckets() Option { return func(m *Metrics) { m.classicBuckets = true } }

// WithPhases exports connprobe_check_phase_duration_seconds, one series per
// phase of the last run. Off by default: an https check records five phases
// (dns, connect, tls, request, response), an smtp check with login six, which
// alone would take a check past the 12 series issue 10 allows;
// connprobe_check_duration_seconds stays as their total.
func WithPhases() Option { return func(m *Metrics) { m.phases = true } }

// WithTLSDetails exports connprobe_tls_version_info and
// connprobe_tls_handshake_seconds. Off by default: no alert rule uses them,
// and the handshake time is connprobe_check_phase_duration_seconds{phase="tls"}
// again (the probers record one from the other).
func WithTLSDetails() Option { return func(m *Metrics) { m.tlsDetails = true } }

// WithNTPDetails exports connprobe_ntp_reachable, connprobe_ntp_rtt_seconds,
// connprobe_ntp_stratum, connprobe_ntp_root_distance_seconds and
// connprobe_ntp_leap, plus connprobe_ntp_kiss_code_info{kiss_code="none"} and
// connprobe_check_throttled 0 for servers in their normal state. By default an
// ntp check exports the verdict (up, reason), connprobe_ntp_usable and
// connprobe_ntp_offset_seconds (the alert rules use them), and the kiss code
// and throttled state only when the server sent a kiss-o'-death or connprobe
// backs off: what explains a failing check. Reachable is the presence of the
// offset (both exist exactly when a reply came back); the other details
// explain an unusable reply, whose reason and detail say the same.
func WithNTPDetails() Option { return func(m *Metrics) { m.ntpDetails = true } }

// WithThrottled exports connprobe_check_throttled from f;
// scheduler.Scheduler.Throttled fits.
func WithThrottled(f func(id string) (factor int, stopped bool)) Option {
	return func(m *Metrics) { m.throttled = f }
}

// WithUplink exports connprobe_uplink_up and connprobe_uplink_info from the
// site-wide uplink verdict f returns (computed from the results store).
func WithUplink(f func() uplink.Verdict) Option {
	return func(m *Metrics) { m.uplink = f }
}

// New defines every metric and registers them on reg. overruns may be nil
// (then no overrun series are exported); scheduler.Scheduler.Overruns fits.
// Go and process collectors are not registered here: see NewRegistry.
func New(reg prometheus.Registerer, store *results.Store, overruns func(id string) uint64, build buildinfo.Info, opts ...Option) (*Metrics, error) {
	meta := map[*prometheus.Desc]familyMeta{}
	desc := func(name, help string, labels []string, extra ...string) *prometheus.Desc {
		fq := prometheus.BuildFQName(namespace, "", name)
		d := prometheus.NewDesc(fq, help, slices.Concat(labels, extra), nil)
		meta[d] = familyMeta{name: fq, help: help}
		return d
	}
	m := &Metrics{
		store:    store,
		overruns: overruns,

		up:            desc("check_up", "Whether the last run of the check succeeded (1) or not (0).", resultLabels),
		reason:        desc("check_reason", "The reason of the last run's verdict, with the value 1 (with --metrics.all-reasons also every other reason, with 0).", resultLabels, "reason"),
		duration:      desc("check_duration_seconds", "How long the last run of the check took.", resultLabels),
		lastRun:       desc("check_last_run_timestamp_seconds", "When the last run of the check started, in seconds since the epoch.", resultLabels),
		phaseDuration: desc("check_phase_duration_seconds", "How long each phase of the last run took.", resultLabels, "phase"),
		essential:     desc("check_essential", "Whether the check is marked essential (1) or not (0).", checkLabels),
		overrunsTotal: desc("check_overruns_total", "Scheduled runs skipped because the previous run lasted past them.", checkLabels),
		configured:    desc("checks_configured", "Number of checks in the loaded configuration.", nil),
		certNotAfter:  desc("tls_cert_not_after_timestamp_seconds", "Expiry of the leaf certificate seen by the last run, in seconds since the epoch.", resultLabels),
		tlsVersion:    desc("tls_version_info", "TLS version and cipher suite negotiated by the last run.", resultLabels, "version", "cipher"),
		tlsHandshake:  desc("tls_handshake_seconds", "How long the TLS handshake of the last run took.", resultLabels),

		throttledState: desc("check_throttled", "Whether the server asked to be probed less: 1 backing off (interval multiplied), 2 stopped until the configuration changes; 0 (no) only with --metrics.ntp-details, else absent.", checkLabels),

		uplinkUp: desc("uplink_up", "Site-wide uplink verdict from the outbound checks and their traced paths: 1 when a target answered, "+
			"0 when checks to two or more destinations stop at the same place and none succeeds; absent while there is no verdict "+
			"(no outbound check configured or run yet, or the failures point at no single place).", nil),
		uplinkInfo: desc("uplink_info", "1 while the uplink is down: where (location: gateway, upstream, unknown, this_host) "+
			"and this host's default gateway.", nil, "location", "gateway"),

		pathHop: desc("check_path_hop", "Where the last trace of a failing check placed the block: the hop of the device that "+
			"rejected the traffic or, for a silent drop, of the last device that answered (0: this host). Absent while the check is up "+
			"or was not traced.", resultLabels),
		pathInfo: desc("check_path_info", "1 for a failing, traced check: where its traffic stopped (location: this_host, gateway, "+
			"upstream, unknown) and the address of that device (empty when none answered).", resultLabels, "location", "address"),

		ntpReachable:    desc("ntp_reachable", "Whether the last NTP query got a valid reply to it (1) or not (0).", resultLabels),
		ntpUsable:       desc("ntp_usable", "Whether the last NTP reply was fit to set a clock by (1) or not (0).", resultLabels),
		ntpOffset:       desc("ntp_offset_seconds", "Offset of the local clock against the server in the last reply (positive: the local clock is behind).", resultLabels),
		ntpRTT:          desc("ntp_rtt_seconds", "Round-trip time of the last NTP query.", resultLabels),
		ntpStratum:      desc("ntp_stratum", "Stratum the server reported in the last reply.", resultLabels),
		ntpRootDistance: desc("ntp_root_distance_seconds", "Root distance of the server in the last reply.", resultLabels),
		ntpLeap:         desc("ntp_leap", "Leap indicator of the last reply (3: the server is not synchronised).", resultLabels),
		ntpKissCode:     desc("ntp_kiss_code_info", "1, for the kiss-o'-death code of the last reply (RATE, DENY, RSTR or other; none, for a reply that is no kiss-o'-death, only with --metrics.ntp-details).", resultLabels, "kiss_code"),

		rangePorts:     desc("range_ports", "Ports of the range by the status of their last probe (unknown: not probed yet).", rangeLabels, "status"),
		rangePortsUp:   desc("range_ports_up", "Ports of the range whose last probe was up.", rangeLabels),
		rangeUp:        desc("range_up", "1 when every probed port of the range was up at its last probe, 0 otherwise; absent until a port was probed.", rangeLabels),
		rangeCoverage:  desc("range_coverage_ratio", "Fraction of the range's ports probed at least once.", rangeLabels),
		rangeFullSweep: desc("range_last_full_sweep_timestamp_seconds", "Time since which every port of the range has been probed (its oldest last probe), in seconds since the epoch; absent until every port was probed.", rangeLabels),
		rangeOverruns:  desc("range_overruns_total", "Scheduled samples of the range skipped because the previous one ran past them.", rangeLabels),
		rangeEssential: desc("range_essential", "Whether the range's checks are marked essential (1) or not (0).", rangeLabels),

		buildInfo: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "build_info",
			Help:        "Build information of connprobe; the value is always 1.",
			ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "Whether the last configuration load succeeded (1) or not (0).",
		}),
		reloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully, in seconds since the epoch.",
		}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "checks_skipped",
			Help: "Profile checks in the configuration that do not run because a required param is not set (the log names them).",
		}),
		runsTotal:   desc("check_runs_total", "Completed runs of the check by verdict reason.", resultLabels, "reason"),
		latency:     desc("check_latency_seconds", "Duration of successful runs of the check; failures are counted in connprobe_check_runs_total.", resultLabels),
		series:      map[seriesKey]*series{},
		interner:    pairInterner{},
		reasons:     probe.Reasons(),
		reasonPairs: map[probe.Reason]*dto.LabelPair{},
		phasePairs:  map[probe.Phase]*dto.LabelPair{},
		now:         time.Now,
	}
	m.meta = meta
	for _, o := range opts {
		o(m)
	}
	for _, r := range m.reasons {
		m.reasonPairs[r] = labelPair("reason", string(r))
	}
	m.buildInfo.Set(1)
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

// NewRegistry returns a registry with the Go runtime and process collectors,
// ready for New.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// ReloadResult records the outcome of a configuration load (the first load
// counts too).
func (m *Metrics) ReloadResult(ok bool) {
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadOKTime.Set(float64(m.now().UnixNano()) / 1e9)
}

// SetSkipped records how many profile checks the loaded configuration
// skips for want of a param; call it with every successful load.
func (m *Metrics) SetSkipped(n int) { m.skipped.Set(float64(n)) }

// Record counts one completed run of c; call it from the scheduler's sink.
func (m *Metrics) Record(c *probe.Check, rs []probe.Result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c.Range != "" {
		// Per-port counters of a range would be unbounded series; the
		// range aggregates are built from the store at scrape time.
		return
	}
	cl := m.labels[c]
	if cl == nil {
		if gen := m.store.Generation(); m.labels == nil || gen != m.gen {
			// The first run after a load builds the label cache, not the
			// next scrape: a series made from labels built for one run
			// would keep them besides the cache's own (about 0.5 KB per
			// check, issue 10). Pruning waits for the scrape (stale), as
			// before: by then the checks that share a removed check's
			// labels have recorded theirs.
			m.relabelLocked(m.store.Latest())
			m.gen, m.stale = gen, true
			cl = m.labels[c]
		}
	}
	if cl == nil {
		// A run that started before a reload:
		// labels for this once, not cached; the next scrape prunes again in
		// case the check is gone.
		cl = newCheckLabels(c)
		m.stale = true
	}
	for i := range rs {
		r := &rs[i]
		rl := cl.family(resultFamily(r))
		s := m.series[rl.key()]
		if s == nil {
			s = &series{labels: rl, hist: latencyHist{schema: latencySchema}}
			if m.classicBuckets {
				s.hist.classic = make([]uint64, len(latencyBuckets))
			}
			// The ok counter exists from the first run, so a failing
			// check has one at 0 and a rate() over it is defined. The
			// histogram too exists from the first run.
			s.count(probe.ReasonOK, m.reasonPair(probe.ReasonOK), 0)
			m.series[rl.key()] = s
			m.seriesOrder = append(m.seriesOrder, s)
		}
		reason := reasonOf(r)
		s.count(reason, m.reasonPair(reason), 1)
		if r.Up {
			s.hist.observe(r.Duration.Seconds())
		}
	}
}

// reasonPair is the reason label pair, built once for the known reasons.
func (m *Metrics) reasonPair(r probe.Reason) *dto.LabelPair {
	if p := m.reasonPairs[r]; p != nil {
		return p
	}
	return labelPair("reason", string(r))
}

// pruneLocked forgets the counters and histograms whose labels no
// configured check has: those of checks no longer configured (by
// probe.Check.ID, which includes the transport), except where a configured
// check has the same label values: two identities can share labels (sip over
// tcp and over tls are both protocol="tcp"), and a removed one must not reset
// the other's counters. Read from the label cache, not from a list of the
// label sets each check recorded (about 90 bytes per check, issue 10).
func (m *Metrics) pruneLocked() {
	inUse := make(map[string]bool, len(m.labels))
	for _, cl := range m.labels {
		inUse[cl.key] = true
	}
	for k, s := range m.series {
		if !inUse[s.labels.check.key] {
			s.pruned = true
			delete(m.series, k)
			m.compact = true
		}
	}
	m.compactLocked()
}

// compactLocked drops the pruned series from seriesOrder, unless a scrape
// is walking it (the last to finish compacts).
func (m *Metrics) compactLocked() {
	if !m.compact || m.scraping > 0 {
		return
	}
	m.seriesOrder = slices.DeleteFunc(m.seriesOrder, func(s *series) bool { return s.pruned })
	m.compact = false
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		m.up, m.reason, m.duration, m.lastRun, m.phaseDuration, m.essential,
		m.overrunsTotal, m.configured, m.certNotAfter, m.tlsVersion, m.tlsHandshake,
		m.throttledState, m.ntpReachable, m.ntpUsable, m.ntpOffset, m.ntpRTT, m.ntpStratum,
		m.ntpRootDistance, m.ntpLeap, m.ntpKissCode, m.rangePorts, m.rangePortsUp, m.rangeUp,
		m.rangeCoverage, m.rangeFullSweep, m.rangeEssential, m.rangeOverruns,
		m.uplinkUp, m.uplinkInfo, m.pathHop, m.pathInfo, m.runsTotal, m.latency,
	} {
		ch <- d
	}
	m.buildInfo.Describe(ch)
	m.reloadOK.Describe(ch)
	m.reloadOKTime.Describe(ch)
	m.skipped.Describe(ch)
}

// Collect implements prometheus.Collector: it reads the store, never probes.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	gen := m.store.Generation() // before the snapshot: see Generation

	m.mu.Lock()
	// Under mu: Record adds a check's families to its cached labels.
	direct := m.direct.Load()
	var entries []results.Entry
	configured := 0
	if !direct || m.labels == nil || gen != m.gen || m.stale || m.ranges {
		// Under mu, as Record reads the store under it too.
		entries = m.store.Latest()
		configured = len(entries)
		if m.labels == nil || gen != m.gen || m.stale {
			m.reconfigureLocked(entries)
			m.gen = gen
		}
	} else {
		// The handler writes the per-check families from its own snapshot,
		// and there are no ranges: no copy of 10,000 entries for a count.
		configured = m.store.Len()
	}
	if !direct {
		m.emitSeriesLocked(chanSink{ch})
	}
	var ranges []*rangeGroup
	byKey := map[string]*rangeGroup{}
	for _, e := range entries {
		if e.Check.Range == "" {
			if !direct {
				m.emitEntryLocked(chanSink{ch}, &e, m.labelsLocked(e.Check), false)
			}
			continue
		}
		key := e.Check.GroupID()
		g, ok := byKey[key]
		if !ok {
			g = &rangeGroup{labels: rangeLabelValues(e.Check), essential: e.Check.Essential}
			byKey[key] = g
			ranges = append(ranges, g)
		}
		g.entries = append(g.entries, e)
	}
	m.mu.Unlock()

	m.buildInfo.Collect(ch)
	m.reloadOK.Collect(ch)
	m.reloadOKTime.Collect(ch)
	m.skipped.Collect(ch)
	ch <- prometheus.MustNewConstMetric(m.configured, prometheus.GaugeValue, float64(configured))
	m.collectUplink(ch)
	for _, g := range ranges {
		m.collectRange(ch, g)
	}
}

// reconfigureLocked builds the label cache for the configured checks and
// prunes the counters of checks no longer configured: once per configuration
// (or after a run of a check that is not in the cache), not at every scrape.
func (m *Metrics) reconfigureLocked(entries []results.Entry) {
	m.relabelLocked(entries)
	m.pruneLocked()
	m.stale = false
	m.ranges = slices.ContainsFunc(entries, func(e results.Entry) bool { return e.Check.Range != "" })
}

// relabelLocked builds the label cache for the configured checks, keeping
// the labels of a check that did not change.
func (m *Metrics) relabelLocked(entries []results.Entry) {
	labels := make(map[*probe.Check]*checkLabelSet, len(entries))
	byID := make(map[string]*checkLabelSet, len(m.labels))
	for _, cl := range m.labels {
		byID[cl.id] = cl
	}
	// A fresh interner, so that values of removed checks are not kept.
	m.interner = pairInterner{}
	for _, e := range entries {
		c := e.Check
		if c.Range != "" {
			continue
		}
		cl := newCheckLabels(c)
		if old := byID[cl.id]; old != nil && old.key == cl.key {
			cl = old // the same check, reloaded: keep what it has built
			cl.check = c
		}
		labels[c] = cl
	}
	m.labels = labels
}

// labelsLocked is the cached labels of c; a check not in the cache (not
// in this snapshot's generation: cannot happen, but never panic) gets its
// labels built.
func (m *Metrics) labelsLocked(c *probe.Check) *checkLabelSet {
	if cl := m.labels[c]; cl != nil {
		return cl
	}
	return newCheckLabels(c)
}

// throttlingKinds are the kinds whose servers can ask to be probed less (an
// NTP kiss-o'-death); only their checks export connprobe_check_throttled.
func throttlingKind(kind string) bool { return kind == "ntp" }

// checkDescs are the per-check families this Metrics exports: those
// emitEntryLocked and emitSeriesLocked build, without the opt-in families
// that are off, which a scrape then never walks the checks for (a test holds
// Handler to Collect, so a family missing here fails it).
func (m *Metrics) checkDescs() []*prometheus.Desc {
	descs := []*prometheus.Desc{
		m.essential, m.overrunsTotal, m.throttledState, m.up, m.reason, m.duration, m.lastRun,
		m.pathHop, m.pathInfo, m.certNotAfter, m.ntpUsable, m.ntpOffset, m.ntpKissCode,
		m.runsTotal, m.latency,
	}
	if m.phases {
		descs = append(descs, m.phaseDuration)
	}
	if m.tlsDetails {
		descs = append(descs, m.tlsVersion, m.tlsHandshake)
	}
	if m.ntpDetails {
		descs = append(descs, m.ntpReachable, m.ntpRTT, m.ntpStratum, m.ntpRootDistance, m.ntpLeap)
	}
	return descs
}

// emitSeriesLocked emits what Record accumulated: the run counters and the
// latency histograms.
func (m *Metrics) emitSeriesLocked(out sink) {
	for _, s := range m.series {
		m.emitSeries(out, s)
	}
}

// emitSeries emits the run counters and the latency histogram of s.
func (m *Metrics) emitSeries(out sink, s *series) {
	rl := s.labels
	ls := seriesLabels{rl: rl}
	m.pairsLocked(out, &ls)
	for _, rc := range s.runs {
		out.counter(m.runsTotal, seriesLabels{rl: rl, extra: [2]*dto.LabelPair{rc.pair}, n: 1}, float64(rc.n))
	}
	ls.pairs = rl.pairs
	out.histogram(m.latency, ls, &s.hist)
}

// checkLevel reports the families of d's kind that emitEntryLocked writes
// from the check alone, without its results.
func (m *Metrics) checkLevel(d *prometheus.Desc) bool {
	return d == m.essential || d == m.overrunsTotal || d == m.throttledState
}

// emitEntryLocked emits the series of one check built from its last
// results; with checkOnly, only the check's own (essential, overruns,
// throttled), for a sink that wants no other: a scrape writes one family at
// a time, and at 10,000 checks the walk of results no family of the pass
// needs was most of those passes.
func (m *Metrics) emitEntryLocked(out sink, e *results.Entry, cl *checkLabelSet, checkOnly bool) {
	c := e.Check
	checkLabels := seriesLabels{cl: cl}
	m.pairsLocked(out, &checkLabels)
	checkLabels.pairs = cl.pairs
	// Each asked whether wanted before the check is read: at 10,000 checks
	// reading it in every family's pass cost a scrape milliseconds.
	if out.wants(m.essential) {
		out.gauge(m.essential, checkLabels, boolValue(c.Essential))
	}
	if m.overruns != nil && out.wants(m.overrunsTotal) {
		out.counter(m.overrunsTotal, checkLabels, float64(m.overruns(cl.id)))
	}
	if m.throttled != nil && out.wants(m.throttledState) && throttlingKind(c.Kind) {
		factor, stopped := m.throttled(cl.id)
		state := 0.0
		switch {
		case stopped:
			state = 2
		case factor > 1:
			state = 1
		}
		// The normal state only with the details: alerts select > 0.
		if state != 0 || m.ntpDetails {
			out.gauge(m.throttledState, checkLabels, state)
		}
	}
	if checkOnly {
		return
	}

	var seenFamilies []string
	for i := range e.Results {
		r := &e.Results[i] // not a copy of every result for every family
		family := resultFamily(r)
		if slices.Contains(seenFamilies, family) {
			// One result per family is the contract; a second would make
			// the whole scrape fail on duplicate series.
			continue
		}
		seenFamilies = append(seenFamilies, family)
		rl := cl.family(family)
		m.pairsLocked(out, &seriesLabels{rl: rl})

		gauge := func(d *prometheus.Desc, v float64, extra ...*dto.LabelPair) {
			if !out.wants(d) {
				return
			}
			ls := seriesLabels{rl: rl, pairs: rl.pairs}
			if len(extra) > 0 {
				ls.pairs, ls.n = nil, copy(ls.extra[:], extra) // never more than two
			}
			out.gauge(d, ls, v)
		}
		gauge(m.up, boolValue(r.Up))
		if out.wants(m.reason) { // else no lookups of its pairs
			current := reasonOf(r)
			if m.allReasons {
				for _, reason := range m.reasons {
					gauge(m.reason, boolValue(reason == current), m.reasonPairs[reason])
				}
			} else {
				rp := m.reasonPairs[current]
				if rp == nil {
					rp = labelPair("reason", string(current))
				}
				gauge(m.reason, 1, rp)
			}
		}
		gauge(m.duration, r.Duration.Seconds())
		start := r.Start
		if start.IsZero() {
			start = e.Updated
		}
		gauge(m.lastRun, float64(start.UnixNano())/1e9)

		if m.phases && out.wants(m.phaseDuration) {
			// Asked first: reading the timings of 10,000 results for
			// every other family cost a scrape milliseconds.
			var seenPhases []probe.Phase
			for _, t := range r.Timings {
				if t.Phase == probe.PhaseNone || slices.Contains(seenPhases, t.Phase) {
					continue
				}
				seenPhases = append(seenPhases, t.Phase)
				gauge(m.phaseDuration, t.Duration.Seconds(), m.phasePairLocked(t.Phase))
			}
		}

		if p := r.Path; p != nil && !r.Up {
			// One series each per failing result: bounded by the checks.
			gauge(m.pathHop, float64(p.Hop))
			if out.wants(m.pathInfo) {
				gauge(m.pathInfo, 1, labelPair("location", string(p.Location)), labelPair("address", p.Address))
			}
		}

		if tf := r.Facts.TLSFacts; tf != nil {
			if !tf.NotAfter.IsZero() {
				gauge(m.certNotAfter, float64(tf.NotAfter.Unix()))
			}
			if tf.Version != "" && m.tlsDetails && out.wants(m.tlsVersion) {
				gauge(m.tlsVersion, 1, labelPair("version", tf.Version), labelPair("cipher", tf.Cipher))
			}
			if tf.HandshakeSeconds > 0 && m.tlsDetails {
				gauge(m.tlsHandshake, tf.HandshakeSeconds)
			}
		}

		if nf := r.Facts.NTPFacts; nf != nil {
			// Reachable and usable are separate facts; the measurements
			// exist only when a reply came back. The offset is exported for
			// a reachable but unusable server too: it is what was measured,
			// and alert rules combine it with connprobe_ntp_usable. The
			// details (WithNTPDetails) are left out by default.
			if m.ntpDetails {
				gauge(m.ntpReachable, boolValue(nf.Reachable))
			}
			gauge(m.ntpUsable, boolValue(nf.Usable))
			if nf.Reachable {
				gauge(m.ntpOffset, nf.OffsetSeconds)
				if m.ntpDetails {
					gauge(m.ntpRTT, nf.RTTSeconds)
					gauge(m.ntpStratum, float64(nf.Stratum))
					gauge(m.ntpRootDistance, nf.RootDistanceSeconds)
					gauge(m.ntpLeap, float64(nf.Leap))
				}
				// A kiss-o'-death explains a failing check: always.
				if (nf.KissCode != "" || m.ntpDetails) && out.wants(m.ntpKissCode) {
					gauge(m.ntpKissCode, 1, labelPair("kiss_code", kissCodeLabel(nf.KissCode)))
				}
			}
		}
	}
}

// collectUplink exports the uplink verdict: connprobe_uplink_up only while
// there is one (a made-up value would fire or silence alerts), and
// connprobe_uplink_info while it is down.
func (m *Metrics) collectUplink(ch chan<- prometheus.Metric) {
	if m.uplink == nil {
		return
	}
	v := m.uplink()
	switch v.State {
	case uplink.StateUp:
		ch <- prometheus.MustNewConstMetric(m.uplinkUp, prometheus.GaugeValue, 1)
	case uplink.StateDown:
		ch <- prometheus.MustNewConstMetric(m.uplinkUp, prometheus.GaugeValue, 0)
		ch <- prometheus.MustNewConstMetric(m.uplinkInfo, prometheus.GaugeValue, 1, string(v.Location), v.Gateway)
	}
}

// phasePairLocked is the phase label pair of p, built once.
func (m *Metrics) phasePairLocked(p probe.Phase) *dto.LabelPair {
	lp := m.phasePairs[p]
	if lp == nil {
		lp = labelPair("phase", string(p))
		m.phasePairs[p] = lp
	}
	return lp
}

// kissCodeLabel bounds a server-chosen kiss code to a fixed set of values.
func kissCodeLabel(code string) string {
	if code == "" {
		return kissNone
	}
	if slices.Contains(knownKissCodes, code) {
		return code
	}
	return kissOther
}

// rangeGroup is the store entries of the ports of one range, in config order.
type rangeGroup struct {
	labels    []string
	essential bool
	entries   []results.Entry
}

// collectRange exports the aggregates of one range group. A port counts as
// up only when every address family probed was up, and its status is that of
// its first failing family (else of its first result), so the status counts
// always add up to the number of ports.
func (m *Metrics) collectRange(ch chan<- prometheus.Metric, g *rangeGroup) {
	gauge := func(d *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, slices.Concat(g.labels, extra)...)
	}
	counts := make(map[string]int, len(rangeStatuses))
	var up, probed int
	var oldest time.Time
	for _, e := range g.entries {
		if !e.Ran() || len(e.Results) == 0 {
			counts[statusUnknown]++
			continue
		}
		probed++
		at := e.Updated
		for _, r := range e.Results {
			if !r.Start.IsZero() && r.Start.Before(at) {
				at = r.Start
			}
		}
		if oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
		status, portUp := portStatus(e.Results)
		counts[status]++
		if portUp {
			up++
		}
	}
	for _, st := range rangeStatuses {
		gauge(m.rangePorts, float64(counts[st]), st)
	}
	total := len(g.entries)
	gauge(m.rangeEssential, boolValue(g.essential))
	if m.overruns != nil {
		// The ports of a range share one schedule, hence one count.
		ch <- prometheus.MustNewConstMetric(m.rangeOverruns, prometheus.CounterValue,
			float64(m.overruns(g.entries[0].Check.ID())), g.labels...)
	}
	gauge(m.rangeCoverage, float64(probed)/float64(total))
	if probed == 0 {
		// No verdict yet: a made-up "down" would fire alerts at start-up.
		return
	}
	gauge(m.rangePortsUp, float64(up))
	gauge(m.rangeUp, boolValue(up == probed))
	if probed == total {
		gauge(m.rangeFullSweep, float64(oldest.UnixNano())/1e9)
	}
}

// portStatus folds the results of one port (one per address family) into a
// range status and whether the port was up.
func portStatus(rs []probe.Result) (status string, up bool) {
	pick := rs[0]
	up = true
	for _, r := range rs {
		if !r.Up {
			if up {
				pick = r
			}
			up = false
		}
	}
	reason := string(reasonOf(&pick))
	if !slices.Contains(rangeStatuses, reason) || reason == statusUnknown {
		reason = statusOther
	}
	return reason, up
}

func rangeLabelValues(c *probe.Check) []string {
	return []string{c.Profile, c.Name, c.Kind, c.Host, c.Range, c.Network}
}

// reasonOf is the result's reason; a prober that left it empty is a bug,
// reported as "error" rather than as an unlisted label value.
func reasonOf(r *probe.Result) probe.Reason {
	if r.Reason == "" {
		if r.Up {
			return probe.ReasonOK
		}
		return probe.ReasonInternalError
	}
	return r.Reason
}

func checkLabelValues(c *probe.Check) []string {
	return []string{c.Profile, c.Name, c.Kind, c.Host, strconv.Itoa(c.Port), c.Network}
}

// resultFamily is the ip_family label of r.
func resultFamily(r *probe.Result) string {
	if r.IPFamily == "" {
		return unknownFamily
	}
	return r.IPFamily
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Gatherer returns what /metrics serves: g (the registry this Metrics is
// registered on) plus the per-check families, built directly from the cached
// label pairs (familySink) rather than through the registry, whose checks
// and sorting of every metric were most of a scrape of thousands of checks.
// From the first call on, Collect leaves the per-check families out, so
// gathering g alone no longer has them.
func (m *Metrics) Gatherer(g prometheus.Gatherer) prometheus.Gatherer {
	m.direct.Store(true)
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := g.Gather()
		return mergeFamilies(mfs, m.gatherChecks()), err
	})
}

// gatherChecks builds the per-check families.
func (m *Metrics) gatherChecks() []*dto.MetricFamily {
	gen := m.store.Generation() // before the snapshot: see Generation
	entries := m.store.Latest()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.labels == nil || gen != m.gen || m.stale {
		m.reconfigureLocked(entries)
		m.gen = gen
	}
	out := newFamilySink(m.meta)
	m.emitSeriesLocked(out)
	for _, e := range entries {
		if e.Check.Range != "" {
			continue
		}
		m.emitEntryLocked(out, &e, m.labelsLocked(e.Check), false)
	}
	return out.sorted()
}

// mergeFamilies merges two lists of families sorted by name into one.
func mergeFamilies(a, b []*dto.MetricFamily) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := strings.Compare(a[0].GetName(), b[0].GetName()); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			// Cannot happen (Collect leaves these families out), but never
			// two families of one name.
			a[0].Metric = append(a[0].Metric, b[0].Metric...)
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}
