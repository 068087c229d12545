package metrics

import (
	"math"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// labelText is a check's label pairs in the text exposition format,
// rendered once per configuration load (`check="a",host="b",...`, in name
// order) with where each pair starts, so that a sample line is the family's
// name, this text with the series' own pairs (ip_family, reason, phase...)
// inserted in name order, and the value: at 10,000 checks, writing every
// pair of 120,000 lines one by one was most of a scrape (issue 10).
type labelText struct {
	text string
	// cut[i] is where pair i starts; cut[len] is len(text)+1, as if a comma
	// followed the last pair.
	cut [len(checkLabelNames) + 1]int32
}

// sortedCheckLabels are checkLabels in name order, as a sample writes them.
var sortedCheckLabels = func() []string {
	s := slices.Clone(checkLabels)
	slices.Sort(s)
	return s
}()

// labelPos is where a pair named name goes among a check's pairs: before
// the pair at the returned index (len: after the last).
func labelPos(name string) int {
	i, _ := slices.BinarySearch(sortedCheckLabels, name)
	return i
}

// posIPFamily is where ip_family goes among a check's pairs.
var posIPFamily = labelPos("ip_family")

// renderLabels renders a check's label values (in checkLabels order)
// sorted by name, as a sample writes them.
func renderLabels(values []string) labelText {
	var lt labelText
	var b []byte
	for i, name := range sortedCheckLabels {
		if i > 0 {
			b = append(b, ',')
		}
		lt.cut[i] = int32(len(b))
		b = appendPair(b, name, values[checkLabelIndex[i]])
	}
	lt.cut[len(sortedCheckLabels)] = int32(len(b) + 1)
	lt.text = string(b)
	return lt
}

// checkLabelIndex[i] is where sortedCheckLabels[i] is in checkLabels.
var checkLabelIndex = func() (idx [len(checkLabelNames)]int) {
	for i, name := range sortedCheckLabels {
		idx[i] = slices.Index(checkLabels, name)
	}
	return idx
}()

func appendPair(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	b = appendLabelValue(b, value)
	return append(b, '"')
}

// appendLabelValue escapes a label value as expfmt does: backslash, newline
// and double quote.
func appendLabelValue(b []byte, v string) []byte {
	if !needsEscape(v) {
		return append(b, v...)
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// needsEscape reports whether a label value holds a byte that is escaped;
// a plain loop, as this runs for every inserted pair of every sample.
func needsEscape(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\\' || c == '\n' || c == '"' {
			return true
		}
	}
	return false
}

// appendHelp escapes a HELP text as expfmt does: backslash and newline.
func appendHelp(b []byte, h string) []byte {
	for i := 0; i < len(h); i++ {
		switch c := h[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat writes f as expfmt does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, "-1"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, +1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	default:
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	}
}

// textSink appends the series of one per-check family to buf in the text
// exposition format (version 0.0.4), as expfmt would write them from the
// same families, without building them. A test holds its output to the
// registry's, line for line; the handler writes buf out in chunks, outside
// the lock the series are read under.
type textSink struct {
	buf  []byte
	only *prometheus.Desc
	meta familyMeta
	head bool // HELP and TYPE written
}

// family starts the family of d: its header is written with its first
// sample (a family without series is left out, as the registry does).
func (s *textSink) family(d *prometheus.Desc, meta familyMeta) {
	s.only, s.meta, s.head = d, meta, false
}

func (s *textSink) wants(d *prometheus.Desc) bool { return d == s.only }

func (s *textSink) header(typ string) {
	if s.head {
		return
	}
	s.head = true
	b := append(s.buf, "# HELP "...)
	b = append(b, s.meta.name...)
	b = append(b, ' ')
	b = appendHelp(b, s.meta.help)
	b = append(b, "\n# TYPE "...)
	b = append(b, s.meta.name...)
	b = append(b, ' ')
	b = append(b, typ...)
	s.buf = append(b, '\n')
}

// insertedPair is a pair inserted into a check's rendered labels before
// the check's pair at.
type insertedPair struct {
	at          int
	name, value string
}

// sample writes name+suffix{labels[,le="bound"]} value.
func (s *textSink) sample(suffix string, ls *seriesLabels, le bool, bound, v float64) {
	// The pairs the series adds to its check's, in name order.
	var ins [len(ls.extra) + 1]insertedPair
	n := 0
	add := func(p insertedPair) {
		i := n
		for i > 0 && (ins[i-1].at > p.at || ins[i-1].at == p.at && ins[i-1].name > p.name) {
			ins[i] = ins[i-1]
			i--
		}
		ins[i] = p
		n++
	}
	cl := ls.cl
	if ls.rl != nil {
		cl = ls.rl.check
		add(insertedPair{at: posIPFamily, name: "ip_family", value: ls.rl.family})
	}
	for _, p := range ls.extra[:ls.n] {
		add(insertedPair{at: labelPos(p.GetName()), name: p.GetName(), value: p.GetValue()})
	}

	lt := &cl.text
	b := append(s.buf, s.meta.name...)
	b = append(b, suffix...)
	b = append(b, '{')
	pos, comma := 0, false
	for _, p := range ins[:n] {
		if p.at > pos {
			if comma {
				b = append(b, ',')
			}
			b = append(b, lt.text[lt.cut[pos]:lt.cut[p.at]-1]...)
			pos, comma = p.at, true
		}
		if comma {
			b = append(b, ',')
		}
		b = appendPair(b, p.name, p.value)
		comma = true
	}
	if pos < len(lt.cut)-1 {
		if comma {
			b = append(b, ',')
		}
		b = append(b, lt.text[lt.cut[pos]:]...)
	}
	if le {
		b = append(b, `,le="`...)
		b = appendFloat(b, bound)
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = appendFloat(b, v)
	s.buf = append(b, '\n')
}

func (s *textSink) gauge(d *prometheus.Desc, ls seriesLabels, v float64) {
	if d != s.only {
		return
	}
	s.header("gauge")
	s.sample("", &ls, false, 0, v)
}

func (s *textSink) counter(d *prometheus.Desc, ls seriesLabels, v float64) {
	if d != s.only {
		return
	}
	s.header("counter")
	s.sample("", &ls, false, 0, v)
}

func (s *textSink) histogram(d *prometheus.Desc, ls seriesLabels, h *latencyHist) {
	if d != s.only {
		return
	}
	s.header("histogram")
	var cum uint64
	for i, n := range h.classic {
		cum += n
		s.sample("_bucket", &ls, true, latencyBuckets[i], float64(cum))
	}
	s.sample("_bucket", &ls, true, math.Inf(+1), float64(h.count))
	s.sample("_sum", &ls, false, 0, h.sum)
	s.sample("_count", &ls, false, 0, float64(h.count))
}
