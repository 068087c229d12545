package metrics

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestLatencyHistMatchesClientGolang: the compact histogram writes the same
// native histogram as client_golang's (schema 3, at most 40 buckets, halving
// beyond), for latencies from microseconds to seconds, powers of two
// (bucket bounds) and zero included. (Irrational bounds may differ in the
// last bit from client_golang's table: no latency lands on one exactly.)
func TestLatencyHistMatchesClientGolang(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values func(r *rand.Rand) float64
		n      int
	}{
		{"loopback", func(r *rand.Rand) float64 { return 0.0002 * math.Exp(r.NormFloat64()*0.3) }, 500},
		{"wide, halving", func(r *rand.Rand) float64 { return math.Exp(r.Float64()*20 - 14) }, 3000},
		{"bounds and zero", func(r *rand.Rand) float64 {
			return []float64{0, 0.5, 0.25, 1, 2, 1.0 / 1024, 1.09, 1.0906}[r.IntN(8)]
		}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := prometheus.NewHistogram(prometheus.HistogramOpts{
				Name: "x", Help: "x", NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: maxLatencyBuckets,
				NativeHistogramZeroThreshold: prometheus.NativeHistogramZeroThresholdZero,
			})
			h := latencyHist{schema: latencySchema}
			r := rand.New(rand.NewPCG(1, 2))
			for range tc.n {
				v := tc.values(r)
				ref.Observe(v)
				h.observe(v)
			}
			var want dto.Metric
			if err := ref.Write(&want); err != nil {
				t.Fatal(err)
			}
			w := want.GetHistogram()
			var got dto.Histogram
			h.write(&got)
			if got.GetSchema() != w.GetSchema() || got.GetSampleCount() != w.GetSampleCount() ||
				math.Abs(got.GetSampleSum()-w.GetSampleSum()) > 1e-9*math.Abs(w.GetSampleSum()) || got.GetZeroCount() != w.GetZeroCount() {
				t.Fatalf("schema %d count %d sum %g zero %d, client_golang: schema %d count %d sum %g zero %d",
					got.GetSchema(), got.GetSampleCount(), got.GetSampleSum(), got.GetZeroCount(),
					w.GetSchema(), w.GetSampleCount(), w.GetSampleSum(), w.GetZeroCount())
			}
			if a, b := expand(got.GetPositiveSpan(), got.GetPositiveDelta()), expand(w.GetPositiveSpan(), w.GetPositiveDelta()); !slices.Equal(a, b) {
				t.Errorf("buckets differ:\n got  %v\n want %v", a, b)
			}
		})
	}
}

// expand turns spans and deltas into (index, count) pairs.
func expand(spans []*dto.BucketSpan, deltas []int64) [][2]int64 {
	var out [][2]int64
	idx, n, d := int64(0), int64(0), 0
	for i, s := range spans {
		if i == 0 {
			idx = int64(s.GetOffset())
		} else {
			idx += int64(s.GetOffset())
		}
		for range s.GetLength() {
			n += deltas[d]
			d++
			out = append(out, [2]int64{idx, n})
			idx++
		}
	}
	return out
}
