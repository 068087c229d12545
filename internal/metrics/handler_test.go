package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/connprobe/connprobe/internal/results"
	"github.com/connprobe/connprobe/probe"
)

// bigSite is n checks of every shape the text writer inserts pairs for: TCP
// up, TLS up over IPv4 and timing out over IPv6, NTP with facts and a kiss
// code, failing traced checks (path pairs), names the text format escapes,
// and a port range (withRange); n large enough that every family is written
// in several chunks.
func bigSite(t *testing.T, n int, withRange bool, opts ...Option) (*prometheus.Registry, *results.Store, *Metrics, []*probe.Check) {
	t.Helper()
	reg, store, m := newTestMetrics(t, func(id string) uint64 { return uint64(len(id) % 3) }, append(opts,
		WithThrottled(func(id string) (int, bool) { return len(id)%3 + 1, len(id)%5 == 0 }))...)
	var checks []*probe.Check
	for i := range n {
		var c *probe.Check
		switch i % 5 {
		case 0:
			c = tcpCheck()
		case 1:
			c = tlsCheck()
		case 2:
			c = &probe.Check{Name: "clock", Kind: "ntp", Host: "ntp.example", Port: 123, Network: "udp", Interval: time.Minute}
		case 3:
			c = &probe.Check{Name: "blocked", Kind: "tcp", Host: "192.0.2.7", Port: 22, Network: "tcp", Essential: true}
		case 4:
			c = &probe.Check{Name: "q\"uoted\\ and\nnewline", Profile: "p\\", Kind: "tcp", Host: "h\"", Port: 80, Network: "tcp"}
		}
		c.Name = fmt.Sprintf("%s-%d", c.Name, i)
		checks = append(checks, c)
	}
	if withRange {
		checks = append(checks, &probe.Check{Name: "rtp", Kind: "udp", Host: "192.0.2.8", Port: 10000, Network: "udp", Range: "10000-10001"})
	}
	store.SetChecks(checks)
	for i, c := range checks {
		if i%50 == 49 {
			continue // not run yet
		}
		rs := siteResults(c, i)
		store.Put(c, rs)
		m.Record(c, rs)
	}
	return reg, store, m, checks
}

// siteResults is the i-th run's results of a check of bigSite.
func siteResults(c *probe.Check, i int) []probe.Result {
	switch {
	case c.Kind == "tls":
		return []probe.Result{okTLSResult(c), {Check: c, IPFamily: probe.FamilyIPv6, Reason: probe.ReasonTimeout, Phase: probe.PhaseConnect, Start: start}}
	case c.Kind == "ntp":
		r := okTCPResult(c)
		r[0].Facts.NTPFacts = &probe.NTPFacts{Reachable: true, Usable: i%2 == 0, Stratum: 2, OffsetSeconds: float64(i) / 1e4, KissCode: []string{"", "RATE", "XYZW"}[i%3]}
		return r
	case c.Essential:
		return []probe.Result{{Check: c, IPFamily: probe.FamilyIPv4, Reason: probe.ReasonRejected, Phase: probe.PhaseConnect, Start: start,
			Duration: time.Duration(i) * time.Microsecond,
			Path:     &probe.Path{Location: probe.PathLocation("gateway"), Hop: 1, Address: fmt.Sprintf("192.0.2.%d", i%250)}}}
	default:
		r := okTCPResult(c)
		r[0].Duration = time.Duration(i) * time.Microsecond
		return r
	}
}

// scrapeText is one /metrics scrape of h in the text format.
func scrapeText(t *testing.T, h http.Handler, gz bool) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body io.Reader = rec.Body
	if gz {
		if rec.Header().Get("Content-Encoding") != "gzip" {
			t.Fatal("gzip asked for, not given")
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// textFamilies splits a text exposition into its families: the HELP and
// TYPE lines and the sorted samples of each. A family that comes twice (its
// lines not together) fails the test.
func textFamilies(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var cur string
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if name, ok := strings.CutPrefix(l, "# HELP "); ok {
			cur, _, _ = strings.Cut(name, " ")
			if _, dup := out[cur]; dup {
				t.Fatalf("family %s written twice", cur)
			}
		}
		out[cur] = append(out[cur], l)
	}
	for name, lines := range out {
		slices.Sort(lines[2:])
		out[name] = lines
	}
	return out
}

// registryText is what the registry writes of reg: the reference.
func registryText(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
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

// TestHandlerWritesWhatTheRegistryWrites: the handler's text, plain and
// gzip, is the registry's (client_golang's encoder over Collect) family by
// family, HELP and TYPE included, for a site large enough that each family
// is written in several chunks; and it parses.
func TestHandlerWritesWhatTheRegistryWrites(t *testing.T) {
	for i, opts := range [][]Option{nil, {WithAllReasons(), WithLatencyBuckets(), WithPhases(), WithTLSDetails(), WithNTPDetails()}} {
		withRange := i == 0 // without: the registry's part reads no entries
		regC, _, _, _ := bigSite(t, 1500, withRange, opts...)
		want := textFamilies(t, registryText(t, regC))
		regH, _, mH, _ := bigSite(t, 1500, withRange, opts...)
		h := mH.Handler(regH, nil)
		for _, gz := range []bool{false, true} {
			for range 2 { // the second scrape reuses the first one's buffers
				text := scrapeText(t, h, gz)
				got := textFamilies(t, text)
				for name, lines := range want {
					if !slices.Equal(got[name], lines) {
						t.Errorf("gzip %v: family %s differs from the registry's (%d lines, want %d)", gz, name, len(got[name]), len(lines))
					}
				}
				for name := range got {
					if want[name] == nil {
						t.Errorf("gzip %v: family %s that the registry does not write", gz, name)
					}
				}
				p := expfmt.NewTextParser(model.LegacyValidation)
				if _, err := p.TextToMetricFamilies(strings.NewReader(text)); err != nil {
					t.Errorf("gzip %v: does not parse: %v", gz, err)
				}
			}
		}
	}
}

// TestScrapeWhileRecording scrapes while runs are recorded and the
// configuration is reloaded (run it with -race): every scrape parses and has
// every check's essential series.
func TestScrapeWhileRecording(t *testing.T) {
	reg, store, m, checks := bigSite(t, 600, true)
	h := m.Handler(reg, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := checks[i%len(checks)]
			rs := siteResults(c, i)
			store.Put(c, rs)
			m.Record(c, rs)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			store.SetChecks(checks) // a reload that changes nothing
		}
	}()
	for i := range 20 {
		text := scrapeText(t, h, i%2 == 0)
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Fatalf("scrape %d does not parse: %v", i, err)
		}
		if n := len(mfs["connprobe_check_essential"].GetMetric()); n != len(checks)-1 {
			t.Fatalf("scrape %d: %d essential series, want %d", i, n, len(checks)-1)
		}
	}
	close(stop)
	wg.Wait()
}

// failingWriter is a client that goes away after limit bytes.
type failingWriter struct {
	header http.Header
	n      int
	limit  int
}

func (w *failingWriter) Header() http.Header { return w.header }
func (w *failingWriter) WriteHeader(int)     {}
func (w *failingWriter) Write(b []byte) (int, error) {
	if w.n+len(b) > w.limit {
		return 0, io.ErrClosedPipe
	}
	w.n += len(b)
	return len(b), nil
}

// TestScrapeStopsWhenTheClientGoes: a scrape whose client stops reading
// returns (the compressor's goroutine included), and the next scrape, on
// the same buffers, is whole.
func TestScrapeStopsWhenTheClientGoes(t *testing.T) {
	reg, _, m, _ := bigSite(t, 1500, false)
	h := m.Handler(reg, nil)
	want := textFamilies(t, scrapeText(t, h, false))
	for _, gz := range []bool{false, true} {
		for _, limit := range []int{0, 100, 5000, 40000} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(&failingWriter{header: http.Header{}, limit: limit}, req)
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("gzip %v, client gone after %d bytes: the scrape did not return", gz, limit)
			}
			got := textFamilies(t, scrapeText(t, h, gz))
			for name, lines := range want {
				if !strings.HasPrefix(name, "connprobe_check") {
					continue // process and Go figures change between scrapes
				}
				if !slices.Equal(got[name], lines) {
					t.Errorf("gzip %v, after a client gone after %d bytes: family %s differs", gz, limit, name)
				}
			}
		}
	}
}

// protoFamilies is every family of mfs by name, its metrics as text in a
// stable order.
func protoFamilies(mfs []*dto.MetricFamily) map[string][]string {
	out := map[string][]string{}
	for _, mf := range mfs {
		var ms []string
		for _, m := range mf.GetMetric() {
			ms = append(ms, prototext.Format(m))
		}
		slices.Sort(ms)
		out[mf.GetName()] = append([]string{mf.GetHelp(), mf.GetType().String()}, ms...)
	}
	return out
}

// TestHandlerServesProtobuf: a scraper that asks for protobuf (a Prometheus
// with native histograms) gets the registry's families, the latency as a
// native histogram, plain and gzip.
func TestHandlerServesProtobuf(t *testing.T) {
	regC, _, _, _ := bigSite(t, 300, true)
	mfs, err := regC.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := protoFamilies(mfs)
	regH, _, mH, _ := bigSite(t, 300, true)
	h := mH.Handler(regH, nil)
	for _, gz := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		format := expfmt.Format(rec.Header().Get("Content-Type"))
		if format.FormatType() != expfmt.TypeProtoDelim {
			t.Fatalf("gzip %v: served %q, not protobuf", gz, format)
		}
		var body io.Reader = rec.Body
		if gz {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		dec := expfmt.NewDecoder(body, format)
		var got []*dto.MetricFamily
		for {
			mf := &dto.MetricFamily{}
			if err := dec.Decode(mf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("gzip %v: %v", gz, err)
			}
			got = append(got, mf)
		}
		gotF := protoFamilies(got)
		for name, w := range want {
			if !slices.Equal(gotF[name], w) {
				t.Errorf("gzip %v: family %s differs from the registry's", gz, name)
			}
		}
		if len(gotF) != len(want) {
			t.Errorf("gzip %v: %d families, want %d", gz, len(gotF), len(want))
		}
		native := false
		for _, mf := range got {
			if mf.GetName() == "connprobe_check_latency_seconds" {
				for _, m := range mf.GetMetric() {
					native = native || m.GetHistogram().Schema != nil
				}
			}
		}
		if !native {
			t.Errorf("gzip %v: no native latency histogram", gz)
		}
	}
}

// hookWriter calls hook at its first Write, then discards and keeps.
type hookWriter struct {
	header http.Header
	hook   func()
	body   bytes.Buffer
}

func (w *hookWriter) Header() http.Header { return w.header }
func (w *hookWriter) WriteHeader(int)     {}
func (w *hookWriter) Write(b []byte) (int, error) {
	if w.hook != nil {
		w.hook()
		w.hook = nil
	}
	return w.body.Write(b)
}

// TestScrapeWhilePruning: a reload that removes checks while a text scrape
// writes (between its chunks) prunes their counters without moving the
// series the scrape has yet to write: none is written twice or left out,
// the pruned ones are not written, and they are dropped once the scrape
// ends.
func TestScrapeWhilePruning(t *testing.T) {
	reg, store, m, checks := bigSite(t, 600, false)
	h := m.Handler(reg, nil)
	scrapeText(t, h, false)
	keep := checks[:300]
	w := &hookWriter{header: http.Header{}, hook: func() {
		store.SetChecks(keep)
		if _, err := reg.Gather(); err != nil { // prunes
			t.Error(err)
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.seriesOrder) == len(m.series) {
			t.Errorf("pruned while a scrape walks the series: %d series, %d in order", len(m.series), len(m.seriesOrder))
		}
	}}
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.hook != nil {
		t.Fatal("the scrape wrote nothing")
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(&w.body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	kept := map[string]bool{}
	for _, c := range keep {
		kept[c.Name] = true
	}
	runs := 0
	for _, fam := range []string{"connprobe_check_runs_total", "connprobe_check_latency_seconds"} {
		for _, mt := range mfs[fam].GetMetric() {
			runs++
			for _, p := range mt.GetLabel() {
				if p.GetName() == "check" && !kept[p.GetValue()] {
					t.Errorf("%s of removed check %q written", fam, p.GetValue())
				}
			}
		}
	}
	if runs == 0 {
		t.Fatal("no run counters written")
	}
	m.mu.Lock()
	n, order := len(m.series), len(m.seriesOrder)
	m.mu.Unlock()
	if n != order {
		t.Errorf("after the scrape: %d series, %d in order", n, order)
	}
	// The reference: the registry's text of the same site reloaded alike.
	regC, storeC, _, checksC := bigSite(t, 600, false)
	storeC.SetChecks(checksC[:len(keep)])
	want, got := textFamilies(t, registryText(t, regC)), textFamilies(t, scrapeText(t, h, false))
	for _, fam := range []string{"connprobe_check_runs_total", "connprobe_check_latency_seconds"} {
		if !slices.Equal(got[fam], want[fam]) {
			t.Errorf("next scrape: family %s differs from the registry's: %d and %d lines", fam, len(got[fam]), len(want[fam]))
		}
	}
}

// TestScrapeAllocationPerCheck: a scrape in the steady state (after one)
// of checks that are up allocates next to nothing per check: its snapshot
// and labels go into the arrays kept from the last scrape. A scrape that
// allocated them anew (1.3 MB at 10,000 checks, and with the memory limit a
// garbage collection of the whole heap at nearly every scrape) would show
// about 100 bytes per check.
func TestScrapeAllocationPerCheck(t *testing.T) {
	if raceDetector {
		t.Skip("sync.Pool drops what is put back at random under the race detector")
	}
	perScrape := func(n int) float64 {
		reg, m := benchRegistry(t, n)
		h := m.Handler(reg, nil)
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		req.Header.Set("Accept-Encoding", "gzip")
		w := &discardWriter{header: http.Header{}}
		// Off before the first scrape puts its scratch back: a collection
		// in between would free it. One P: a sync.Pool finds what another
		// P put back only where that P did not keep it for itself.
		defer debug.SetGCPercent(debug.SetGCPercent(-1))
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		h.ServeHTTP(w, req)
		const scrapes = 5
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range scrapes {
			h.ServeHTTP(w, req)
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / scrapes
	}
	small, large := perScrape(1000), perScrape(5000)
	if slope := (large - small) / 4000; slope > 16 {
		t.Errorf("a scrape allocates %.0f bytes per check (%.0f at 1,000 checks, %.0f at 5,000), want at most 16", slope, small, large)
	}
}
