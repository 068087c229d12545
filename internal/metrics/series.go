package metrics

import (
	"math"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/connprobe/connprobe/probe"
)

// The run counters and the latency histogram of every check are kept here
// rather than in a prometheus.CounterVec and HistogramVec: those store a copy
// of every label pair per child and a native histogram of about 1.3 KB, which
// at 10,000 checks was most of the agent's heap (issue 10). A series here
// shares the check's label text (and, once a format that builds metric
// objects asked for them, its interned label pairs) and keeps its histogram
// as a sorted slice of the buckets it has seen.

// latencySchema is the native histogram resolution: bucket boundaries grow
// by a factor of 2^(2^-3), about 9%.
const latencySchema = 3

// maxLatencyBuckets bounds the native buckets of one series; beyond it the
// resolution halves (as client_golang does), so a check whose latency
// wanders cannot grow without bound.
const maxLatencyBuckets = 40

// series is the state Record accumulates for one result label set.
type series struct {
	labels *resultLabelSet
	runs   []reasonCount // ok first, then each reason as first seen
	hist   latencyHist
	pruned bool // no longer in Metrics.series: skipped, then dropped
}

// reasonCount is one connprobe_check_runs_total series: its reason pair
// (the reason is the pair's value) and count. The series' label pairs with
// the reason are built at scrape time where a sink needs them (the text
// sink does not): built once per series they were 112 bytes per check
// (issue 10).
type reasonCount struct {
	pair *dto.LabelPair
	n    uint64
}

func (s *series) count(reason probe.Reason, reasonPair *dto.LabelPair, inc uint64) {
	for i := range s.runs {
		if s.runs[i].pair.GetValue() == string(reason) {
			s.runs[i].n += inc
			return
		}
	}
	s.runs = append(s.runs, reasonCount{pair: reasonPair, n: inc})
}

// latencyHist is a native histogram of positive observations, with the
// classic buckets of latencyBuckets when classic is non-nil.
type latencyHist struct {
	schema  int32
	count   uint64
	sum     float64
	zero    uint64   // observations of 0 (a clock that did not move)
	buckets []bucket // sorted by index
	classic []uint64 // per latencyBuckets bound, not cumulative; nil without classic buckets
}

type bucket struct {
	index int32
	n     uint64
}

// bucketIndex is the native bucket of v > 0 at schema s: bucket i holds
// (2^((i-1)/2^s), 2^(i/2^s)]. As client_golang: from Frexp's exponent and a
// search of the mantissa among the schema's bounds, so powers of two land
// exactly on their bucket's upper bound.
func bucketIndex(v float64, schema int32) int32 {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if schema > 0 {
		bounds := nativeBounds[schema]
		i, _ := slices.BinarySearch(bounds, frac)
		return int32(i + (exp-1)*len(bounds))
	}
	key := exp
	if frac == 0.5 {
		key--
	}
	offset := (1 << -schema) - 1
	return int32((key + offset) >> -schema)
}

// nativeBounds[s] are the mantissas 2^(j/2^s)/2 of the bucket bounds of
// schema s (1..latencySchema) within one power of two; computed once, never
// changed.
var nativeBounds = func() (b [latencySchema + 1][]float64) {
	for s := 1; s <= latencySchema; s++ {
		n := 1 << s
		b[s] = make([]float64, n)
		for j := range n {
			b[s][j] = math.Ldexp(math.Exp2(float64(j)/float64(n)), -1)
		}
	}
	return b
}()

func (h *latencyHist) observe(v float64) {
	h.count++
	h.sum += v
	if h.classic != nil {
		i, _ := slices.BinarySearch(latencyBuckets, v)
		if i < len(h.classic) {
			h.classic[i]++
		}
	}
	if v <= 0 {
		h.zero++
		return
	}
	idx := bucketIndex(v, h.schema)
	i, found := slices.BinarySearchFunc(h.buckets, idx, func(b bucket, t int32) int { return int(b.index - t) })
	if found {
		h.buckets[i].n++
		return
	}
	h.buckets = slices.Insert(h.buckets, i, bucket{index: idx, n: 1})
	for len(h.buckets) > maxLatencyBuckets && h.schema > -4 {
		h.halve()
	}
}

// halve merges bucket pairs: schema s-1 bucket j holds s buckets 2j-1 and 2j.
func (h *latencyHist) halve() {
	h.schema--
	out := h.buckets[:0]
	for _, b := range h.buckets {
		idx := (b.index + 1) >> 1 // ceil(i/2), also for negative i
		if len(out) > 0 && out[len(out)-1].index == idx {
			out[len(out)-1].n += b.n
			continue
		}
		out = append(out, bucket{index: idx, n: b.n})
	}
	h.buckets = out
}

// write fills out as a native histogram (and the classic buckets, if any).
func (h *latencyHist) write(out *dto.Histogram) {
	count, sum, schema, zt, zero := h.count, h.sum, h.schema, 0.0, h.zero
	out.SampleCount, out.SampleSum = &count, &sum
	out.Schema, out.ZeroThreshold, out.ZeroCount = &schema, &zt, &zero
	if len(h.buckets) == 0 {
		// A span of length 0 marks the histogram as native before its
		// first observation, as client_golang does.
		out.PositiveSpan = []*dto.BucketSpan{{Offset: proto32(0), Length: protoU32(0)}}
	}
	var prevIdx int32
	var prevN int64
	for i, b := range h.buckets {
		switch {
		case i == 0:
			out.PositiveSpan = append(out.PositiveSpan, &dto.BucketSpan{Offset: proto32(b.index), Length: protoU32(1)})
		case b.index == prevIdx+1:
			*out.PositiveSpan[len(out.PositiveSpan)-1].Length++
		default:
			out.PositiveSpan = append(out.PositiveSpan, &dto.BucketSpan{Offset: proto32(b.index - prevIdx - 1), Length: protoU32(1)})
		}
		out.PositiveDelta = append(out.PositiveDelta, int64(b.n)-prevN)
		prevIdx, prevN = b.index, int64(b.n)
	}
	if h.classic != nil {
		var cum uint64
		for i, n := range h.classic {
			cum += n
			c, ub := cum, latencyBuckets[i]
			out.Bucket = append(out.Bucket, &dto.Bucket{CumulativeCount: &c, UpperBound: &ub})
		}
	}
}

func proto32(v int32) *int32    { return &v }
func protoU32(v uint32) *uint32 { return &v }

// histMetric is one latency series at scrape time.
type histMetric struct {
	desc  *prometheus.Desc
	pairs []*dto.LabelPair
	h     dto.Histogram
}

func (h *histMetric) Desc() *prometheus.Desc { return h.desc }

func (h *histMetric) Write(out *dto.Metric) error {
	out.Label = h.pairs
	out.Histogram = &h.h
	return nil
}

// pairInterner hands out one *dto.LabelPair per name and value, so that the
// label pairs of thousands of checks share their common values (kind,
// protocol, profile, host, ip_family).
type pairInterner map[[2]string]*dto.LabelPair

func (in pairInterner) pair(name, value string) *dto.LabelPair {
	k := [2]string{name, value}
	p := in[k]
	if p == nil {
		p = labelPair(name, value)
		in[k] = p
	}
	return p
}

// familyMeta is what a family built without the registry needs of its desc.
type familyMeta struct{ name, help string }

// sink receives the per-check series: the registry's channel (Collect),
// families built directly (Gatherer, protobuf), or text (textSink).
type sink interface {
	// wants reports whether d's series are built at all.
	wants(d *prometheus.Desc) bool
	gauge(d *prometheus.Desc, ls seriesLabels, v float64)
	counter(d *prometheus.Desc, ls seriesLabels, v float64)
	histogram(d *prometheus.Desc, ls seriesLabels, h *latencyHist)
}

// seriesLabels are the labels of one series: a check's (cl), or a result's
// (rl: the check's and the ip_family), plus n extra pairs. The text sink
// writes them from the check's rendered labels; pairs, when set, are all of
// them as built once, else the sinks that need pairs build them (dtoPairs).
type seriesLabels struct {
	pairs []*dto.LabelPair
	cl    *checkLabelSet
	rl    *resultLabelSet
	extra [2]*dto.LabelPair
	n     int
}

func (l *seriesLabels) dtoPairs() []*dto.LabelPair {
	if l.pairs != nil {
		return l.pairs
	}
	var pairs []*dto.LabelPair
	if l.rl != nil {
		pairs = l.rl.pairs
	} else {
		pairs = l.cl.pairs
	}
	for _, p := range l.extra[:l.n] {
		pairs = withPair(pairs, p)
	}
	return pairs
}

type chanSink struct{ ch chan<- prometheus.Metric }

func (chanSink) wants(*prometheus.Desc) bool { return true }

func (s chanSink) gauge(d *prometheus.Desc, ls seriesLabels, v float64) {
	s.ch <- &cheapMetric{desc: d, pairs: ls.dtoPairs(), value: v}
}

func (s chanSink) counter(d *prometheus.Desc, ls seriesLabels, v float64) {
	s.ch <- &cheapMetric{desc: d, pairs: ls.dtoPairs(), value: v, counter: true}
}

func (s chanSink) histogram(d *prometheus.Desc, ls seriesLabels, h *latencyHist) {
	hm := &histMetric{desc: d, pairs: ls.dtoPairs()}
	h.write(&hm.h)
	s.ch <- hm
}

// familySink builds metric families directly, in slabs: a scrape of 10,000
// checks would otherwise spend most of its time in the registry's per-metric
// checks and sorting, and in allocating one object per value.
type familySink struct {
	meta     map[*prometheus.Desc]familyMeta
	families map[*prometheus.Desc]*dto.MetricFamily
	metrics  []dto.Metric
	values   []float64
	// only, when set, is the one family built (Handler encodes one at a
	// time); every other series is skipped.
	only *prometheus.Desc
}

func newFamilySink(meta map[*prometheus.Desc]familyMeta) *familySink {
	return &familySink{meta: meta, families: map[*prometheus.Desc]*dto.MetricFamily{}}
}

func (s *familySink) add(d *prometheus.Desc, typ dto.MetricType, pairs []*dto.LabelPair) *dto.Metric {
	f := s.families[d]
	if f == nil {
		meta := s.meta[d]
		name, help := meta.name, meta.help
		f = &dto.MetricFamily{Name: &name, Help: &help, Type: typ.Enum()}
		s.families[d] = f
	}
	if len(s.metrics) == 0 {
		s.metrics = make([]dto.Metric, 1024)
	}
	m := &s.metrics[0]
	s.metrics = s.metrics[1:]
	m.Label = pairs
	f.Metric = append(f.Metric, m)
	return m
}

func (s *familySink) value(v float64) *float64 {
	if len(s.values) == 0 {
		s.values = make([]float64, 1024)
	}
	p := &s.values[0]
	s.values = s.values[1:]
	*p = v
	return p
}

func (s *familySink) wants(d *prometheus.Desc) bool { return s.only == nil || d == s.only }

func (s *familySink) gauge(d *prometheus.Desc, ls seriesLabels, v float64) {
	if s.only != nil && d != s.only {
		return
	}
	s.add(d, dto.MetricType_GAUGE, ls.dtoPairs()).Gauge = &dto.Gauge{Value: s.value(v)}
}

func (s *familySink) counter(d *prometheus.Desc, ls seriesLabels, v float64) {
	if s.only != nil && d != s.only {
		return
	}
	s.add(d, dto.MetricType_COUNTER, ls.dtoPairs()).Counter = &dto.Counter{Value: s.value(v)}
}

func (s *familySink) histogram(d *prometheus.Desc, ls seriesLabels, h *latencyHist) {
	if s.only != nil && d != s.only {
		return
	}
	out := &dto.Histogram{}
	h.write(out)
	s.add(d, dto.MetricType_HISTOGRAM, ls.dtoPairs()).Histogram = out
}

// sorted returns the families by name.
func (s *familySink) sorted() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(s.families))
	for _, f := range s.families {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out
}
