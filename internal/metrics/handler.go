package metrics

import (
	"bufio"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

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
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mfs, err := h.g.Gather()
	if err != nil {
		// As promhttp's ContinueOnError: serve what was gathered.
		h.logger.Error("gathering metrics", "err", err)
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	w.Header().Set("Content-Type", string(format))
	var dst io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer gz.Close()
		dst = gz
	}
	bw := bufio.NewWriterSize(dst, 64<<10)
	defer bw.Flush()
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			h.logger.Debug("writing metrics", "err", err)
			return
		}
	}
	v := h.m.prepare()
	if format.FormatType() == expfmt.TypeTextPlain {
		// Written straight as text: no metric objects at all.
		for _, d := range h.descs {
			h.m.writeFamilyText(bw, d, v)
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
// range's entries, exported as aggregates), and whether Record has series.
type scrapeView struct {
	entries []results.Entry
	labels  []*checkLabelSet
	series  bool
}

// prepare takes the store's snapshot for one scrape and makes the label
// cache current.
func (m *Metrics) prepare() scrapeView {
	gen := m.store.Generation() // before the snapshot: see Generation
	entries := m.store.Latest()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.labels == nil || gen != m.gen || m.stale {
		m.reconfigureLocked(entries)
		m.gen = gen
	}
	labels := make([]*checkLabelSet, len(entries))
	for i, e := range entries {
		if e.Check.Range != "" {
			continue
		}
		labels[i] = m.labelsLocked(e.Check)
	}
	return scrapeView{entries: entries, labels: labels, series: len(m.series) > 0}
}

// writeFamilyText writes the per-check family of d in the text format.
func (m *Metrics) writeFamilyText(w *bufio.Writer, d *prometheus.Desc, v scrapeView) {
	m.emitFamilyLocked(&textSink{w: w, only: d, meta: m.meta[d]}, d, v)
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
	for i, e := range v.entries {
		if cl := v.labels[i]; cl != nil {
			m.emitEntryLocked(out, e, cl)
		}
	}
}

// gatherFamily builds the per-check family of d alone; nil when it has no
// series.
func (m *Metrics) gatherFamily(d *prometheus.Desc, v scrapeView) *dto.MetricFamily {
	out := newFamilySink(m.meta)
	out.only = d
	m.emitFamilyLocked(out, d, v)
	return out.families[d]
}
