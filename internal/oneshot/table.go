package oneshot

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/connprobe/connprobe/probe"
)

// TableOptions shape the verdict table.
type TableOptions struct {
	// Wide prints one row per result; otherwise a port range folds into one
	// row per verdict with its port list.
	Wide bool
	// Color marks verdicts with ANSI colours (a terminal without NO_COLOR).
	Color bool
	// Width is the terminal's width: rows are cut to fit it. 0: no limit.
	Width int
	// Stream prints each check's rows as soon as it (or, for a range, its
	// last port) finishes, for a terminal; otherwise every row is printed by
	// Close, in check order, aligned to the widest cell.
	Stream bool
	// Around, if set, wraps each write to the table's output, so a progress
	// line on the same terminal can step aside.
	Around func(func())
}

// Table prints the verdict table of a run, then its summary. Finished may be
// called concurrently.
type Table struct {
	w    io.Writer
	opts TableOptions

	mu     sync.Mutex
	units  []*unit
	unitOf map[*probe.Check]*unit
	lay    *layout // fixed at Open when streaming; at Close otherwise
	err    error
}

// unit is what one group of rows comes from: a single check, or the ports
// of one range.
type unit struct {
	members []*probe.Check
	results map[*probe.Check][]probe.Result
	pending int
	printed bool
}

// NewTable prepares the table of checks; nothing is written before Open.
func NewTable(w io.Writer, checks []*probe.Check, opts TableOptions) *Table {
	t := &Table{w: w, opts: opts, unitOf: map[*probe.Check]*unit{}}
	byGroup := map[string]*unit{}
	for _, c := range checks {
		var u *unit
		if c.Range != "" && !opts.Wide {
			u = byGroup[c.GroupID()]
		}
		if u == nil {
			u = &unit{results: map[*probe.Check][]probe.Result{}}
			t.units = append(t.units, u)
			if c.Range != "" && !opts.Wide {
				byGroup[c.GroupID()] = u
			}
		}
		u.members = append(u.members, c)
		u.pending++
		t.unitOf[c] = u
	}
	return t
}

// Open prints the header when streaming (columns sized from the checks).
func (t *Table) Open() error {
	if !t.opts.Stream {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lay = streamLayout(t.units, t.opts)
	t.write(t.lay.header())
	return t.err
}

// Finished records a check's results and, when streaming, prints the rows
// its unit completes.
func (t *Table) Finished(c *probe.Check, rs []probe.Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u := t.unitOf[c]
	if u == nil {
		return
	}
	u.results[c] = rs
	u.pending--
	if t.opts.Stream && u.pending == 0 && !u.printed {
		u.printed = true
		t.writeRows(rowsOf(u.members, func(c *probe.Check) []probe.Result { return u.results[c] }, nil, t.opts.Wide))
	}
}

// Close prints the rows not printed yet (in non-streaming mode: all, in
// check order; when streaming: the checks that never ran), then the summary,
// one line per profile and the skipped checks. The uplink line, when the
// uplink is down, goes above the table; when streaming, the rows are out
// before the verdict is known, so it goes right below them.
func (t *Table) Close(rep *Report) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	byCheck := map[*probe.Check][]probe.Result{}
	for _, res := range rep.Results {
		byCheck[res.Check] = append(byCheck[res.Check], res)
	}
	resultsOf := func(c *probe.Check) []probe.Result { return byCheck[c] }
	var rows []row
	for _, u := range t.units {
		if !u.printed {
			u.printed = true
			rows = append(rows, rowsOf(u.members, resultsOf, rep.NotRun, t.opts.Wide)...)
		}
	}
	if t.lay == nil {
		t.lay = fitLayout(rows, t.opts)
		if line := uplinkLine(rep.Uplink, false); line != "" {
			t.write(line + "\n\n")
		}
		t.write(t.lay.header())
		t.writeRows(rows)
	} else {
		t.writeRows(rows)
		if line := uplinkLine(rep.Uplink, true); line != "" {
			t.write("\n" + line + "\n")
		}
	}

	sum := rep.Summary()
	var b strings.Builder
	b.WriteString("\n")
	b.WriteString(summaryLines(sum))
	if len(sum.Profiles) > 0 {
		b.WriteString("\n")
		for _, p := range sum.Profiles {
			b.WriteString(profileLine(p, t.opts.Color) + "\n")
		}
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(&b, "skipped: %s/%s: %s\n", s.Profile, s.Check, oneLine(s.Detail, 200))
	}
	t.write(b.String())
	return t.err
}

func (t *Table) writeRows(rows []row) {
	if len(rows) == 0 {
		return
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(t.lay.line(r))
		b.WriteByte('\n')
	}
	t.write(b.String())
}

// write sends s to the output; the first error sticks and is Close's.
func (t *Table) write(s string) {
	if t.err != nil {
		return
	}
	do := func() { _, t.err = io.WriteString(t.w, s) }
	if t.opts.Around != nil {
		t.opts.Around(do)
	} else {
		do()
	}
}

// Columns of the table.
const (
	colVerdict = iota
	colProfile
	colCheck
	colKind
	colTarget
	colAddress
	colFamily
	colReason
	colPhase
	colLatency
	colDetail
	numCols
)

var headers = [numCols]string{"VERDICT", "PROFILE", "CHECK", "KIND", "TARGET", "ADDRESS", "FAMILY", "REASON", "PHASE", "LATENCY", "DETAIL"}

// minDetail is the least detail width worth showing before columns drop.
const minDetail = 40

// maxDetail bounds the detail where no terminal width does.
const maxDetail = 120

type row struct {
	cells [numCols]string
	class verdictClass
}

type verdictClass int

const (
	classOK verdictClass = iota
	classWarn
	classFail
	classNotRun
)

// classOf is a result's verdict for people: FAIL for an essential check,
// WARN for one that is not.
func classOf(res probe.Result, notRun bool) (verdictClass, string) {
	switch {
	case notRun:
		return classNotRun, "NOT RUN"
	case res.Up:
		return classOK, "OK"
	case res.Check != nil && !res.Check.Essential:
		return classWarn, "WARN"
	}
	return classFail, "FAIL"
}

// rowsOf builds the rows of one unit: one per result, or, for a range not
// shown wide, one per verdict (family, up, reason) with the ports that had it.
func rowsOf(members []*probe.Check, resultsOf func(*probe.Check) []probe.Result, notRun func(probe.Result) bool, wide bool) []row {
	isNotRun := func(res probe.Result) bool { return notRun != nil && notRun(res) }
	if wide || members[0].Range == "" {
		var out []row
		for _, c := range members {
			for _, res := range resultsOf(c) {
				out = append(out, resultRow(res, isNotRun(res)))
			}
		}
		return out
	}
	type fold struct {
		first   probe.Result
		notRun  bool
		ports   []int
		latency []float64
		briefs  []string // where each traced port stopped
	}
	type key struct {
		family string
		up     bool
		reason probe.Reason
		notRun bool
	}
	var folds []*fold
	index := map[key]*fold{}
	for _, c := range members {
		for _, res := range resultsOf(c) {
			nr := isNotRun(res)
			k := key{res.IPFamily, res.Up, res.Reason, nr}
			f := index[k]
			if f == nil {
				f = &fold{first: res, notRun: nr}
				index[k] = f
				folds = append(folds, f)
			}
			f.ports = append(f.ports, c.Port)
			f.latency = append(f.latency, res.Duration.Seconds())
			f.briefs = append(f.briefs, pathBrief(res.Path))
		}
	}
	var out []row
	for _, f := range folds {
		r := resultRow(f.first, f.notRun)
		c := f.first.Check
		r.cells[colTarget] = c.Host + ":" + c.Range + "/" + c.Network
		if len(f.ports) > 1 {
			slices.Sort(f.latency)
			r.cells[colLatency] = latencySeconds(f.latency[len(f.latency)/2]) // the median
		}
		what := string(f.first.Reason)
		if f.notRun {
			what = "not run"
		}
		if len(f.ports) == 1 {
			r.cells[colDetail] = strconv.Itoa(f.ports[0]) + ": " + r.cells[colDetail]
		} else {
			r.cells[colDetail] = fmt.Sprintf("%s: %d %s", portList(f.ports), len(f.ports), what)
			if b := commonBrief(f.briefs); b != "" {
				r.cells[colDetail] += " " + b
			}
		}
		out = append(out, r)
	}
	return out
}

func resultRow(res probe.Result, notRun bool) row {
	var r row
	var verdict string
	r.class, verdict = classOf(res, notRun)
	r.cells[colVerdict] = verdict
	if c := res.Check; c != nil {
		r.cells[colProfile], r.cells[colCheck], r.cells[colKind] = dash(c.Profile), c.Name, c.Kind
		r.cells[colTarget] = c.Host + ":" + strconv.Itoa(c.Port) + "/" + c.Network
	}
	r.cells[colAddress] = dash(res.Address)
	r.cells[colFamily] = dash(res.IPFamily)
	r.cells[colReason] = string(res.Reason)
	if notRun {
		r.cells[colReason] = "-"
	}
	r.cells[colPhase] = dash(string(res.Phase))
	r.cells[colLatency] = latency(res.Duration)
	r.cells[colDetail] = oneLine(withPath(res), 1<<10)
	return r
}

// portList spells sorted ports compactly: "23100-23150,23152,23160-23199".
func portList(ports []int) string {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ps[i]))
		} else {
			parts = append(parts, strconv.Itoa(ps[i])+"-"+strconv.Itoa(ps[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// layout is the column widths and which columns show.
type layout struct {
	width     [numCols]int
	allCustom bool // no row has a profile: the column is all dashes
	hidden    [numCols]bool
	detail    int // width of the detail column
	color     bool
	limit     int // the terminal width, 0 for none
}

// streamLayout sizes columns before any result is known: from the checks
// for what they name, from the vocabularies for the rest. An IPv6 address
// wider than its column pushes that one row's later cells right.
func streamLayout(units []*unit, opts TableOptions) *layout {
	var l layout
	for i, h := range headers {
		l.width[i] = len(h)
	}
	grow := func(col int, s string) { l.width[col] = max(l.width[col], runeLen(s)) }
	grow(colVerdict, "NOT RUN")
	grow(colAddress, "255.255.255.255")
	grow(colFamily, probe.FamilyProxy)
	grow(colLatency, "999.9ms")
	for _, r := range probe.Reasons() {
		grow(colReason, string(r))
	}
	for _, p := range []probe.Phase{probe.PhaseStartTLS, probe.PhaseResponse} {
		grow(colPhase, string(p))
	}
	l.allCustom = true
	for _, u := range units {
		for _, c := range u.members {
			l.allCustom = l.allCustom && c.Profile == ""
			grow(colProfile, dash(c.Profile))
			grow(colCheck, c.Name)
			grow(colKind, c.Kind)
			port := strconv.Itoa(c.Port)
			if len(u.members) > 1 {
				port = c.Range
			}
			grow(colTarget, c.Host+":"+port+"/"+c.Network)
		}
	}
	l.fit(opts)
	return &l
}

// fitLayout sizes columns to the widest cell of rows, as tabwriter would.
func fitLayout(rows []row, opts TableOptions) *layout {
	var l layout
	for i, h := range headers {
		l.width[i] = len(h)
	}
	l.allCustom = true
	for _, r := range rows {
		l.allCustom = l.allCustom && r.cells[colProfile] == "-"
		for i, c := range r.cells {
			l.width[i] = max(l.width[i], runeLen(c))
		}
	}
	l.fit(opts)
	return &l
}

// fit gives the detail what the terminal leaves. While the detail would
// get less than minDetail, columns give way, those that matter least first:
// a profile column of dashes only, phase, latency, kind and profile drop; long check names and targets are
// cut; then the address and the family drop (the reason and the verdict
// always stay).
func (l *layout) fit(opts TableOptions) {
	l.color, l.limit = opts.Color, opts.Width
	l.detail = min(l.width[colDetail], maxDetail)
	if opts.Width <= 0 {
		return
	}
	fixed := func() int {
		n := 0
		for i := range colDetail {
			if !l.hidden[i] {
				n += l.width[i] + 2
			}
		}
		return n
	}
	drop := func(col int) func() { return func() { l.hidden[col] = true } }
	shrink := func(col, least int) func() {
		return func() {
			short := minDetail - (opts.Width - fixed())
			l.width[col] = min(l.width[col], max(least, l.width[col]-short))
		}
	}
	steps := []func(){drop(colPhase), drop(colLatency), drop(colKind), drop(colProfile)}
	if l.allCustom {
		// A column of dashes says nothing: it goes first.
		steps = append([]func(){drop(colProfile)}, steps...)
	}
	for _, step := range append(steps,
		shrink(colCheck, 14), shrink(colTarget, 22), drop(colAddress), drop(colFamily),
		shrink(colCheck, 8), shrink(colTarget, 18),
	) {
		if opts.Width-fixed() >= minDetail {
			break
		}
		step()
	}
	l.detail = max(opts.Width-fixed(), 0)
}

func (l *layout) header() string {
	var r row
	r.cells = headers
	r.class = -1
	return l.line(r) + "\n"
}

// line lays out one row: cells padded, the detail cut to its width, the
// whole cut to the terminal width, the verdict coloured.
func (l *layout) line(r row) string {
	var b strings.Builder
	for i := colProfile; i < colDetail; i++ {
		if l.hidden[i] {
			continue
		}
		cell := r.cells[i]
		if i == colTarget {
			cell = cutHost(cell, l.width[i])
		} else if i == colCheck {
			cell = cut(cell, l.width[i])
		}
		b.WriteString(pad(cell, l.width[i]))
		b.WriteString("  ")
	}
	b.WriteString(cut(r.cells[colDetail], l.detail))
	rest := strings.TrimRight(b.String(), " ")
	verdict := pad(r.cells[colVerdict], l.width[colVerdict]) + "  "
	if l.limit > 0 {
		rest = cut(rest, max(l.limit-runeLen(verdict), 0))
	}
	if l.color {
		verdict = paint(r.class, pad(r.cells[colVerdict], l.width[colVerdict])) + "  "
	}
	return strings.TrimRight(verdict+rest, " ")
}

// ANSI colours: verdicts, and the readiness lines.
const (
	ansiReset  = "\x1b[0m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRedB   = "\x1b[1;31m"
	ansiDim    = "\x1b[2m"
)

func paint(c verdictClass, s string) string {
	switch c {
	case classOK:
		return ansiGreen + s + ansiReset
	case classWarn:
		return ansiYellow + s + ansiReset
	case classFail:
		return ansiRedB + s + ansiReset
	case classNotRun:
		return ansiDim + s + ansiReset
	}
	return s
}

func pad(s string, w int) string {
	if n := runeLen(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// cut bounds s to w runes, marking the cut with an ellipsis.
func cut(s string, w int) string {
	r := []rune(s)
	if len(r) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	return string(r[:w-1]) + "…"
}

// cutHost bounds a target (host:ports/transport) to w runes, cutting the
// host rather than the ports where it can.
func cutHost(target string, w int) string {
	r := []rune(target)
	if len(r) <= w {
		return target
	}
	i := strings.LastIndex(target, ":")
	if i < 0 {
		return cut(target, w)
	}
	suffix := []rune(target[i:])
	if len(suffix)+2 > w {
		return cut(target, w)
	}
	host := []rune(target[:i])
	return string(host[:w-len(suffix)-1]) + "…" + string(suffix)
}

func runeLen(s string) int { return len([]rune(s)) }

// summaryLines count the run's checks and results.
func summaryLines(s Summary) string {
	c, r := s.Checks, s.Results
	checks := fmt.Sprintf("checks:  %d ok, %d failed (%d essential), %d not run", c.OK, c.Failed, c.EssentialFailed, c.NotRun)
	if c.Skipped > 0 {
		checks += fmt.Sprintf(", %d skipped (a required --param is not set)", c.Skipped)
	}
	results := fmt.Sprintf("results: %d ok, %d failed (%d essential), %d not run (one per port and address family)",
		r.OK, r.Failed, r.EssentialFailed, r.NotRun)
	return checks + "\n" + results + "\n"
}

// profileLine is one profile's readiness:
// "clover: NOT READY (2 of 5 essential checks fail: ntp 123/udp no_reply, ...)".
func profileLine(p ProfileSummary, color bool) string {
	name := p.Profile
	if name == "" {
		name = "custom checks"
	}
	var word, detail, paintWith string
	switch p.Readiness {
	case NotReady:
		word, paintWith = "NOT READY", ansiRedB
		detail = fmt.Sprintf("%d of %d essential checks fail: %s", p.EssentialFailed, p.Essential, strings.Join(p.Failing, ", "))
		if len(p.Missing) > 0 {
			detail += fmt.Sprintf("; %d did not run: %s", len(p.Missing), strings.Join(p.Missing, ", "))
		}
	case Incomplete:
		word, paintWith = "INCOMPLETE", ansiYellow
		detail = fmt.Sprintf("%d of %d essential checks did not run: %s", len(p.Missing), p.Essential, strings.Join(p.Missing, ", "))
	default:
		word, paintWith = "READY", ansiGreen
		detail = fmt.Sprintf("%d of %d essential checks pass", p.EssentialOK, p.Essential)
		if p.Essential == 0 {
			detail = "no essential checks"
		}
	}
	if color {
		word = paintWith + word + ansiReset
	}
	return fmt.Sprintf("%s: %s (%s)", name, word, detail)
}

// WriteTable prints the whole table of a finished run at once (rows in
// check order), as `connprobe check` does when its output is not a terminal.
func (r *Report) WriteTable(w io.Writer, opts TableOptions) error {
	var checks []*probe.Check
	seen := map[*probe.Check]bool{}
	for _, res := range r.Results {
		if res.Check != nil && !seen[res.Check] {
			seen[res.Check] = true
			checks = append(checks, res.Check)
		}
	}
	opts.Stream = false
	t := NewTable(w, checks, opts)
	return t.Close(r)
}
