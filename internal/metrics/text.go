package metrics

import (
	"bufio"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// textSink writes the series of one per-check family straight in the text
// exposition format (version 0.0.4), as expfmt would write them from the
// same families, without building them: at 10,000 checks building and then
// encoding 110,000 metric objects was most of a scrape's CPU (issue 10). A
// test holds its output to the registry's, line for line.
type textSink struct {
	w    *bufio.Writer
	only *prometheus.Desc
	meta familyMeta
	typ  string
	head bool // HELP and TYPE written
	buf  []byte
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func (s *textSink) wants(d *prometheus.Desc) bool { return d == s.only }

func (s *textSink) header() {
	if s.head {
		return
	}
	s.head = true
	s.w.WriteString("# HELP ")
	s.w.WriteString(s.meta.name)
	s.w.WriteByte(' ')
	helpEscaper.WriteString(s.w, s.meta.help)
	s.w.WriteString("\n# TYPE ")
	s.w.WriteString(s.meta.name)
	s.w.WriteByte(' ')
	s.w.WriteString(s.typ)
	s.w.WriteByte('\n')
}

// sample writes name+suffix{pairs[,le="bound"]} value.
func (s *textSink) sample(suffix string, pairs []*dto.LabelPair, le bool, bound, v float64) {
	w := s.w
	w.WriteString(s.meta.name)
	w.WriteString(suffix)
	if len(pairs) > 0 || le {
		w.WriteByte('{')
		for i, p := range pairs {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(p.GetName())
			w.WriteString(`="`)
			if v := p.GetValue(); needsEscape(v) {
				labelEscaper.WriteString(w, v)
			} else {
				w.WriteString(v)
			}
			w.WriteByte('"')
		}
		if le {
			if len(pairs) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(`le="`)
			s.float(bound)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	s.float(v)
	w.WriteByte('\n')
}

// needsEscape reports whether a label value holds a byte labelEscaper
// replaces; a plain loop, as this runs for every label of every sample.
func needsEscape(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\\' || c == '\n' || c == '"' {
			return true
		}
	}
	return false
}

// float writes f as expfmt does.
func (s *textSink) float(f float64) {
	switch {
	case f == 1:
		s.w.WriteByte('1')
	case f == 0:
		s.w.WriteByte('0')
	case f == -1:
		s.w.WriteString("-1")
	case math.IsNaN(f):
		s.w.WriteString("NaN")
	case math.IsInf(f, +1):
		s.w.WriteString("+Inf")
	case math.IsInf(f, -1):
		s.w.WriteString("-Inf")
	default:
		s.buf = strconv.AppendFloat(s.buf[:0], f, 'g', -1, 64)
		s.w.Write(s.buf)
	}
}

func (s *textSink) gauge(d *prometheus.Desc, pairs []*dto.LabelPair, v float64) {
	if d != s.only {
		return
	}
	s.typ = "gauge"
	s.header()
	s.sample("", pairs, false, 0, v)
}

func (s *textSink) counter(d *prometheus.Desc, pairs []*dto.LabelPair, v float64) {
	if d != s.only {
		return
	}
	s.typ = "counter"
	s.header()
	s.sample("", pairs, false, 0, v)
}

func (s *textSink) histogram(d *prometheus.Desc, pairs []*dto.LabelPair, h *latencyHist) {
	if d != s.only {
		return
	}
	s.typ = "histogram"
	s.header()
	var cum uint64
	for i, n := range h.classic {
		cum += n
		s.sample("_bucket", pairs, true, latencyBuckets[i], float64(cum))
	}
	s.sample("_bucket", pairs, true, math.Inf(+1), float64(h.count))
	s.sample("_sum", pairs, false, 0, h.sum)
	s.sample("_count", pairs, false, 0, float64(h.count))
}
