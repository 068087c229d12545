package metrics

import (
	"bufio"
	"github.com/klauspost/compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/connprobe/connprobe/internal/results"
)

// Handler serves /metrics: the families of g (the registry this Metrics is
// registered on) and then the per-check families, in the format the scraper
// negotiates (text, or protobuf for native histograms), gzip when asked.
// The per-check families are built and encoded one at a time, so a scrape
// of 10,000 checks holds one family in memory, not 110,000 series at once:
// that was most of the agent's peak memory (issue 10). From the first call
// on, Collect leaves the per-check families out, as with Gatherer.
func (m *Metrics) Handler(g prometheus.Gatherer, logger *slog.Logger) http.Handler {
	m.direct.Store(true)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	descs := m.checkDescs()
	slices.SortFunc(descs, func(a, b *prometheus.Desc) int { return strings.Compare(m.meta[a].name, m.meta[b].name) })
	return &metricsHandler{m: m, g: g, descs: descs, logger: logger}
}

type metricsHandler struct {
	m      *Metrics
	g      prometheus.Gatherer
	descs  []*prometheus.Desc // the per-check families, by name
	logger *slog.Logger
	// scratch holds *scrapeScratch: the buffers and compressor of a scrape,
	// reused by the next one (a scrape of 10,000 checks allocated 15 MB).
	scratch sync.Pool
}

// scrapeScratch is what one scrape writes with, kept for the next.
type scrapeScratch struct {
	bw   *bufio.Writer
	gz   *gzip.Writer
	text textSink
	// The arrays of scrapeView's entries and labels (1.3 MB at 10,000
	// checks), emptied of their pointers between scrapes.
	entries []results.Entry
	labels  []*checkLabelSet
}

// textChunk is how much text is appended under the lock before it is
// written out (to the compressor and the network) without it.
const textChunk = 32 << 10

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mfs, err := h.g.Gather()
	if err != nil {
		// As promhttp's ContinueOnError: serve what was gathered.
		h.logger.Error("gathering metrics", "err", err)
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	w.Header().Set("Content-Type", string(format))

	sc, _ := h.scratch.Get().(*scrapeScratch)
	if sc == nil {
		sc = &scrapeScratch{bw: bufio.NewWriterSize(nil, 64<<10)}
	}
	defer h.release(sc)
	var dst io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		if sc.gz == nil {
			// Stateless: each 64 KB write is compressed on its own (in
			// 32 KB blocks, the second with the first's last 8 KB as
			// dictionary), with tables on the stack and pooled token
			// buffers, instead of BestSpeed's 0.8 MB of heap per writer
			// (history, hash table, tokens), which every scrape of a
			// small agent allocated anew (collections empty the pool
			// between scrapes): that was 1.5-2 MiB of its peak RSS. On
			// 10,000 checks' text it writes 8% more bytes than
			// BestSpeed (0.70 MB, not 0.65 of 15.6 MB; 5% more at 200
			// checks) in less CPU (18 ms, not 21-33).
			// klauspost/compress, not compress/gzip: quicker and
			// smaller on this text at every fast level.
			sc.gz, _ = gzip.NewWriterLevel(w, gzip.StatelessCompression)
		} else {
			sc.gz.Reset(w)
		}
		defer sc.gz.Close()
		dst = sc.gz
	}
	bw := sc.bw
	bw.Reset(dst)
	defer bw.Flush()
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			h.logger.Debug("writing metrics", "err", err)
			return
		}
	}
	text := format.FormatType() == expfmt.TypeTextPlain
	v := h.m.prepare(text, sc)
	if text {
		defer h.m.scrapeDone()
		// Written straight as text: no metric objects at all.
		for _, d := range h.descs {
			if err := h.m.writeFamilyText(bw, sc, d, v); err != nil {
				h.logger.Debug("writing metrics", "err", err)
				return
			}
		}
		return
	}
	for _, d := range h.descs {
		mf := h.m.gatherFamily(d, v)
		if mf == nil {
			continue
		}
		if err := enc.Encode(mf); err != nil {
			h.logger.Debug("writing metrics", "err", err)
			return
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		_ = c.Close()
	}
}

// release keeps sc for the next scrape, without the references it took
// from this one.
func (h *metricsHandler) release(sc *scrapeScratch) {
	sc.bw.Reset(nil)
	if sc.gz != nil {
		sc.gz.Reset(io.Discard)
	}
	if cap(sc.text.buf) > 4*textChunk {
		sc.text.buf = nil // one very long line (a huge label value): not kept
	}
	sc.text.buf = sc.text.buf[:0]
	// Kept without what they point to: results the store has replaced
	// since, and label sets of a configuration since reloaded, are not
	// held alive by an idle buffer.
	clear(sc.entries)
	clear(sc.labels)
	sc.entries, sc.labels = sc.entries[:0], sc.labels[:0]
	sc.text.only = nil
	h.scratch.Put(sc)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if enc, _, _ := strings.Cut(strings.TrimSpace(part), ";"); enc == "gzip" {
			return true
		}
	}
	return false
}

// scrapeView is what one scrape reads: the store's entries, the labels of
// each (looked up once per scrape, not once per family: nil for a port
// range's entries, exported as aggregates), and whether Record has series
// (copied into the scratch, for the text format).
type scrapeView struct {
	entries []results.Entry
	labels  []*checkLabelSet
	series  bool
	// What some result or check has, for the families that exist only
	// with it: a family none has is not walked at all (at 10,000 checks a
	// walk of every check costs about a millisecond).
	tls, ntp, failingPath, throttling bool
}

// may reports whether the family of d can have series in v: false only
// for the families emitEntryLocked writes from facts that no check in v
// has (a test with every kind of fact holds the result to the registry's).
func (m *Metrics) may(d *prometheus.Desc, v *scrapeView) bool {
	switch d {
	case m.certNotAfter, m.tlsVersion, m.tlsHandshake:
		return v.tls
	case m.ntpReachable, m.ntpUsable, m.ntpOffset, m.ntpRTT, m.ntpStratum, m.ntpRootDistance, m.ntpLeap, m.ntpKissCode:
		return v.ntp
	case m.pathHop, m.pathInfo:
		return v.failingPath
	case m.throttledState:
		return v.throttling
	}
	return true
}

// prepare takes the store's snapshot for one scrape, into sc's arrays, and
// makes the label cache current; for the text format it counts the scrape
// as walking seriesOrder until scrapeDone.
func (m *Metrics) prepare(text bool, sc *scrapeScratch) scrapeView {
	gen := m.store.Generation() // before the snapshot: see Generation
	entries := m.store.LatestInto(sc.entries)
	sc.entries = entries
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.labels == nil || gen != m.gen || m.stale {
		m.reconfigureLocked(entries)
		m.gen = gen
	}
	sc.labels = slices.Grow(sc.labels[:0], len(entries))[:len(entries)]
	clear(sc.labels)
	v := scrapeView{entries: entries, labels: sc.labels, series: len(m.series) > 0}
	for i, e := range entries {
		if e.Check.Range != "" {
			continue
		}
		v.labels[i] = m.labelsLocked(e.Check)
		v.throttling = v.throttling || throttlingKind(e.Check.Kind)
		for j := range e.Results {
			r := &e.Results[j]
			v.tls = v.tls || r.Facts.TLSFacts != nil
			v.ntp = v.ntp || r.Facts.NTPFacts != nil
			v.failingPath = v.failingPath || r.Path != nil && !r.Up
		}
	}
	if text {
		m.scraping++
	}
	return v
}

// scrapeDone ends a text scrape that prepare began.
func (m *Metrics) scrapeDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scraping--
	m.compactLocked()
}

// writeFamilyText writes the per-check family of d in the text format to w.
// The lines are made under m.mu in chunks and written out without it, so
// that a slow client never holds up Record (and with it the probes).
func (m *Metrics) writeFamilyText(w io.Writer, sc *scrapeScratch, d *prometheus.Desc, v scrapeView) error {
	t := &sc.text
	t.family(d, m.meta[d])
	flush := func() error {
		_, err := w.Write(t.buf)
		t.buf = t.buf[:0]
		return err
	}
	if d == m.runsTotal || d == m.latency {
		// A chunk at a time, as the other families: no copy of every
		// series' counters (at 10,000 checks about 2 MB held through the
		// scrape). Series Record adds meanwhile are appended, and
		// prepare..scrapeDone keeps pruning from moving the rest.
		for i, done := 0, false; !done; {
			m.mu.Lock()
			for ; i < len(m.seriesOrder) && len(t.buf) < textChunk; i++ {
				if s := m.seriesOrder[i]; !s.pruned {
					m.emitSeries(t, s)
				}
			}
			done = i >= len(m.seriesOrder)
			m.mu.Unlock()
			if err := flush(); err != nil {
				return err
			}
		}
		return nil
	}
	if !m.may(d, &v) {
		return nil
	}
	checkOnly := m.checkLevel(d)
	for i := 0; i < len(v.entries); {
		m.mu.Lock()
		for ; i < len(v.entries) && len(t.buf) < textChunk; i++ {
			if cl := v.labels[i]; cl != nil {
				m.emitEntryLocked(t, &v.entries[i], cl, checkOnly)
			}
		}
		m.mu.Unlock()
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// emitFamilyLocked emits the series of d alone into out (which filters by
// d); it takes m.mu.
func (m *Metrics) emitFamilyLocked(out sink, d *prometheus.Desc, v scrapeView) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d == m.runsTotal || d == m.latency {
		if v.series {
			m.emitSeriesLocked(out)
		}
		return
	}
	checkOnly := m.checkLevel(d)
	for i := range v.entries {
		if cl := v.labels[i]; cl != nil {
			m.emitEntryLocked(out, &v.entries[i], cl, checkOnly)
		}
	}
}

// gatherFamily builds the per-check family of d alone; nil when it has no
// series.
func (m *Metrics) gatherFamily(d *prometheus.Desc, v scrapeView) *dto.MetricFamily {
	if !m.may(d, &v) {
		return nil
	}
	out := newFamilySink(m.meta)
	out.only = d
	m.emitFamilyLocked(out, d, v)
	return out.families[d]
}
