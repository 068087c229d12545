package metrics

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/connprobe/connprobe/internal/buildinfo"
	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// benchSite is n checks that have each run once: alternately a TCP check
// (ok) and a TLS check (ok, with TLS facts), by name so with a DNS phase.
// It returns what Gatherer serves.
func benchSite(b *testing.B, n int) (prometheus.Gatherer, *Metrics) {
	b.Helper()
	reg, m := benchRegistry(b, n)
	g := m.Gatherer(reg)                  // as the agent serves /metrics
	if _, err := g.Gather(); err != nil { // the first scrape builds the label cache
		b.Fatal(err)
	}
	return g, m
}

// benchRegistry is benchSite's checks, and the registry m is registered on.
func benchRegistry(tb testing.TB, n int) (*prometheus.Registry, *Metrics) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	store := results.New()
	m, err := New(reg, store, func(string) uint64 { return 0 }, buildinfo.Info{Version: "bench"},
		WithThrottled(func(string) (int, bool) { return 1, false }))
	if err != nil {
		tb.Fatal(err)
	}
	checks := make([]*probe.Check, n)
	for i := range checks {
		c := tcpCheck()
		if i%2 == 1 {
			c = tlsCheck()
		}
		c.Name = fmt.Sprintf("check-%d", i)
		c.Host = fmt.Sprintf("host-%d.example", i/4)
		checks[i] = c
	}
	store.SetChecks(checks)
	for _, c := range checks {
		r := okTLSResult(c)
		if c.Kind == "tcp" {
			r.Phase, r.Timings, r.Facts = probe.PhaseConnect, r.Timings[:2], probe.Facts{}
		}
		rs := []probe.Result{r}
		store.Put(c, rs)
		m.Record(c, rs)
	}
	return reg, m
}

// scrape gathers reg and encodes it in the text format, as /metrics does;
// it returns the body size and the number of series (samples).
func scrape(b *testing.B, reg prometheus.Gatherer, buf *bytes.Buffer) (bytes, series int) {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	buf.Reset()
	enc := expfmt.NewEncoder(buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			b.Fatal(err)
		}
		for _, mm := range mf.GetMetric() {
			series++
			if h := mm.GetHistogram(); h != nil {
				series += 1 + len(h.GetBucket()) // _sum, _count and the buckets (+Inf is counted by _count's line)
			}
		}
	}
	return buf.Len(), series
}

// BenchmarkScrape is one /metrics scrape (gather and text encoding) of n
// checks that have run; it reports the body size and series per check.
//
//	go test ./internal/metrics/ -run '^$' -bench BenchmarkScrape -benchmem
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) {
			reg, _ := benchSite(b, n)
			var buf bytes.Buffer
			size, series := scrape(b, reg, &buf)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				scrape(b, reg, &buf)
			}
			b.ReportMetric(float64(size)/float64(n), "bytes/check")
			b.ReportMetric(float64(series)/float64(n), "series/check")
		})
	}
}

// BenchmarkRecord is the cost of recording one completed run of a
// configured check.
func BenchmarkRecord(b *testing.B) {
	_, m := benchSite(b, 1000)
	c := m.store.Snapshot()[1].Check
	rs := []probe.Result{okTLSResult(c)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m.Record(c, rs)
	}
}

// discardWriter is a ResponseWriter that counts the body and keeps none of
// it, as a network connection would.
type discardWriter struct {
	header http.Header
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkHandlerText is one /metrics scrape of 10,000 checks through
// Handler in the text format without gzip: the text the handler builds
// under the lock, without the compressor's share or a client's.
//
//	go test ./internal/metrics/ -run '^$' -bench BenchmarkHandlerText -benchmem
func BenchmarkHandlerText(b *testing.B) {
	reg, m := benchRegistry(b, 10000)
	h := m.Handler(reg, nil)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	w := &discardWriter{header: http.Header{}}
	h.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.n = 0
		h.ServeHTTP(w, req)
	}
	b.ReportMetric(float64(w.n), "body-bytes")
}
